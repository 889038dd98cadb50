"""The billing calendar (R7, R33): the run on the 1st, pro-rata first invoices on the start date."""

from datetime import date
from decimal import Decimal

import pytest

from afas_sb.calendars import Period
from afas_sb.scheduler import registry
from afas_sb.scheduler.services import Result, calendar_run_range
from billing.models import BillingRun, Invoice
from billing.services.issue import first_invoices_issue, period_text, prorated_unit_price
from tests.factories import make_catalogue

from .builders import agreement_for, run_month

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    return make_catalogue()


def outcome(results, name):
    return [(item.day, item.result) for item in results if item.action == name]


# --- The rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2027, 1, 1), date(2027, 1, 31), "januari 2027"),
        (date(2027, 1, 20), date(2027, 1, 31), "20 t/m 31 januari 2027"),
        (date(2027, 2, 28), date(2027, 2, 28), "28 februari 2027"),
    ],
)
def test_period_text_names_the_month_or_the_days(start, end, expected):
    assert period_text(Period(start, end)) == expected


@pytest.mark.parametrize(
    ("monthly", "start", "end", "expected"),
    [
        ("12.50", date(2027, 1, 20), date(2027, 1, 31), "4.84"),  # 12,50 × 12/31 = 4,8387
        ("39.00", date(2027, 2, 15), date(2027, 2, 28), "19.50"),  # 14 of 28 days
        ("39.00", date(2028, 2, 15), date(2028, 2, 29), "20.17"),  # leap year: 15 of 29
        ("9.95", date(2027, 4, 1), date(2027, 4, 30), "9.95"),  # a whole month keeps its price
        ("0.01", date(2027, 1, 31), date(2027, 1, 31), "0.00"),
    ],
)
def test_r7_pro_rata_unit_price_is_monthly_price_times_days_over_days_in_month(
    monthly, start, end, expected
):
    assert prorated_unit_price(Decimal(monthly), Period(start, end)) == Decimal(expected)


# --- First invoices ---------------------------------------------------------------------------


def test_r7_an_agreement_starting_mid_month_gets_a_pro_rata_first_invoice(catalogue):
    agreement = agreement_for(catalogue, start=date(2027, 1, 20), base=1, users=3)

    issued = first_invoices_issue(day=date(2027, 1, 20))

    invoice = Invoice.objects.get(agreement=agreement)
    assert issued == 1
    assert (invoice.period_start, invoice.period_end) == (date(2027, 1, 20), date(2027, 1, 31))
    assert (invoice.issue_date, invoice.due_date) == (date(2027, 1, 20), date(2027, 2, 3))
    assert invoice.billing_run is None
    assert [
        (line.description, line.quantity, line.unit_price, line.net_amount)
        for line in invoice.lines.order_by("position")
    ] == [
        ("Basislicentie 20 t/m 31 januari 2027", Decimal("1"), Decimal("15.10"), Decimal("15.10")),
        ("Gebruiker 20 t/m 31 januari 2027", Decimal("3"), Decimal("4.84"), Decimal("14.52")),
    ]
    assert invoice.net_total == Decimal("29.62")
    assert invoice.number == "2027-000001"


def test_r7_after_the_first_invoice_the_agreement_is_in_the_monthly_run(catalogue):
    agreement = agreement_for(catalogue, start=date(2027, 1, 20))
    first_invoices_issue(day=date(2027, 1, 20))

    run_month(date(2027, 2, 1))

    assert list(
        Invoice.objects.filter(agreement=agreement)
        .order_by("period_start")
        .values_list("period_start", "period_end")
    ) == [
        (date(2027, 1, 20), date(2027, 1, 31)),
        (date(2027, 2, 1), date(2027, 2, 28)),
    ]


def test_r7_first_invoices_are_made_once_and_catch_up_on_missed_days(catalogue):
    missed = agreement_for(catalogue, start=date(2027, 1, 5))
    today = agreement_for(catalogue, start=date(2027, 1, 20))
    later = agreement_for(catalogue, start=date(2027, 1, 21))

    assert first_invoices_issue(day=date(2027, 1, 20)) == 2
    assert first_invoices_issue(day=date(2027, 1, 20)) == 0

    assert Invoice.objects.filter(agreement=missed, period_start=date(2027, 1, 5)).count() == 1
    assert Invoice.objects.filter(agreement=today, period_start=date(2027, 1, 20)).count() == 1
    assert not Invoice.objects.filter(agreement=later).exists()


def test_r7_an_agreement_starting_on_the_first_is_left_to_the_monthly_run(catalogue):
    agreement_for(catalogue, start=date(2027, 1, 1))

    assert first_invoices_issue(day=date(2027, 1, 1)) == 0
    assert Invoice.objects.count() == 0


def test_r1_an_agreed_end_date_in_the_month_makes_the_last_invoice_pro_rata(catalogue):
    agreement = agreement_for(catalogue, start=date(2026, 6, 1), end=date(2027, 1, 15), base=1)

    run_month(date(2027, 1, 1))

    invoice = Invoice.objects.get(agreement=agreement)
    assert (invoice.period_start, invoice.period_end) == (date(2027, 1, 1), date(2027, 1, 15))
    line = invoice.lines.get()
    assert (line.description, line.unit_price) == (
        "Basislicentie 1 t/m 15 januari 2027",
        Decimal("18.87"),  # 39,00 × 15/31 = 18,871
    )


# --- Through the calendar ------------------------------------------------------------------------


def test_r7_monthly_invoicing_is_registered_after_the_terminations():
    actions = {action.name: action for action in registry.actions()}

    monthly = actions["billing.monthly_invoicing"]
    assert monthly.order > actions["licensing.apply_terminations"].order
    assert monthly.is_due(date(2027, 3, 1))
    assert not monthly.is_due(date(2027, 3, 2))
    assert actions["billing.first_invoices"].order > monthly.order


def test_r7_the_calendar_invoices_on_the_first_and_not_on_the_second(
    catalogue, django_capture_on_commit_callbacks
):
    monthly = agreement_for(catalogue, start=date(2026, 12, 1))
    starting = agreement_for(catalogue, start=date(2027, 1, 2))

    with django_capture_on_commit_callbacks(execute=True):
        results = calendar_run_range(start=date(2027, 1, 1), end=date(2027, 1, 2))

    assert outcome(results, "billing.monthly_invoicing") == [(date(2027, 1, 1), Result.SUCCEEDED)]
    assert outcome(results, "billing.first_invoices") == [
        (date(2027, 1, 1), Result.SUCCEEDED),
        (date(2027, 1, 2), Result.SUCCEEDED),
    ]
    run = BillingRun.objects.get()
    assert (run.period_start, run.status, run.invoices_created) == (date(2027, 1, 1), "done", 1)
    assert Invoice.objects.get(agreement=monthly).issue_date == date(2027, 1, 1)
    assert Invoice.objects.get(agreement=starting).period_start == date(2027, 1, 2)


def test_r33_the_calendar_running_the_first_twice_invoices_once(
    catalogue, django_capture_on_commit_callbacks
):
    agreement_for(catalogue)

    with django_capture_on_commit_callbacks(execute=True):
        calendar_run_range(start=date(2027, 1, 1), end=date(2027, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):
        results = calendar_run_range(start=date(2027, 1, 1), end=date(2027, 1, 1))

    assert outcome(results, "billing.monthly_invoicing") == [
        (date(2027, 1, 1), Result.ALREADY_DONE)
    ]
    assert Invoice.objects.count() == 1
