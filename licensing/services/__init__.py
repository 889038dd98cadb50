"""Every write in licensing, one module per subdomain."""
