"""Staff screens for billing, one module per subdomain.

Invoices never change after issue (R9): every screen here reads, and the only
writes are services behind actions (a credit note, retrying a billing run,
marking a debit batch submitted, matching a bank transfer).
"""

from . import collections, delivery, indexation, invoices, mandates, numbering, runs  # noqa: F401
