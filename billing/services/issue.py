"""Issuing invoices: subscription invoices built in bulk, pro-rata first invoices, one-offs.

An invoice is built in memory as a ``Draft`` (invoice, lines, VAT rows, all
unsaved), then ``drafts_store`` numbers and inserts any number of drafts with
a constant number of queries. The billing run (``runs.py``), the daily first
invoices and the one-off service all go through the same two steps, so every
invoice gets the same snapshots, VAT and numbering.

Choices, for the README
-----------------------
* **Who gets the invoice.** ``Agreement.invoice_to``: the customer itself, or
  the accountancy firm it is billed via (R2). A firm gets **one invoice per
  client agreement**, not one combined invoice: the exactly-once key is
  (agreement, period) and stays simple and enforced by the database; a
  correction (credit note) touches one client only; the firm can pass each
  invoice on to its client unchanged; and a client that leaves the firm, or
  moves to another, takes exactly its own invoices along. The buyer reference
  on each invoice is the agreement number, so the firm's bookkeeping can tell
  them apart.
* **Quantities and prices** (R4, R8, R11). One line per component with
  quantity > 0 at the quantity in force when the invoice is made; the unit
  price from the price list valid on the period's first day. A licence line at
  0 is left out; an agreement without any line above 0 owes nothing and gets no
  invoice (an invoice without lines is not a valid EN 16931 document).
* **A missing price is a configuration error** (no approved price list for the
  period, or a component without a price in it). It raises
  ``BillingConfigurationError``: the whole chunk (or calendar action) fails
  loudly and stores nothing, rather than sending invoices with a wrong amount
  or silently skipping customers. Staff see the error in admin, fix the price
  list, and retry; the re-run fills the gap.
* **Pro-rata periods.** A period shorter than its calendar month — the first
  month of an agreement that starts after the 1st, or the last month of one
  with an agreed end date before the month's end — is charged per component
  at ``unit price × days of service / days in the month``, rounded to cents
  once: that is the unit price printed on the line, and the line amount is
  quantity × that price (exact, no second rounding). Every line therefore
  satisfies quantity × price = amount, as a reader and EN 16931 / Peppol
  (PEPPOL-EN16931-R120) check it. Example: a user at € 12,50 from 20 to 31
  January 2027 (12 of 31 days) costs € 4,84 (12,50 × 12 / 31 = 4,8387); three
  users cost € 14,52. The first invoice is issued by the daily calendar action
  ``billing.first_invoices`` on the start date itself, with period start = the
  start date and period end = the end of that month; from the next 1st on the
  agreement is in the monthly run. An agreement that starts on the 1st is
  invoiced by the monthly run only.
* **Dates** (R9). Invoice date = first day of the period (the daily first
  invoice: the day it is made, normally the start date), due date = invoice
  date + 14 days, status open.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from psycopg import sql

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.calendars import Period, month_period
from afas_sb.errors import DomainError
from afas_sb.money import quantize, to_decimal
from licensing.models import Agreement, Organisation, Price, PriceList
from licensing.selectors import price_list_on

from .. import vat
from ..models import Invoice, InvoiceLine, InvoiceVat
from ..selectors import BillableAgreement, BillableLine, Buyer, agreements_to_invoice
from .debits import debits_plan_for_invoices
from .numbering import series_for, take_numbers

# Dutch month names, fixed here rather than taken from the active locale: the text
# on an invoice must not depend on the language a worker process happens to run in.
MONTHS_NL = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)

# How far back the daily first-invoice action looks for agreements that started
# without their first invoice (one created back-dated, or a calendar outage).
FIRST_INVOICE_LOOKBACK_DAYS = 31


class BillingConfigurationError(DomainError):
    """Prices are missing for a period: nothing may be invoiced until staff fix them."""

    code = "billing_configuration"
    status = 409


# --- Periods and text (their output is printed on issued invoices: never change it) ------------


def days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def period_text(period: Period) -> str:
    """'januari 2027' for a whole month, '20 t/m 31 januari 2027' for part of one."""
    name = f"{MONTHS_NL[period.start.month - 1]} {period.start.year}"
    if period.start.day == 1 and period.end.day == days_in_month(period.start):
        return name
    if period.start.day == period.end.day:
        return f"{period.start.day} {name}"
    return f"{period.start.day} t/m {period.end.day} {name}"


def prorated_unit_price(monthly_unit_price: Decimal, period: Period) -> Decimal:
    """The unit price for ``period``: the monthly price × days / days in the month, in cents.

    A whole month keeps the monthly price. See the module docstring for why the
    unit price, not the line amount, carries the one rounding.
    """
    month_days = days_in_month(period.start)
    if period.days == month_days:
        return monthly_unit_price
    return quantize(monthly_unit_price * period.days / month_days)


def billing_period(agreement: BillableAgreement, month: Period) -> Period | None:
    """The part of ``month`` the agreement owes: from its start to its last day of service."""
    start = max(month.start, agreement.start_date)
    end = month.end
    if agreement.end_date is not None:
        end = min(end, agreement.end_date)
    for last_day in agreement.last_days:
        end = min(end, last_day)
    if end < start:
        return None
    return Period(start, end)


# --- Drafts ---------------------------------------------------------------------------------
#
# A draft is plain column values (attname -> value), not model instances: the run builds
# hundreds of thousands of rows, and instantiating models for them would cost more than
# writing them.

INVOICE_DEFAULTS = {
    f.attname: f.get_default() for f in Invoice._meta.concrete_fields if not f.primary_key
}


@dataclass(frozen=True)
class Item:
    """One thing to invoice, before VAT: what, how many, at which unit price."""

    description: str
    quantity: Decimal | int
    unit_price: Decimal
    component_code: str = ""
    unit: str = ""


@dataclass
class Draft:
    """An invoice to store: its columns, its lines' and its VAT rows' columns (no keys yet)."""

    invoice: dict[str, Any]
    lines: list[dict[str, Any]]
    vat_rows: list[dict[str, Any]] = field(default_factory=list)


def seller_snapshot() -> dict:
    """The vendor as printed on every invoice (settings.VENDOR_*), copied at issue."""
    return {
        "seller_name": settings.VENDOR_NAME,
        "seller_street": settings.VENDOR_STREET,
        "seller_postcode": settings.VENDOR_POSTCODE,
        "seller_city": settings.VENDOR_CITY,
        "seller_country": settings.VENDOR_COUNTRY,
        "seller_kvk": settings.VENDOR_KVK,
        "seller_vat_id": settings.VENDOR_VAT_ID,
        "seller_iban": settings.VENDOR_IBAN,
        "seller_bic": settings.VENDOR_BIC,
    }


def buyer_snapshot(buyer: Organisation | Buyer) -> dict:
    """The buyer's current data, copied at issue so the invoice renders the same in ten years."""
    return {
        "buyer_name": buyer.legal_name,
        "buyer_street": buyer.street,
        "buyer_postcode": buyer.postcode,
        "buyer_city": buyer.city,
        "buyer_country": buyer.country,
        "buyer_kvk": buyer.kvk_number,
        "buyer_vat_id": buyer.vat_id,
        "buyer_email": buyer.billing_email,
        "buyer_peppol_scheme": buyer.peppol_scheme,
        "buyer_peppol_id": buyer.peppol_endpoint_id,
    }


def draft_build(
    *,
    buyer: Organisation | Buyer,
    items: Sequence[Item],
    purpose: str,
    issue_date: date,
    buyer_reference: str,
    agreement_id: int | None = None,
    period: Period | None = None,
    billing_run_id: int | None = None,
    seller: dict | None = None,
) -> Draft:
    """An invoice for ``buyer`` with one line per item; VAT and totals from billing.vat.

    Pure: no queries, so the run can build thousands at once and the property
    tests can build millions.
    """
    treatment = vat.vat_treatment(buyer_country=buyer.country, buyer_vat_id=buyer.vat_id)
    lines = [
        {
            "position": position,
            "description": item.description[:255],
            "component_code": item.component_code,
            "unit": item.unit,
            "quantity": Decimal(item.quantity),
            "unit_price": item.unit_price,
            "net_amount": vat.line_amount(item.quantity, item.unit_price),
            "vat_category": treatment.category,
            "vat_rate": treatment.rate,
        }
        for position, item in enumerate(items, start=1)
    ]
    totals = vat.totals(
        (line["vat_category"], line["vat_rate"], line["net_amount"]) for line in lines
    )
    invoice = {
        **INVOICE_DEFAULTS,
        **(seller or seller_snapshot()),
        **buyer_snapshot(buyer),
        "kind": Invoice.Kind.INVOICE,
        "purpose": purpose,
        "status": Invoice.Status.OPEN,
        "organisation_id": buyer.id,
        "agreement_id": agreement_id,
        "billing_run_id": billing_run_id,
        "issue_date": issue_date,
        "due_date": issue_date + timedelta(days=settings.INVOICE_PAYMENT_TERM_DAYS),
        "period_start": period.start if period else None,
        "period_end": period.end if period else None,
        "net_total": totals.net,
        "vat_total": totals.vat,
        "gross_total": totals.gross,
        "vat_note": treatment.note,
        "buyer_reference": buyer_reference[:100],
    }
    vat_rows = [
        {
            "category": row.category,
            "rate": row.rate,
            "taxable_amount": row.taxable_amount,
            "tax_amount": row.tax_amount,
            "exemption_reason": treatment.exemption_reason if row.category != "S" else "",
        }
        for row in totals.breakdown
    ]
    return Draft(invoice=invoice, lines=lines, vat_rows=vat_rows)


@dataclass(frozen=True)
class Issued:
    pk: int
    number: str


def drafts_store(drafts: Sequence[Draft]) -> list[Issued]:
    """Number and insert the drafts: one number call per series, three bulk writes.

    Runs inside the caller's transaction, which must be the one that decided to
    issue them. Numbers are taken here, as late as possible, because the series
    lock is held until that transaction ends; within a series they follow the
    order of ``drafts``. On PostgreSQL the rows go in with ``COPY`` (keys
    reserved from the sequence first, one query); elsewhere with bulk_create.
    Either way the database's constraints check every row.
    """
    if not drafts:
        return []
    by_series: dict[tuple[str, str], list[Draft]] = defaultdict(list)
    for draft in drafts:
        by_series[series_for(draft.invoice["kind"], draft.invoice["issue_date"])].append(draft)
    # Series locks in one fixed order, so two issuers of several series never deadlock.
    for (key, prefix), group in sorted(by_series.items()):
        numbers = take_numbers(series_key=key, prefix=prefix, count=len(group))
        for draft, number in zip(group, numbers, strict=True):
            draft.invoice["number"] = number
    now = clock.now()
    for draft in drafts:
        draft.invoice["created_at"] = now
    store = _store_with_copy if connection.vendor == "postgresql" else _store_with_bulk_create
    pks = store(drafts)
    # R12: a subscription invoice of a customer with a mandate is collected; the
    # debit exists before the documents are rendered, so they can announce it.
    debits_plan_for_invoices(invoice_ids=pks)
    issued = [Issued(pk, draft.invoice["number"]) for pk, draft in zip(pks, drafts, strict=True)]
    # Every issued document is delivered (R10): a pending delivery is recorded once
    # the invoices exist, and the 5-minute sweep sends it.
    transaction.on_commit(lambda: _schedule_deliveries([item.pk for item in issued]))
    return issued


def _schedule_deliveries(invoice_ids: list[int]) -> None:
    from .delivery import delivery_schedule_for_invoices  # delivery renders issued invoices

    delivery_schedule_for_invoices(invoice_ids=invoice_ids)


def _store_with_bulk_create(drafts: Sequence[Draft]) -> list[int]:
    # bulk_create sets the primary keys (RETURNING, also on SQLite >= 3.35).
    invoices = Invoice.objects.bulk_create([Invoice(**draft.invoice) for draft in drafts])
    InvoiceLine.objects.bulk_create(
        InvoiceLine(invoice_id=invoice.pk, **line)
        for invoice, draft in zip(invoices, drafts, strict=True)
        for line in draft.lines
    )
    InvoiceVat.objects.bulk_create(
        InvoiceVat(invoice_id=invoice.pk, **row)
        for invoice, draft in zip(invoices, drafts, strict=True)
        for row in draft.vat_rows
    )
    return [invoice.pk for invoice in invoices]


INVOICE_COLUMNS = ["id", *INVOICE_DEFAULTS]
LINE_COLUMNS = ["invoice_id"] + [
    f.attname for f in InvoiceLine._meta.concrete_fields if f.attname not in ("id", "invoice_id")
]
VAT_COLUMNS = ["invoice_id"] + [
    f.attname for f in InvoiceVat._meta.concrete_fields if f.attname not in ("id", "invoice_id")
]


def _store_with_copy(drafts: Sequence[Draft]) -> list[int]:
    """PostgreSQL: reserve the invoices' keys, then COPY invoices, lines and VAT rows.

    Several times faster than bulk_create for a chunk of 500 invoices (no
    per-field preparation in Python, no parameter arrays). Errors are wrapped
    like Django's, so a constraint violation is an IntegrityError.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [Invoice._meta.db_table, len(drafts)],
        )
        pks = [row[0] for row in cursor.fetchall()]
        invoice_rows = (
            [pk, *(draft.invoice[column] for column in INVOICE_COLUMNS[1:])]
            for pk, draft in zip(pks, drafts, strict=True)
        )
        line_rows = (
            [pk, *(line[column] for column in LINE_COLUMNS[1:])]
            for pk, draft in zip(pks, drafts, strict=True)
            for line in draft.lines
        )
        vat_rows = (
            [pk, *(row[column] for column in VAT_COLUMNS[1:])]
            for pk, draft in zip(pks, drafts, strict=True)
            for row in draft.vat_rows
        )
        with connection.wrap_database_errors:
            for model, columns, rows in (
                (Invoice, INVOICE_COLUMNS, invoice_rows),
                (InvoiceLine, LINE_COLUMNS, line_rows),
                (InvoiceVat, VAT_COLUMNS, vat_rows),
            ):
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(model._meta.db_table),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                )
                with cursor.cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
    return pks


# --- Subscription invoices -----------------------------------------------------------------


class PriceBook:
    """The unit prices of the price list valid on one day (R4); two queries, loaded once."""

    def __init__(self, day: date):
        self.day = day
        self.price_list: PriceList | None = price_list_on(day)
        self.prices: dict[int, Decimal] = (
            dict(
                Price.objects.filter(price_list=self.price_list).values_list(
                    "component_id", "unit_price"
                )
            )
            if self.price_list is not None
            else {}
        )

    def unit_price(self, line: BillableLine, agreement: BillableAgreement) -> Decimal:
        if self.price_list is None:
            raise BillingConfigurationError(
                _("Er is geen goedgekeurde prijslijst die geldt op %(date)s.")
                % {"date": date_format(self.day, "j F Y")}
            )
        price = self.prices.get(line.component_id)
        if price is None:
            raise BillingConfigurationError(
                _(
                    "Prijslijst '%(list)s' heeft geen prijs voor onderdeel '%(component)s' "
                    "(overeenkomst %(agreement)s)."
                )
                % {
                    "list": self.price_list.name,
                    "component": line.name,
                    "agreement": agreement.number,
                }
            )
        return price


def subscription_draft(
    *,
    agreement: BillableAgreement,
    month: Period,
    prices: PriceBook,
    issue_date: date,
    billing_run_id: int | None = None,
    seller: dict | None = None,
) -> Draft | None:
    """The subscription invoice of ``agreement`` for its part of ``month``; None if it owes nothing."""
    period = billing_period(agreement, month)
    if period is None:
        return None
    text = period_text(period)
    whole_month = period == month
    items = [
        Item(
            description=f"{line.name} {text}",
            quantity=line.quantity,
            unit_price=(
                prices.unit_price(line, agreement)
                if whole_month
                else prorated_unit_price(prices.unit_price(line, agreement), period)
            ),
            component_code=line.code,
            unit=line.unit,
        )
        for line in agreement.lines
        if line.quantity > 0
    ]
    if not items:
        return None
    return draft_build(
        buyer=agreement.buyer,
        items=items,
        purpose=Invoice.Purpose.SUBSCRIPTION,
        issue_date=issue_date,
        buyer_reference=agreement.number,
        agreement_id=agreement.id,
        period=period,
        billing_run_id=billing_run_id,
        seller=seller,
    )


def subscription_drafts(
    agreements: Iterable[BillableAgreement],
    *,
    month: Period,
    issue_date: date,
    billing_run_id: int | None = None,
) -> list[Draft]:
    """Drafts for many agreements of one month; prices are loaded once, and only if needed."""
    agreements = list(agreements)
    if not agreements:
        return []
    prices = PriceBook(month.start)
    seller = seller_snapshot()
    drafts = []
    for agreement in agreements:
        draft = subscription_draft(
            agreement=agreement,
            month=month,
            prices=prices,
            issue_date=issue_date,
            billing_run_id=billing_run_id,
            seller=seller,
        )
        if draft is not None:
            drafts.append(draft)
    return drafts


def first_invoices_issue(*, day: date) -> int:
    """Pro-rata first invoices for agreements that started after a 1st, up to ``day`` (R7).

    Normally those starting on ``day`` itself; the look-back also catches an
    agreement entered back-dated, or days the calendar missed. Each agreement's
    first period runs from its start date to the end of that month (or its last
    day of service, if sooner); ``period_start`` = the start date keeps the
    exactly-once constraint per agreement. Agreements starting on a 1st belong
    to the monthly run. Idempotent: an agreement that has its first invoice is
    left out. Returns how many invoices were issued.
    """
    since = day - timedelta(days=FIRST_INVOICE_LOOKBACK_DAYS)
    starts = (
        Agreement.objects.filter(start_date__gte=since, start_date__lte=day)
        .exclude(start_date__day=1)
        .order_by("start_date", "pk")
        .values_list("pk", "start_date")
    )
    by_start: dict[date, list[int]] = defaultdict(list)
    for pk, start_date in starts:
        by_start[start_date].append(pk)
    issued = 0
    for start_date, ids in sorted(by_start.items()):
        with transaction.atomic():
            agreements = agreements_to_invoice(period_start=start_date, ids=ids)
            drafts = subscription_drafts(agreements, month=month_period(start_date), issue_date=day)
            invoices = drafts_store(drafts)
            if invoices:
                audit_record(
                    action="billing.first_invoices_issued",
                    actor_kind=ActorKind.CALENDAR,
                    data={
                        "start_date": start_date.isoformat(),
                        "numbers": [invoice.number for invoice in invoices],
                    },
                )
        issued += len(invoices)
    return issued


# --- One-off invoices ---------------------------------------------------------------------


def invoice_issue_one_off(
    *,
    organisation: Organisation,
    description: str,
    quantity: Decimal | int | str,
    unit_price: Decimal | int | str,
    issue_date: date,
    reference: str,
) -> Invoice:
    """An invoice for one item, e.g. a course at its start (R7: training at the start).

    Same numbering, snapshots and VAT as every invoice. ``reference`` names what
    is invoiced (e.g. the enrolment) and becomes the buyer reference; the same
    reference for the same organisation twice returns the first invoice, so a
    repeated call (a retried task) never invoices twice.
    """
    description = (description or "").strip()
    reference = (reference or "").strip()
    if not description:
        raise DomainError(_("Geef een omschrijving voor de factuurregel."), code="no_description")
    if not reference:
        raise DomainError(
            _("Geef een referentie (bijvoorbeeld de inschrijving)."), code="no_reference"
        )
    try:
        quantity = to_decimal(quantity)
        unit_price = to_decimal(unit_price)
    except (TypeError, ValueError):
        raise DomainError(
            _("Aantal en prijs moeten bedragen zijn."), code="invalid_amount"
        ) from None
    if quantity <= 0 or quantity != quantity.quantize(Decimal("0.001")):
        raise DomainError(
            _("Het aantal moet groter dan 0 zijn, met hoogstens drie decimalen."),
            code="invalid_quantity",
        )
    if unit_price < 0 or unit_price != quantize(unit_price):
        raise DomainError(
            _("De prijs moet 0 of meer zijn, in hele centen."), code="invalid_unit_price"
        )
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        existing = (
            Invoice.objects.filter(
                organisation=organisation,
                kind=Invoice.Kind.INVOICE,
                purpose=Invoice.Purpose.ONE_OFF,
                buyer_reference=reference[:100],
            )
            .order_by("pk")
            .first()
        )
        if existing is not None:
            return existing
        draft = draft_build(
            buyer=organisation,
            items=[Item(description=description, quantity=quantity, unit_price=unit_price)],
            purpose=Invoice.Purpose.ONE_OFF,
            issue_date=issue_date,
            buyer_reference=reference,
        )
        (issued,) = drafts_store([draft])
        invoice = Invoice.objects.get(pk=issued.pk)
        audit_record(
            action="billing.one_off_invoice_issued",
            actor_kind=ActorKind.SYSTEM,
            organisation_id=organisation.pk,
            target=invoice,
            data={
                "number": invoice.number,
                "reference": reference,
                "gross": str(invoice.gross_total),
            },
        )
    return invoice
