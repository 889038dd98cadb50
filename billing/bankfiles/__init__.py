"""Safe, pure parsing of bank files (camt.053, camt.054, pain.002); no models, no database."""

from billing.bankfiles.parser import (
    CREDIT,
    DEBIT,
    Balance,
    BankFile,
    BankFileKind,
    BankTransactionCode,
    Entry,
    PaymentInformationStatus,
    Statement,
    StatusItem,
    StatusReport,
    Transaction,
    detect,
    parse_bank_file,
)
from billing.bankfiles.safe_xml import DEFAULT_MAX_BYTES, BankFileError, parse_untrusted_xml

__all__ = [
    "CREDIT",
    "DEBIT",
    "DEFAULT_MAX_BYTES",
    "Balance",
    "BankFile",
    "BankFileError",
    "BankFileKind",
    "BankTransactionCode",
    "Entry",
    "PaymentInformationStatus",
    "Statement",
    "StatusItem",
    "StatusReport",
    "Transaction",
    "detect",
    "parse_bank_file",
    "parse_untrusted_xml",
]
