"""The monthly billing run (R4, R7, R8, R9, R11): who is invoiced, what, and exactly once."""

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from afas_sb.errors import DomainError
from billing.models import BillingChunk, BillingRun, Invoice, NumberSeries
from billing.services import issue, runs
from billing.services.runs import billing_chunk_process, billing_run_start
from licensing.models import ChangeSource, Price, PriceList, Termination
from licensing.services.agreements import licence_set_quantities
from licensing.services.terminations import (
    agreement_terminate_by_customer,
    agreement_terminate_by_vendor,
    terminations_apply_due,
)
from tests.factories import MembershipFactory, OrganisationFactory, make_catalogue

from .builders import agreement_for, belgian_business, firm_client, run_month

pytestmark = pytest.mark.django_db

JANUARY = date(2027, 1, 1)
FEBRUARY = date(2027, 2, 1)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def at(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=AMSTERDAM)


@pytest.fixture
def catalogue():
    return make_catalogue()


def numbers() -> list[str]:
    return sorted(Invoice.objects.values_list("number", flat=True))


def lines_of(invoice: Invoice) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    return [
        (line.description, line.quantity, line.unit_price, line.net_amount)
        for line in invoice.lines.order_by("position")
    ]


# --- Exactly once, gapless ------------------------------------------------------------------


def test_r7_run_twice_gives_one_invoice_per_agreement_with_gapless_numbers(catalogue):
    agreements = [agreement_for(catalogue) for _ in range(5)]

    first = run_month(JANUARY)
    second = run_month(JANUARY)

    assert first.pk == second.pk
    assert BillingRun.objects.count() == 1
    assert sorted(Invoice.objects.values_list("agreement_id", flat=True)) == sorted(
        a.pk for a in agreements
    )
    assert numbers() == [f"2027-{n:06d}" for n in range(1, 6)]
    assert NumberSeries.objects.get(key="invoice-2027").last_number == 5
    assert (second.status, second.invoices_created, second.chunks_done) == ("done", 5, 1)
    # The second start found nothing left to do: no new chunk.
    assert second.chunks_total == 1


def test_r7_rerun_only_fills_gaps(catalogue):
    agreement_for(catalogue)
    run_month(JANUARY)
    late = agreement_for(catalogue, start=date(2026, 12, 15))  # entered after the run

    run = run_month(JANUARY)

    assert Invoice.objects.filter(agreement=late, period_start=JANUARY).count() == 1
    assert numbers() == ["2027-000001", "2027-000002"]
    assert (run.chunks_total, run.chunks_done, run.agreements_total, run.invoices_created) == (
        2,
        2,
        2,
        2,
    )


def test_r7_run_is_split_in_chunks_of_at_most_chunk_size(catalogue, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK_SIZE", 2)
    agreements = [agreement_for(catalogue) for _ in range(5)]

    run = run_month(JANUARY)

    chunks = list(run.chunks.order_by("number"))
    assert [len(chunk.agreement_ids) for chunk in chunks] == [2, 2, 1]
    assert sorted(pk for chunk in chunks for pk in chunk.agreement_ids) == sorted(
        a.pk for a in agreements
    )
    assert [chunk.status for chunk in chunks] == ["done"] * 3
    assert (run.status, run.chunks_done, run.invoices_created) == ("done", 3, 5)
    assert run.finished_at is not None


def test_r7_run_starts_only_on_the_first_of_a_month(catalogue):
    with pytest.raises(DomainError) as error:
        billing_run_start(period_start=date(2027, 1, 2))

    assert "eerste dag van een maand" in error.value.message
    assert BillingRun.objects.count() == 0


def test_r7_run_without_agreements_is_done_at_once(db):
    run = run_month(JANUARY)

    assert (run.status, run.chunks_total, run.invoices_created) == ("done", 0, 0)
    assert run.finished_at is not None


# --- What is on the invoice ---------------------------------------------------------------------


def test_r8_r4_one_line_per_component_at_current_quantity_and_period_price(catalogue):
    agreement = agreement_for(catalogue, base=1, users=3, administrations=2, archive=0)

    run_month(JANUARY)

    invoice = Invoice.objects.get(agreement=agreement)
    assert lines_of(invoice) == [
        ("Basislicentie januari 2027", Decimal("1"), Decimal("39.00"), Decimal("39.00")),
        ("Gebruiker januari 2027", Decimal("3"), Decimal("12.50"), Decimal("37.50")),
        ("Extra administratie januari 2027", Decimal("2"), Decimal("9.95"), Decimal("19.90")),
    ]
    assert [line.component_code for line in invoice.lines.order_by("position")] == [
        "base",
        "users",
        "administrations",
    ]
    assert (invoice.net_total, invoice.vat_total, invoice.gross_total) == (
        Decimal("96.40"),
        Decimal("20.24"),
        Decimal("116.64"),
    )


def test_r9_invoice_dates_status_reference_and_snapshots(catalogue, settings):
    organisation = OrganisationFactory(
        legal_name="Bakkerij De Gouden Korst B.V.",
        vat_id="NL859636524B01",
        peppol_scheme="0106",
        peppol_endpoint_id="12345678",
    )
    agreement = agreement_for(catalogue, organisation)

    run = run_month(JANUARY)

    invoice = Invoice.objects.get(agreement=agreement)
    assert (invoice.kind, invoice.purpose, invoice.status) == ("invoice", "subscription", "open")
    assert (invoice.issue_date, invoice.due_date) == (JANUARY, date(2027, 1, 15))
    assert (invoice.period_start, invoice.period_end) == (JANUARY, date(2027, 1, 31))
    assert invoice.buyer_reference == agreement.number
    assert invoice.billing_run == run
    assert invoice.organisation == organisation
    assert (invoice.buyer_name, invoice.buyer_kvk, invoice.buyer_vat_id) == (
        "Bakkerij De Gouden Korst B.V.",
        organisation.kvk_number,
        "NL859636524B01",
    )
    assert (invoice.buyer_email, invoice.buyer_peppol_scheme, invoice.buyer_peppol_id) == (
        organisation.billing_email,
        "0106",
        "12345678",
    )
    assert (invoice.seller_name, invoice.seller_vat_id, invoice.seller_iban) == (
        settings.VENDOR_NAME,
        settings.VENDOR_VAT_ID,
        settings.VENDOR_IBAN,
    )


def test_r9_snapshot_keeps_the_buyer_as_invoiced(catalogue):
    organisation = OrganisationFactory(legal_name="Oude Naam B.V.")
    agreement_for(catalogue, organisation)
    run_month(JANUARY)

    organisation.legal_name = "Nieuwe Naam B.V."
    organisation.save()

    assert Invoice.objects.get().buyer_name == "Oude Naam B.V."


def test_r7_lines_at_zero_are_left_out_and_an_agreement_without_lines_owes_nothing(catalogue):
    with_zero = agreement_for(catalogue, base=1, users=0)
    nothing = agreement_for(catalogue, base=0)

    run = run_month(JANUARY)

    assert [line[0] for line in lines_of(Invoice.objects.get(agreement=with_zero))] == [
        "Basislicentie januari 2027"
    ]
    assert not Invoice.objects.filter(agreement=nothing).exists()
    assert (run.status, run.invoices_created) == ("done", 1)


def test_r4_the_price_list_valid_on_the_periods_first_day_applies(catalogue):
    agreement = agreement_for(catalogue, base=1, users=0)
    new_list = PriceList.objects.create(
        name="Prijslijst 2027", valid_from=JANUARY, status=PriceList.Status.APPROVED
    )
    Price.objects.bulk_create(
        Price(price_list=new_list, component=component, unit_price=Decimal("41.00"))
        for component in catalogue.values()
    )

    run_month(date(2026, 12, 1))
    run_month(JANUARY)

    december, january = Invoice.objects.filter(agreement=agreement).order_by("period_start")
    assert december.net_total == Decimal("39.00")
    assert january.net_total == Decimal("41.00")


def test_r11_a_count_change_on_the_15th_shows_on_the_next_months_invoice(catalogue, time_machine):
    agreement = agreement_for(catalogue, base=1, users=2)
    time_machine.move_to(at(JANUARY), tick=False)
    run_month(JANUARY)

    time_machine.move_to(at(date(2027, 1, 15)), tick=False)
    licence_set_quantities(
        agreement=agreement,
        quantities={catalogue["users"]: 5},
        source=ChangeSource.SB_APPLICATION,
    )
    time_machine.move_to(at(FEBRUARY), tick=False)
    run_month(FEBRUARY)

    january, february = Invoice.objects.filter(agreement=agreement).order_by("period_start")
    assert lines_of(january)[1] == (
        "Gebruiker januari 2027",
        Decimal("2"),
        Decimal("12.50"),
        Decimal("25.00"),
    )
    assert lines_of(february)[1] == (
        "Gebruiker februari 2027",
        Decimal("5"),
        Decimal("12.50"),
        Decimal("62.50"),
    )


# --- Who is invoiced --------------------------------------------------------------------------


def test_r7_not_yet_started_and_ended_agreements_are_not_invoiced(catalogue):
    future = agreement_for(catalogue, start=date(2027, 1, 2))
    ended = agreement_for(catalogue, start=date(2026, 1, 1), end=date(2026, 12, 31))
    running = agreement_for(catalogue)

    run_month(JANUARY)

    assert set(Invoice.objects.values_list("agreement_id", flat=True)) == {running.pk}
    assert not Invoice.objects.filter(agreement__in=[future, ended]).exists()


def test_r14_terminated_before_the_period_is_not_invoiced_even_before_it_took_effect(
    catalogue, time_machine
):
    customer = MembershipFactory()
    terminating = agreement_for(catalogue, customer.organisation)
    time_machine.move_to(at(date(2027, 1, 10)), tick=False)
    termination = agreement_terminate_by_customer(agreement=terminating, user=customer.user)
    assert termination.effective_date == date(2027, 1, 31)

    run_month(JANUARY)  # the last month of service is still invoiced
    run_month(FEBRUARY)  # 31 January lies before February: not invoiced, also while scheduled

    assert list(
        Invoice.objects.filter(agreement=terminating).values_list("period_start", flat=True)
    ) == [JANUARY]


def test_r15_vendor_terminated_agreement_is_not_invoiced_after_its_last_day(
    catalogue, staff_user, time_machine
):
    agreement = agreement_for(catalogue)
    time_machine.move_to(at(date(2027, 1, 20)), tick=False)
    agreement_terminate_by_vendor(
        agreement=agreement,
        reason=Termination.Reason.BREACH,
        note="Misbruik van de licentie",
        staff_user=staff_user,
    )

    run_month(FEBRUARY)

    assert not Invoice.objects.filter(agreement=agreement).exists()


def test_r33_a_late_run_still_invoices_the_month_of_an_agreement_that_ended_since(
    catalogue, time_machine
):
    """Catch-up: January's run only runs on 2 February, after the termination took effect."""
    customer = MembershipFactory()
    agreement = agreement_for(catalogue, customer.organisation)
    time_machine.move_to(at(date(2027, 1, 10)), tick=False)
    agreement_terminate_by_customer(agreement=agreement, user=customer.user)
    time_machine.move_to(at(date(2027, 2, 2)), tick=False)
    terminations_apply_due(today=date(2027, 2, 2))
    agreement.refresh_from_db()
    assert agreement.status == "terminated"

    run_month(JANUARY)
    run_month(FEBRUARY)

    assert list(
        Invoice.objects.filter(agreement=agreement).values_list("period_start", flat=True)
    ) == [JANUARY]


def test_r2_firm_billed_clients_are_invoiced_to_the_firm_one_invoice_per_client(catalogue):
    firm, client = firm_client(billed_via_firm=True)
    _firm, other_client = firm, OrganisationFactory(accountancy_firm=firm, billed_via=firm)
    own = agreement_for(catalogue, firm, base=1)
    first = agreement_for(catalogue, client, base=1)
    second = agreement_for(catalogue, other_client, base=1)
    direct_firm, direct_client = firm_client(billed_via_firm=False)
    direct = agreement_for(catalogue, direct_client, base=1)

    run_month(JANUARY)

    to_firm = Invoice.objects.filter(organisation=firm)
    assert sorted(to_firm.values_list("agreement_id", flat=True)) == sorted(
        [own.pk, first.pk, second.pk]
    )
    assert {invoice.buyer_name for invoice in to_firm} == {firm.legal_name}
    assert {invoice.buyer_reference for invoice in to_firm} == {
        own.number,
        first.number,
        second.number,
    }
    assert Invoice.objects.get(agreement=direct).organisation == direct_client
    assert not Invoice.objects.filter(organisation__in=[client, other_client, direct_firm]).exists()


# --- VAT (R10) --------------------------------------------------------------------------------


def test_r10_belgian_business_gets_reverse_charge_and_dutch_customer_21_percent(catalogue):
    dutch = agreement_for(catalogue, OrganisationFactory(), base=1, users=2)
    belgian = agreement_for(catalogue, belgian_business(), base=1, users=2)

    run_month(JANUARY)

    nl = Invoice.objects.get(agreement=dutch)
    be = Invoice.objects.get(agreement=belgian)
    assert (nl.net_total, nl.vat_total, nl.gross_total, nl.vat_note) == (
        Decimal("64.00"),
        Decimal("13.44"),
        Decimal("77.44"),
        "",
    )
    assert list(
        nl.vat_breakdown.values_list("category", "rate", "taxable_amount", "tax_amount")
    ) == [("S", Decimal("21.00"), Decimal("64.00"), Decimal("13.44"))]
    assert (be.net_total, be.vat_total, be.gross_total) == (
        Decimal("64.00"),
        Decimal("0.00"),
        Decimal("64.00"),
    )
    assert "Btw verlegd" in be.vat_note
    assert list(
        be.vat_breakdown.values_list("category", "rate", "tax_amount", "exemption_reason")
    ) == [("AE", Decimal("0.00"), Decimal("0.00"), "Reverse charge")]
    assert set(be.lines.values_list("vat_category", flat=True)) == {"AE"}


def test_r10_belgian_buyer_without_vat_id_pays_dutch_vat(catalogue):
    agreement = agreement_for(catalogue, belgian_business(vat_id=""), base=1, users=0)

    run_month(JANUARY)

    invoice = Invoice.objects.get(agreement=agreement)
    assert (invoice.vat_total, invoice.vat_note) == (Decimal("8.19"), "")


# --- Failures leave nothing behind ---------------------------------------------------------------


def test_r4_a_missing_price_fails_the_chunk_loudly_and_stores_nothing(catalogue):
    agreement_for(catalogue, base=1, view_only=1)
    Price.objects.filter(component=catalogue["view_only"]).delete()

    run = run_month(JANUARY)

    chunk = run.chunks.get()
    assert (chunk.status, chunk.attempts, chunk.invoices_created) == ("failed", 1, 0)
    assert "geen prijs voor onderdeel 'Inkijklicentie'" in chunk.error
    assert (run.status, run.chunks_failed, run.chunks_done) == ("failed", 1, 0)
    assert Invoice.objects.count() == 0
    assert not NumberSeries.objects.exists()


def test_r4_no_price_list_for_the_period_fails_the_chunk(db):
    later_prices = make_catalogue(valid_from=date(2027, 6, 1))
    agreement_for(later_prices)

    run = run_month(JANUARY)

    assert "geen goedgekeurde prijslijst die geldt op 1 januari 2027" in run.chunks.get().error
    assert Invoice.objects.count() == 0


def test_r9_a_chunk_failing_half_way_leaves_no_invoice_and_no_number_and_a_rerun_fills_it(
    catalogue, monkeypatch
):
    agreement_for(catalogue, OrganisationFactory(), base=1)
    run = billing_run_start(period_start=JANUARY, enqueue=False)
    chunk = run.chunks.get()
    # The invoices are numbered and written; then writing their lines fails.
    written = []

    def lines_fail(drafts):
        pks = store(drafts)
        written.extend(Invoice.objects.filter(pk__in=pks).values_list("number", flat=True))
        raise RuntimeError("schijf vol")

    store = (
        issue._store_with_copy
        if connection.vendor == "postgresql"
        else issue._store_with_bulk_create
    )
    monkeypatch.setattr(issue, "_store_with_copy", lines_fail)
    monkeypatch.setattr(issue, "_store_with_bulk_create", lines_fail)

    outcome = billing_chunk_process(chunk_id=chunk.pk)
    monkeypatch.undo()

    chunk.refresh_from_db()
    run.refresh_from_db()
    assert written == ["2027-000001"]  # it did get that far inside the transaction
    assert outcome.result == "failed"
    assert (chunk.status, chunk.attempts) == ("failed", 1)
    assert "RuntimeError: schijf vol" in chunk.error
    assert (run.status, run.chunks_failed) == ("failed", 1)
    assert Invoice.objects.count() == 0
    assert not NumberSeries.objects.exists()

    agreement_for(catalogue, OrganisationFactory(), base=1)  # another one meanwhile
    run = run_month(JANUARY)

    assert numbers() == ["2027-000001", "2027-000002"]
    assert (run.status, run.chunks_failed, run.chunks_done, run.invoices_created) == (
        "done",
        0,
        2,
        2,
    )
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts, chunk.error) == ("done", 2, "")


def test_r9_a_failing_chunk_does_not_undo_the_chunks_before_it(catalogue, monkeypatch):
    monkeypatch.setattr(runs, "CHUNK_SIZE", 1)
    agreement_for(catalogue, base=1)
    agreement_for(catalogue, base=1, view_only=1)
    Price.objects.filter(component=catalogue["view_only"]).delete()

    run = run_month(JANUARY)

    assert list(run.chunks.order_by("number").values_list("status", flat=True)) == [
        "done",
        "failed",
    ]
    assert numbers() == ["2027-000001"]
    assert (run.status, run.chunks_done, run.chunks_failed, run.invoices_created) == (
        "failed",
        1,
        1,
        1,
    )


def test_a_finished_chunk_is_not_invoiced_again(catalogue):
    agreement_for(catalogue)
    run = run_month(JANUARY)
    chunk = run.chunks.get()

    outcome = billing_chunk_process(chunk_id=chunk.pk)

    assert (outcome.result, outcome.invoices) == ("already_done", 1)
    assert Invoice.objects.count() == 1
    assert BillingRun.objects.get().chunks_done == 1


def test_an_agreement_invoiced_meanwhile_is_skipped_by_its_chunk(catalogue):
    first = agreement_for(catalogue)
    agreement_for(catalogue)
    run = billing_run_start(period_start=JANUARY, enqueue=False)
    extra = BillingChunk.objects.create(run=run, number=2, agreement_ids=[first.pk])
    BillingRun.objects.filter(pk=run.pk).update(chunks_total=2)
    billing_chunk_process(chunk_id=run.chunks.get(number=1).pk)

    outcome = billing_chunk_process(chunk_id=extra.pk)

    assert (outcome.result, outcome.invoices) == ("done", 0)
    assert Invoice.objects.filter(agreement=first).count() == 1
    assert numbers() == ["2027-000001", "2027-000002"]


# --- Numbers per year ----------------------------------------------------------------------------


def test_r9_january_invoices_take_the_new_years_series_from_000001(catalogue):
    agreement_for(catalogue)
    agreement_for(catalogue)

    run_month(date(2026, 12, 1))
    run_month(JANUARY)

    assert numbers() == ["2026-000001", "2026-000002", "2027-000001", "2027-000002"]
    assert list(
        Invoice.objects.filter(period_start=JANUARY)
        .order_by("agreement_id")
        .values_list("number", flat=True)
    ) == ["2027-000001", "2027-000002"]


# --- Cost per chunk ---------------------------------------------------------------------------


def _chunk_queries(catalogue, count: int) -> list[str]:
    ids = [agreement_for(catalogue, base=1, users=2, administrations=1).pk for _ in range(count)]
    run, _ = BillingRun.objects.get_or_create(period_start=JANUARY)
    number = run.chunks.count() + 1
    chunk = BillingChunk.objects.create(run=run, number=number, agreement_ids=ids)
    BillingRun.objects.filter(pk=run.pk).update(chunks_total=number)
    with CaptureQueriesContext(connection) as captured:
        outcome = billing_chunk_process(chunk_id=chunk.pk)
    assert (outcome.result, outcome.invoices) == ("done", count)
    return [query["sql"] for query in captured.captured_queries]


def test_r7_queries_per_chunk_do_not_grow_with_its_agreements(catalogue):
    _chunk_queries(catalogue, 1)  # the year's number series exists from here on
    small = _chunk_queries(catalogue, 10)
    large = _chunk_queries(catalogue, 100)

    def not_inserts(queries):
        return [sql for sql in queries if not sql.startswith("INSERT")]

    # SQLite splits a bulk insert into batches of 999 parameters; PostgreSQL does not.
    assert len(not_inserts(large)) == len(not_inserts(small))
    if connection.vendor == "postgresql":
        assert len(large) == len(small)
    assert len(small) < 30
