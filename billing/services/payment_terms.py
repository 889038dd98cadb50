"""How an invoice says it will be paid: by SEPA direct debit or by transfer (R9, R12).

A subscription invoice of a customer with a mandate is its own pre-notification:
its first debit exists before the documents are rendered (``drafts_store``
plans it in the issuing transaction), so the PDF states amount, collection
date, the last digits of the account, the mandate reference and our creditor
id, and the UBL carries payment means 49 with the mandate, the payer's IBAN and
the creditor id (BT-89, BT-91, BT-90). Any other invoice asks for a transfer.

The documents are rendered once and stored, so they keep saying what was
announced at issue even after a re-presentment or a new mandate; those are
announced by e-mail (``CollectionNotice``).
"""

from __future__ import annotations

from afas_sb.money import format_eur

from ..documents.pdf import PdfRenderer, default_payment_text
from ..documents.ubl import PaymentMeans, UblRenderer, default_payment_means
from ..models import DirectDebit, Invoice
from .mandates import sepa_creditor_id

_UNSET = object()


def announced_debit(invoice: Invoice) -> DirectDebit | None:
    """The invoice's first debit unless it was cancelled; looked up once per invoice object."""
    cached = getattr(invoice, "_announced_debit", _UNSET)
    if cached is not _UNSET:
        return cached
    debit = None
    if invoice.pk is not None and invoice.kind == Invoice.Kind.INVOICE:
        debit = (
            DirectDebit.objects.filter(invoice_id=invoice.pk, attempt=1)
            .exclude(status=DirectDebit.Status.CANCELLED)
            .select_related("mandate")
            .first()
        )
    invoice._announced_debit = debit
    return debit


def payment_text_for(invoice: Invoice) -> str:
    """The PDF's payment paragraph. Document text, not UI: Dutch whatever the active language."""
    debit = announced_debit(invoice)
    if debit is None:
        return default_payment_text(invoice)
    mandate = debit.mandate
    return (
        f"Het bedrag van {format_eur(debit.amount)} wordt op {debit.collection_date:%d-%m-%Y} "
        f"automatisch geïncasseerd van rekening •••• {mandate.iban[-4:]} "
        f"(machtigingskenmerk {mandate.reference}, incassant-ID {sepa_creditor_id()})."
    )


def payment_means_for(invoice: Invoice) -> PaymentMeans | None:
    """The UBL's PaymentMeans: 49 with the mandate when a debit is announced, else a transfer."""
    debit = announced_debit(invoice)
    if debit is None:
        return default_payment_means(invoice)
    return PaymentMeans.direct_debit(
        invoice,
        mandate_id=debit.mandate.reference,
        payer_iban=debit.mandate.iban,
        creditor_id=sepa_creditor_id(),
        collection_date=debit.collection_date,
    )


def invoice_renderers() -> tuple[PdfRenderer, UblRenderer]:
    """The PDF and UBL renderers every caller uses, so both documents say the same."""
    return (
        PdfRenderer(payment_text_for=payment_text_for),
        UblRenderer(payment_means_for=payment_means_for),
    )
