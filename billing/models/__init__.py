from .indexation import IndexationRound
from .invoices import Invoice, InvoiceDocument, InvoiceLine, InvoiceVat, NumberSeries
from .runs import BillingChunk, BillingRun

__all__ = [
    "BillingChunk",
    "BillingRun",
    "IndexationRound",
    "Invoice",
    "InvoiceDocument",
    "InvoiceLine",
    "InvoiceVat",
    "NumberSeries",
]
