from .delivery import InvoiceDelivery
from .indexation import IndexationRound
from .invoices import Invoice, InvoiceDocument, InvoiceLine, InvoiceVat, NumberSeries
from .mandates import Mandate
from .runs import BillingChunk, BillingRun

__all__ = [
    "BillingChunk",
    "BillingRun",
    "IndexationRound",
    "Invoice",
    "InvoiceDelivery",
    "InvoiceDocument",
    "InvoiceLine",
    "InvoiceVat",
    "Mandate",
    "NumberSeries",
]
