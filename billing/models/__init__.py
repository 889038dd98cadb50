from .collections import (
    BankFileImport,
    BankTransaction,
    CollectionNotice,
    DebitBatch,
    DirectDebit,
    Payment,
    SequenceType,
)
from .delivery import InvoiceDelivery
from .indexation import IndexationRound
from .invoices import Invoice, InvoiceDocument, InvoiceLine, InvoiceVat, NumberSeries
from .mandates import Mandate
from .runs import BillingChunk, BillingRun

__all__ = [
    "BankFileImport",
    "BankTransaction",
    "BillingChunk",
    "BillingRun",
    "CollectionNotice",
    "DebitBatch",
    "DirectDebit",
    "IndexationRound",
    "Invoice",
    "InvoiceDelivery",
    "InvoiceDocument",
    "InvoiceLine",
    "InvoiceVat",
    "Mandate",
    "NumberSeries",
    "Payment",
    "SequenceType",
]
