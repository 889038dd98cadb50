"""The collections demo (R12, R13): seed_demo, then a few months of calendar and bank answers.

Transactional: the calendar's work is handed on at commit (billing chunks, batch
submission, e-mails), as in production. PDFs are stubbed: the demo renders the
same documents as any invoice run, and the documents have tests of their own.
"""

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError

from afas_sb.scheduler.models import CalendarRun
from billing.management.commands.demo_collections import CUSTOMER, OWNER_EMAIL, story_start
from billing.models import (
    BankTransaction,
    CollectionNotice,
    DebitBatch,
    DirectDebit,
    Invoice,
)
from licensing.models import Agreement, Organisation, Termination

pytestmark = pytest.mark.django_db(transaction=True)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# Both replays start on 1 September. On a 28th today's own calendar ends the licence
# (the shortest story); before a 28th it ended on the last one, and seed_demo has
# already invoiced this month.
ON_A_28TH = datetime(2026, 10, 28, 14, 0, tzinfo=AMSTERDAM)
BEFORE_A_28TH = datetime(2026, 11, 24, 9, 0, tzinfo=AMSTERDAM)
TODAY = ON_A_28TH

COUNTED = [
    "licensing.Organisation",
    "licensing.Agreement",
    "licensing.Termination",
    "billing.Mandate",
    "billing.Invoice",
    "billing.DirectDebit",
    "billing.DebitBatch",
    "billing.BankFileImport",
    "billing.BankTransaction",
    "billing.Payment",
    "billing.CollectionNotice",
    "scheduler.CalendarRun",
    "audit.AuditEvent",
]


@pytest.fixture(autouse=True)
def _cheap_pdfs(monkeypatch):
    monkeypatch.setattr(
        "billing.documents.pdf._write_pdf", lambda html, *, identifier: b"%PDF-1.7 demo"
    )


def _counts() -> dict[str, int]:
    return {label: apps.get_model(label).objects.count() for label in COUNTED}


def _demo() -> str:
    out = io.StringIO()
    call_command("demo_collections", stdout=out)
    return out.getvalue()


def _customer() -> Organisation:
    return Organisation.objects.get(kvk_number=CUSTOMER["kvk_number"])


def test_story_start_leaves_room_for_three_attempts_and_a_28th():
    assert story_start(date(2026, 11, 24)) == date(2026, 9, 1)
    assert story_start(date(2026, 10, 28)) == date(2026, 9, 1)
    assert story_start(date(2026, 10, 27)) == date(2026, 8, 1)
    assert story_start(date(2027, 1, 2)) == date(2026, 11, 1)


@pytest.mark.parametrize("today", [ON_A_28TH, BEFORE_A_28TH], ids=["on_a_28th", "before_a_28th"])
def test_r13_demo_collections_batches_returns_am04_and_terminates_only_its_customer(mailbox, today):
    with time_machine.travel(today, tick=False):
        call_command("seed_demo", stdout=io.StringIO())
        output = _demo()

        customer = _customer()
        # Batches were made and handed to the bank: pain.008 files, none left behind.
        batches = DebitBatch.objects.all()
        assert batches.count() >= 4
        assert not batches.filter(status=DebitBatch.Status.CREATED).exists()
        assert all(batch.file and batch.sha256 for batch in batches)
        # Everyone else's debits that fell due were collected; the customer's came back AM04.
        due = DirectDebit.objects.filter(collection_date__lt=today.date(), batch__isnull=False)
        others = due.exclude(organisation=customer)
        assert others.exists()
        assert set(others.values_list("status", flat=True)) == {DirectDebit.Status.COLLECTED}
        returned = DirectDebit.objects.filter(status=DirectDebit.Status.RETURNED)
        assert set(returned.values_list("organisation", flat=True)) == {customer.pk}
        assert set(returned.values_list("return_reason", flat=True)) == {"AM04"}
        # The first invoice: three attempts (SEPA_MAX_REPRESENTMENTS = 2), then pay by transfer.
        first = Invoice.objects.get(organisation=customer, period_start=date(2026, 9, 1))
        assert list(first.debits.order_by("attempt").values_list("attempt", "status")) == [
            (1, "returned"),
            (2, "returned"),
            (3, "returned"),
        ]
        notice = CollectionNotice.objects.get(
            invoice=first, kind=CollectionNotice.Kind.PAY_BY_TRANSFER
        )
        assert notice.status == CollectionNotice.Status.SENT
        assert any("graag overmaken" in mail.subject for mail in mailbox)
        # On the 28th, with September's and October's invoices open: R13, for it alone.
        terminations = Termination.objects.filter(kind=Termination.Kind.NON_PAYMENT)
        termination = terminations.get()
        assert termination.agreement.organisation == customer
        assert termination.effective_date == date(2026, 10, 28)
        assert termination.agreement.status == Agreement.Status.TERMINATED
        assert (
            Invoice.objects.filter(organisation=customer, status=Invoice.Status.OPEN).count() == 2
        )
        # One transfer found its invoice by number, one waits for staff.
        transfers = BankTransaction.objects.filter(kind=BankTransaction.Kind.TRANSFER_IN)
        assert sorted(transfers.values_list("state", flat=True)) == ["processed", "unmatched"]
        # The customer can log in and see it.
        owner = apps.get_model("portal", "Membership").objects.get(organisation=customer)
        assert owner.user.email == OWNER_EMAIL
        assert "R13: Bloemsierkunst Het Boeket" in output
        assert "storno AM04" in output
        assert "klant gemaild om over te maken" in output
        assert "/admin/billing/debitbatch/" in output

        before = _counts()
        again = _demo()

    assert _counts() == before
    assert "Niets nieuws" in again


def test_demo_collections_refuses_where_demo_data_is_not_allowed(settings):
    settings.DEMO_DATA_ALLOWED = False

    with pytest.raises(CommandError, match="alleen in een demo-omgeving"):
        _demo()
    assert not Organisation.objects.exists()


def test_demo_collections_needs_seed_demo_first():
    with pytest.raises(CommandError, match="Draai eerst seed_demo"):
        _demo()
    assert not Organisation.objects.exists()


def test_demo_collections_refuses_a_database_whose_calendar_already_ran():
    with time_machine.travel(TODAY, tick=False):
        call_command("seed_demo", stdout=io.StringIO())
        CalendarRun.objects.create(action="kernel.clear_expired_sessions", date=date(2026, 10, 1))

        with pytest.raises(CommandError, match="verse demodatabase"):
            _demo()

    assert not Organisation.objects.filter(kvk_number=CUSTOMER["kvk_number"]).exists()
