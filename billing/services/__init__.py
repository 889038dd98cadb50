"""Every write of the billing app: numbering, issuing, crediting and the billing run."""
