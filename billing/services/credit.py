"""Credit notes: the only correction of an issued invoice (R9).

An issued invoice never changes. A credit note is a document of its own, with
a number from its own series (``C2027-000001``), that references the invoice it
corrects (``credited_invoice``; NL-R-001 in UBL). It credits the whole invoice
or chosen lines at chosen quantities.

Amounts on a credit note are **positive**, as EN 16931 wants them: the
document type (UBL ``CreditNote``, "Creditnota" on the PDF) says they are
subtracted. Each credit line takes the position of the invoice line it
credits, so what was credited per line can be summed over all credit notes of
an invoice; crediting more than was invoiced is refused. The line that
completes a line's credit takes the exact remainder of its amount, so a line
credited in parts is never credited a cent more or less than it was invoiced.
When every line is fully credited, the invoice's status becomes "credited".
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.errors import Conflict, DomainError
from afas_sb.money import ZERO, quantize, to_decimal

from .. import vat
from ..models import Invoice, InvoiceLine
from .issue import INVOICE_DEFAULTS, Draft, drafts_store, seller_snapshot
from .ledger import invoice_status_refresh

BUYER_FIELDS = (
    "buyer_name",
    "buyer_street",
    "buyer_postcode",
    "buyer_city",
    "buyer_country",
    "buyer_kvk",
    "buyer_vat_id",
    "buyer_email",
    "buyer_peppol_scheme",
    "buyer_peppol_id",
)

QUANTITY_STEP = Decimal("0.001")


def credit_note_issue(
    *,
    invoice: Invoice,
    lines: Sequence[tuple[InvoiceLine, Decimal | int | str]] | None,
    reason: str,
    staff_user,
) -> Invoice:
    """Issue a credit note for the whole invoice (``lines=None``) or for (line, quantity) pairs.

    Refuses, with a Dutch message and nothing stored: no reason, a credit note
    as the target, an invoice already fully credited, a line of another
    invoice, a quantity of 0 or less, or more than what is left to credit.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Geef een reden voor de creditnota."), code="no_reason")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.kind != Invoice.Kind.INVOICE:
            raise DomainError(
                _("%(number)s is zelf een creditnota en kan niet gecrediteerd worden.")
                % {"number": invoice.number},
                code="credit_of_credit_note",
            )
        if invoice.status == Invoice.Status.CREDITED:
            raise Conflict(
                _("Factuur %(number)s is al volledig gecrediteerd.") % {"number": invoice.number},
                code="already_credited",
            )
        originals = {line.position: line for line in invoice.lines.order_by("position")}
        done = _credited_so_far(invoice)
        wanted = _wanted(invoice, originals, done, lines)
        if not wanted:
            raise Conflict(
                _("Factuur %(number)s is al volledig gecrediteerd.") % {"number": invoice.number},
                code="already_credited",
            )
        credit_lines = []
        for position, quantity in sorted(wanted.items()):
            line = originals[position]
            credited_quantity, credited_amount = done.get(position, (ZERO, ZERO))
            remaining = line.quantity - credited_quantity
            if quantity > remaining:
                raise DomainError(
                    _(
                        "Regel %(position)s (%(description)s): er kan nog hoogstens "
                        "%(remaining)s gecrediteerd worden, niet %(quantity)s."
                    )
                    % {
                        "position": position,
                        "description": line.description,
                        "remaining": _number(remaining),
                        "quantity": _number(quantity),
                    },
                    code="over_credit",
                )
            if quantity == remaining:
                net_amount = line.net_amount - credited_amount  # the exact remainder
            else:
                net_amount = min(
                    quantize(quantity * line.unit_price), line.net_amount - credited_amount
                )
            credit_lines.append(
                {
                    "position": position,
                    "description": line.description,
                    "component_code": line.component_code,
                    "unit": line.unit,
                    "quantity": quantity,
                    "unit_price": line.unit_price,
                    "net_amount": net_amount,
                    "vat_category": line.vat_category,
                    "vat_rate": line.vat_rate,
                }
            )
        (issued,) = drafts_store([_credit_note(invoice, credit_lines, reason)])
        credit_note = Invoice.objects.get(pk=issued.pk)
        fully_credited = all(
            done.get(position, (ZERO, ZERO))[0] + wanted.get(position, ZERO) >= line.quantity
            for position, line in originals.items()
        )
        if fully_credited:
            invoice.status = Invoice.Status.CREDITED
            invoice.save(update_fields=["status"])
        else:
            # A partial credit can settle what payments left open: the invoice is
            # then paid, and no longer counts for the 28th (R13).
            invoice_status_refresh(invoice)
        audit_record(
            action="billing.credit_note_issued",
            actor_kind=ActorKind.STAFF,
            actor_user=staff_user,
            organisation_id=invoice.organisation_id,
            target=credit_note,
            reason=reason,
            data={
                "invoice": invoice.number,
                "credit_note": credit_note.number,
                "gross_total": str(credit_note.gross_total),
                "fully_credited": fully_credited,
            },
        )
    return credit_note


def _credited_so_far(invoice: Invoice) -> dict[int, tuple[Decimal, Decimal]]:
    """Per invoice line position: quantity and amount credited by earlier credit notes."""
    rows = (
        InvoiceLine.objects.filter(
            invoice__kind=Invoice.Kind.CREDIT_NOTE, invoice__credited_invoice=invoice
        )
        .values("position")
        .annotate(quantity=Sum("quantity"), amount=Sum("net_amount"))
    )
    return {row["position"]: (row["quantity"], row["amount"]) for row in rows}


def _wanted(invoice, originals, done, lines) -> dict[int, Decimal]:
    """Quantity to credit per line position, validated for form (not yet against what is left)."""
    if lines is None:
        wanted = {
            position: line.quantity - done.get(position, (ZERO, ZERO))[0]
            for position, line in originals.items()
        }
        return {position: quantity for position, quantity in wanted.items() if quantity > 0}
    if not lines:
        raise DomainError(_("Kies minstens één regel om te crediteren."), code="no_lines")
    wanted: dict[int, Decimal] = {}
    for line, raw_quantity in lines:
        if line.invoice_id != invoice.pk or originals.get(line.position) is None:
            raise DomainError(
                _("Regel '%(description)s' hoort niet bij factuur %(number)s.")
                % {"description": line.description, "number": invoice.number},
                code="foreign_line",
            )
        try:
            quantity = to_decimal(raw_quantity)
        except (TypeError, ValueError):
            quantity = None
        if quantity is None or quantity <= 0 or quantity != quantity.quantize(QUANTITY_STEP):
            raise DomainError(
                _(
                    "Regel %(position)s: het aantal moet groter dan 0 zijn, met hoogstens drie decimalen."
                )
                % {"position": line.position},
                code="invalid_quantity",
            )
        if line.position in wanted:
            raise DomainError(
                _("Regel %(position)s staat twee keer in de creditnota.")
                % {"position": line.position},
                code="duplicate_line",
            )
        wanted[line.position] = quantity
    return wanted


def _credit_note(invoice: Invoice, credit_lines: list[dict], reason: str) -> Draft:
    """The credit note document: positive amounts, the invoice's buyer and VAT treatment."""
    totals = vat.totals(
        (line["vat_category"], line["vat_rate"], line["net_amount"]) for line in credit_lines
    )
    today = clock.today()
    reasons = {
        (row.category, row.rate): row.exemption_reason for row in invoice.vat_breakdown.all()
    }
    return Draft(
        invoice={
            **INVOICE_DEFAULTS,
            **seller_snapshot(),
            # The same buyer as on the invoice it corrects, with the same VAT treatment.
            **{name: getattr(invoice, name) for name in BUYER_FIELDS},
            "kind": Invoice.Kind.CREDIT_NOTE,
            "purpose": invoice.purpose,
            "status": Invoice.Status.OPEN,
            "organisation_id": invoice.organisation_id,
            "agreement_id": invoice.agreement_id,
            "credited_invoice_id": invoice.pk,
            "reason": reason,
            "issue_date": today,
            # Nothing is collected on a credit note: it is settled at once against the invoice.
            "due_date": today,
            "period_start": invoice.period_start,
            "period_end": invoice.period_end,
            "currency": invoice.currency,
            "net_total": totals.net,
            "vat_total": totals.vat,
            "gross_total": totals.gross,
            "vat_note": invoice.vat_note,
            "buyer_reference": invoice.buyer_reference,
        },
        lines=credit_lines,
        vat_rows=[
            {
                "category": row.category,
                "rate": row.rate,
                "taxable_amount": row.taxable_amount,
                "tax_amount": row.tax_amount,
                "exemption_reason": reasons.get((row.category, row.rate), ""),
            }
            for row in totals.breakdown
        ],
    )


def _number(value: Decimal) -> str:
    """3.000 → '3', 2.500 → '2,5': a quantity as a person writes it."""
    text = f"{value.normalize():f}"
    return text.replace(".", ",")
