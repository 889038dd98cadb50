"""R4, R9, R10: invoice totals over random licences, as properties (hypothesis).

The drafts are built in memory exactly as the billing run builds them (no
database), so hypothesis can try thousands of licences: quantities 0..500,
unit prices 0.00..999.99, Dutch and Belgian buyers, whole and partial months.

Properties:
* every component with quantity > 0 is one line, at quantity × unit price, exact;
* net total = Σ line amounts = the licence price of R4 (Σ quantity × unit price):
  not a cent lost or invented;
* VAT per category as EN 16931 (BR-CO-17): the category's summed net amount ×
  rate, rounded once; VAT total = Σ categories; gross = net + VAT;
* a partial month prices each unit at the monthly price × days / days in the
  month, rounded once, and stays within half a cent per unit of the exact share.
"""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from afas_sb.calendars import month_period
from billing.selectors import BillableAgreement, BillableLine, Buyer
from billing.services.issue import subscription_draft
from billing.vat import REVERSE_CHARGE, STANDARD_RATE

CENT = Decimal("0.01")

quantities = st.integers(min_value=0, max_value=500)
unit_prices = st.decimals(min_value=0, max_value=Decimal("999.99"), places=2)
licences = st.lists(st.tuples(quantities, unit_prices), min_size=1, max_size=8)
buyers = st.sampled_from([("NL", ""), ("NL", "NL859636524B01"), ("BE", "BE0403170701"), ("BE", "")])
months = st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 1)).map(
    lambda day: day.replace(day=1)
)


class FixedPrices:
    """Stands in for PriceBook: the unit price per component id."""

    def __init__(self, prices: dict[int, Decimal]):
        self.prices = prices

    def unit_price(self, line, agreement) -> Decimal:
        return self.prices[line.component_id]


BUYERS = {
    (country, vat_id): Buyer(
        id=1,
        legal_name="Klant B.V.",
        street="Kerkstraat 1",
        postcode="1234 AB",
        city="Utrecht",
        country=country,
        kvk_number="12345678",
        vat_id=vat_id,
        billing_email="facturen@example.nl",
        peppol_scheme="",
        peppol_endpoint_id="",
    )
    for country, vat_id in [
        ("NL", ""),
        ("NL", "NL859636524B01"),
        ("BE", "BE0403170701"),
        ("BE", ""),
    ]
}


def build(licence, buyer, month_start: date, start: date | None = None):
    """The draft the run would build for one agreement with this licence."""
    agreement = BillableAgreement(
        id=1,
        number="SB0000001",
        start_date=start or month_start,
        end_date=None,
        buyer=BUYERS[buyer],
        lines=[
            # as selectors.agreements_to_invoice reads them: quantity > 0 only
            BillableLine(index, f"c{index}", f"Onderdeel {index}", "stuk", quantity)
            for index, (quantity, _price) in enumerate(licence, start=1)
            if quantity > 0
        ],
    )
    prices = FixedPrices({index: price for index, (_q, price) in enumerate(licence, start=1)})
    return subscription_draft(
        agreement=agreement,
        month=month_period(month_start),
        prices=prices,
        issue_date=month_start,
    )


def readable(draft):
    """The draft's invoice, lines and VAT rows with attribute access, for the assertions."""
    return (
        SimpleNamespace(**draft.invoice),
        [SimpleNamespace(**line) for line in draft.lines],
        [SimpleNamespace(**row) for row in draft.vat_rows],
    )


def expected_category(buyer) -> tuple[str, Decimal]:
    country, vat_id = buyer
    if country == "BE" and vat_id:
        return REVERSE_CHARGE.category, REVERSE_CHARGE.rate
    return "S", STANDARD_RATE


@settings(max_examples=500, deadline=None)
@given(licence=licences, buyer=buyers, month_start=months)
def test_r4_r9_totals_are_the_sum_of_the_lines_and_no_cent_is_lost(licence, buyer, month_start):
    draft = build(licence, buyer, month_start)

    billed = [(quantity, price) for quantity, price in licence if quantity > 0]
    if not billed:
        assert draft is None  # nothing to invoice: no invoice at all
        return
    invoice, lines, vat_rows = readable(draft)
    # One line per component above 0, at quantity × unit price, exact.
    assert [(int(line.quantity), line.unit_price) for line in lines] == billed
    assert all(line.net_amount == line.quantity * line.unit_price for line in lines)
    # R4: the licence price, not a cent lost or invented.
    licence_price = sum((Decimal(q) * p for q, p in billed), Decimal("0"))
    assert invoice.net_total == sum(line.net_amount for line in lines) == licence_price
    # EN 16931: VAT per category on the category's net total, rounded once.
    category, rate = expected_category(buyer)
    assert {(line.vat_category, line.vat_rate) for line in lines} == {(category, rate)}
    assert [(row.category, row.rate, row.taxable_amount) for row in vat_rows] == [
        (category, rate, invoice.net_total)
    ]
    tax = (invoice.net_total * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    assert [row.tax_amount for row in vat_rows] == [tax]
    assert invoice.vat_total == sum(row.tax_amount for row in vat_rows) == tax
    assert invoice.gross_total == invoice.net_total + invoice.vat_total
    assert all(amount == amount.quantize(CENT) for amount in (invoice.net_total, invoice.vat_total))
    assert invoice.vat_note == ("" if category == "S" else REVERSE_CHARGE.note)


@settings(max_examples=300, deadline=None)
@given(
    licence=licences,
    buyer=buyers,
    month_start=months,
    offset=st.integers(min_value=1, max_value=30),
)
def test_r7_a_partial_first_month_is_priced_per_day_within_half_a_cent_per_unit(
    licence, buyer, month_start, offset
):
    month = month_period(month_start)
    start = min(month.start + timedelta(days=offset), month.end)
    draft = build(licence, buyer, month_start, start=start)

    billed = [(quantity, price) for quantity, price in licence if quantity > 0]
    if not billed:
        assert draft is None
        return
    days = (month.end - start).days + 1
    invoice, lines, _vat_rows = readable(draft)
    assert (invoice.period_start, invoice.period_end) == (start, month.end)
    for line, (quantity, monthly) in zip(lines, billed, strict=True):
        exact_unit = monthly * days / month.days
        assert line.unit_price == exact_unit.quantize(CENT, rounding=ROUND_HALF_UP)
        assert line.net_amount == quantity * line.unit_price
        assert abs(line.net_amount - quantity * exact_unit) <= quantity * Decimal("0.005")
    assert invoice.net_total == sum(line.net_amount for line in lines)
    assert invoice.gross_total == invoice.net_total + invoice.vat_total
