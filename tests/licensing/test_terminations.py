"""R14, R15, R13-hook and R16/R18: every way a licence ends, with the dates right."""

import threading
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from afas_sb.audit.models import AuditEvent
from afas_sb.calendars import NL_WORKING_DAYS, last_of_month, next_month_start
from afas_sb.errors import Conflict, DomainError
from afas_sb.scheduler import registry
from afas_sb.scheduler import services as calendar
from licensing.models import Agreement, Component, Organisation, Product, Termination
from licensing.services.agreements import agreement_create
from licensing.services.terminations import (
    agreement_terminate_by_customer,
    agreement_terminate_by_vendor,
    agreement_terminate_for_non_payment,
    data_kept_until,
    termination_dates,
    termination_end_date,
    termination_withdraw,
    terminations_apply_due,
)
from tests.factories import FirmFactory, MembershipFactory, OrganisationFactory, mandate_if_required

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WAIT_SECONDS = 10


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=AMSTERDAM)


def end_for(requested_on: date, *, start: date = date(2026, 1, 1), end: date | None = None):
    """The R14 end date for an (unsaved) agreement: the rule needs no database."""
    return termination_end_date(
        agreement=Agreement(start_date=start, end_date=end), requested_on=requested_on
    )


@pytest.fixture
def component(db):
    product = Product.objects.create(code="sb", name="AFAS SB")
    return Component.objects.create(
        product=product, code="users", name="Gebruikers", kind="user", unit="gebruiker"
    )


@pytest.fixture
def make_agreement(component):
    def make(organisation=None, *, start: date = date(2026, 1, 1)) -> Agreement:
        organisation = organisation or OrganisationFactory()
        mandate_if_required(organisation)
        return agreement_create(
            organisation=organisation, start_date=start, quantities={component: 3}
        )

    return make


@pytest.fixture
def customer(org_admin, make_agreement):
    """An entrepreneur with a running agreement, its beheerder (subscription contact)."""
    return make_agreement(org_admin.organisation)


# --- R14: the end date ----------------------------------------------------------------


def test_r14_request_on_cutoff_day_ends_this_period():
    # Next period 1 Dec 2026 (Tue): 30 Nov (Mon), 27 Nov (Fri), 26 Nov (Thu).
    assert end_for(date(2026, 11, 26)) == date(2026, 11, 30)


def test_r14_request_day_after_cutoff_ends_next_period():
    assert end_for(date(2026, 11, 27)) == date(2026, 12, 31)


def test_r14_request_on_weekend_before_new_period_ends_next_period():
    dates = termination_dates(
        agreement=Agreement(start_date=date(2026, 1, 1)), requested_on=date(2026, 11, 28)
    )
    # The weekend of 28-29 November does not count: the cutoff is Thursday.
    assert dates.cutoff == date(2026, 11, 26)
    assert not dates.on_time
    assert dates.end_date == date(2026, 12, 31)


@pytest.mark.parametrize(
    ("requested_on", "last_day"),
    [
        (date(2028, 4, 24), date(2028, 4, 30)),
        (date(2028, 4, 25), date(2028, 4, 30)),  # the cutoff: 27 April (Thu) is Koningsdag
        (date(2028, 4, 26), date(2028, 5, 31)),
        (date(2028, 4, 27), date(2028, 5, 31)),
    ],
)
def test_r14_koningsdag_moves_the_cutoff_a_working_day_back(requested_on, last_day):
    dates = termination_dates(
        agreement=Agreement(start_date=date(2028, 1, 1)), requested_on=requested_on
    )
    assert dates.cutoff == date(2028, 4, 25)
    assert dates.end_date == last_day


@pytest.mark.parametrize(
    ("requested_on", "last_day"),
    [
        (date(2026, 12, 25), date(2026, 12, 31)),  # Christmas Day itself: still on time
        (date(2026, 12, 29), date(2026, 12, 31)),  # the cutoff for 1 January 2027
        (date(2026, 12, 30), date(2027, 1, 31)),
        (date(2026, 12, 31), date(2027, 1, 31)),
    ],
)
def test_r14_christmas_and_new_year(requested_on, last_day):
    dates = termination_dates(
        agreement=Agreement(start_date=date(2026, 1, 1)), requested_on=requested_on
    )
    assert dates.cutoff == date(2026, 12, 29)
    assert dates.end_date == last_day


def test_r14_cutoff_in_the_previous_month_then_request_on_the_first():
    # 1 June 2026 is a Monday: its cutoff is Wednesday 27 May.
    assert end_for(date(2026, 5, 27)) == date(2026, 5, 31)
    assert end_for(date(2026, 5, 28)) == date(2026, 6, 30)
    assert end_for(date(2026, 5, 31)) == date(2026, 6, 30)
    # On the 1st June is already invoiced; July's cutoff (26 June) is far away.
    assert end_for(date(2026, 6, 1)) == date(2026, 6, 30)


def test_r14_request_on_the_first_of_december_ends_that_month():
    assert end_for(date(2026, 12, 1)) == date(2026, 12, 31)


def test_r14_agreed_end_date_earlier_than_the_computed_end_wins():
    assert end_for(date(2026, 11, 27), end=date(2026, 12, 15)) == date(2026, 12, 15)
    # A later agreed end date changes nothing.
    assert end_for(date(2026, 11, 27), end=date(2027, 6, 30)) == date(2026, 12, 31)


def test_r14_agreement_starting_in_the_future_runs_its_first_period():
    assert end_for(date(2026, 11, 27), start=date(2027, 3, 1)) == date(2027, 3, 31)
    # Starting on the 30th: the request comes before the cutoff for 1 January.
    assert end_for(date(2026, 12, 10), start=date(2026, 12, 30)) == date(2026, 12, 31)


def _working_days_from(day: date, period_start: date) -> int:
    """Working days in [day, period_start): the notice a request on ``day`` gives."""
    return NL_WORKING_DAYS.between(day - timedelta(days=1), period_start - timedelta(days=1))


@given(st.dates(min_value=date(2026, 1, 1), max_value=date(2031, 12, 31)))
def test_r14_end_date_gives_three_working_days_notice_and_no_more_than_needed(requested_on):
    end = end_for(requested_on)
    this_period_ends = last_of_month(requested_on)
    next_period = next_month_start(requested_on)

    assert end in (this_period_ends, last_of_month(next_period))
    # The period after the last day is never one the customer gave too little notice for...
    assert _working_days_from(requested_on, end + timedelta(days=1)) >= 3
    # ...and the licence never runs a period longer than the rule requires.
    if end != this_period_ends:
        assert _working_days_from(requested_on, next_period) < 3


# --- R14: the customer terminates -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_r14_agreement_terminate_by_customer_schedules_and_confirms_in_dutch(
    time_machine, make_agreement, mailbox
):
    contact = MembershipFactory(is_subscription_contact=True, user__email="contact@example.nl")
    requester = MembershipFactory(organisation=contact.organisation, user__email="ik@example.nl")
    agreement = make_agreement(contact.organisation)
    time_machine.move_to(at(date(2026, 11, 27)), tick=False)

    termination = agreement_terminate_by_customer(
        agreement=agreement, user=requester.user, note=" Te duur "
    )

    assert termination.status == Termination.Status.SCHEDULED
    assert termination.kind == Termination.Kind.CUSTOMER
    assert termination.effective_date == date(2026, 12, 31)
    assert termination.requested_by == requester.user
    assert termination.note == "Te duur"
    agreement.refresh_from_db()
    assert agreement.status == Agreement.Status.TERMINATING
    assert agreement.end_date is None  # set when the termination takes effect
    event = AuditEvent.objects.get(action="licensing.termination_requested")
    assert event.actor_user == requester.user
    assert event.data["effective_date"] == "2026-12-31"
    assert len(mailbox) == 1
    assert sorted(mailbox[0].to) == ["contact@example.nl", "ik@example.nl"]
    assert "31 december 2026" in mailbox[0].body
    assert "31 december 2026" in mailbox[0].alternatives[0][0]
    assert agreement.number in mailbox[0].subject


@pytest.mark.django_db(transaction=True)
def test_r14_repeat_termination_returns_the_existing_one_and_mails_once(
    time_machine, customer, org_admin, mailbox
):
    time_machine.move_to(at(date(2026, 11, 20)), tick=False)
    first = agreement_terminate_by_customer(agreement=customer, user=org_admin.user)
    time_machine.move_to(at(date(2026, 11, 27)), tick=False)

    second = agreement_terminate_by_customer(agreement=customer, user=org_admin.user)

    assert second.pk == first.pk
    assert second.effective_date == date(2026, 11, 30)  # the first request's date stands
    assert Termination.objects.count() == 1
    assert AuditEvent.objects.filter(action="licensing.termination_requested").count() == 1
    assert len(mailbox) == 1
    assert mailbox[0].to == [org_admin.user.email]  # requester and contact: one address


def test_r14_terminating_an_ended_agreement_is_refused(time_machine, customer, org_admin):
    Agreement.objects.filter(pk=customer.pk).update(
        status=Agreement.Status.TERMINATED, end_date=date(2026, 6, 30)
    )
    time_machine.move_to(at(date(2026, 11, 20)), tick=False)

    with pytest.raises(Conflict, match="is al beëindigd"):
        agreement_terminate_by_customer(agreement=customer, user=org_admin.user)

    assert not Termination.objects.exists()


# --- R14: withdrawal -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_r14_withdrawal_on_the_last_day_restores_the_agreement(
    time_machine, customer, org_admin, mailbox
):
    time_machine.move_to(at(date(2026, 11, 20)), tick=False)
    termination = agreement_terminate_by_customer(agreement=customer, user=org_admin.user)
    time_machine.move_to(at(date(2026, 11, 30), hour=23), tick=False)

    withdrawn = termination_withdraw(termination=termination, user=org_admin.user)

    assert withdrawn.status == Termination.Status.WITHDRAWN
    assert withdrawn.withdrawn_by == org_admin.user
    assert withdrawn.withdrawn_at is not None
    customer.refresh_from_db()
    assert customer.status == Agreement.Status.ACTIVE
    assert AuditEvent.objects.filter(action="licensing.termination_withdrawn").count() == 1
    assert len(mailbox) == 2
    assert "ingetrokken" in mailbox[1].subject
    # Nothing is applied later, and a new termination is possible again.
    assert terminations_apply_due(today=date(2026, 12, 1)) == 0
    again = agreement_terminate_by_customer(agreement=customer, user=org_admin.user)
    assert again.pk != termination.pk
    assert again.effective_date == date(2026, 12, 31)


def test_r14_withdrawal_twice_is_harmless(time_machine, customer, org_admin):
    time_machine.move_to(at(date(2026, 11, 20)), tick=False)
    termination = agreement_terminate_by_customer(agreement=customer, user=org_admin.user)
    termination_withdraw(termination=termination, user=org_admin.user)

    termination_withdraw(termination=termination, user=org_admin.user)

    assert AuditEvent.objects.filter(action="licensing.termination_withdrawn").count() == 1


def test_r14_withdrawal_after_the_last_day_is_refused_even_before_the_calendar_ran(
    time_machine, customer, org_admin
):
    time_machine.move_to(at(date(2026, 11, 20)), tick=False)
    termination = agreement_terminate_by_customer(agreement=customer, user=org_admin.user)
    time_machine.move_to(at(date(2026, 12, 1), hour=0), tick=False)

    with pytest.raises(Conflict, match="geëindigd op 30 november 2026"):
        termination_withdraw(termination=termination, user=org_admin.user)

    termination.refresh_from_db()
    customer.refresh_from_db()
    assert termination.status == Termination.Status.SCHEDULED
    assert customer.status == Agreement.Status.TERMINATING
    assert not AuditEvent.objects.filter(action="licensing.termination_withdrawn").exists()


def test_r14_withdrawal_of_an_effective_termination_is_refused(time_machine, customer, org_admin):
    time_machine.move_to(at(date(2026, 11, 20)), tick=False)
    termination = agreement_terminate_by_customer(agreement=customer, user=org_admin.user)
    terminations_apply_due(today=date(2026, 12, 1))

    with pytest.raises(Conflict):
        termination_withdraw(termination=termination, user=org_admin.user)

    termination.refresh_from_db()
    assert termination.status == Termination.Status.EFFECTIVE


# --- R16/R18: after the last day -----------------------------------------------------------


def test_r16_terminations_apply_due_ends_the_agreement_the_day_after_the_last_day(
    time_machine, customer, org_admin
):
    time_machine.move_to(at(date(2026, 11, 20)), tick=False)
    termination = agreement_terminate_by_customer(agreement=customer, user=org_admin.user)

    assert terminations_apply_due(today=date(2026, 11, 30)) == 0  # the last day still runs
    assert terminations_apply_due(today=date(2026, 12, 1)) == 1
    assert terminations_apply_due(today=date(2026, 12, 1)) == 0
    assert terminations_apply_due(today=date(2026, 12, 2)) == 0

    termination.refresh_from_db()
    customer.refresh_from_db()
    organisation = Organisation.objects.get(pk=customer.organisation_id)
    assert termination.status == Termination.Status.EFFECTIVE
    assert customer.status == Agreement.Status.TERMINATED
    assert customer.end_date == date(2026, 11, 30)
    assert organisation.status == Organisation.Status.TERMINATED
    assert organisation.retention_starts_on == date(2026, 12, 1)
    assert data_kept_until(organisation.retention_starts_on) == date(2027, 11, 30)
    assert AuditEvent.objects.filter(action="licensing.termination_effective").count() == 1
    assert AuditEvent.objects.filter(action="licensing.organisation_terminated").count() == 1


def test_r18_data_kept_until_is_one_year_after_the_end():
    assert data_kept_until(date(2027, 1, 1)) == date(2027, 12, 31)
    assert data_kept_until(date(2026, 12, 1)) == date(2027, 11, 30)


def test_r16_apply_terminations_is_a_daily_calendar_action(time_machine, customer, org_admin):
    time_machine.move_to(at(date(2026, 11, 20)), tick=False)
    agreement_terminate_by_customer(agreement=customer, user=org_admin.user)
    action = next(a for a in registry.actions() if a.name == "licensing.apply_terminations")
    assert action.is_due(date(2026, 12, 1)) and action.is_due(date(2026, 12, 17))

    results = calendar.calendar_run_range(start=date(2026, 11, 30), end=date(2026, 12, 1))

    outcomes = [(r.day, r.outcome) for r in results if r.action == action.name]
    assert outcomes == [
        (date(2026, 11, 30), "0 opzegging(en) ingegaan, 0 overeenkomst(en) op einddatum beëindigd"),
        (date(2026, 12, 1), "1 opzegging(en) ingegaan, 0 overeenkomst(en) op einddatum beëindigd"),
    ]
    customer.refresh_from_db()
    assert customer.status == Agreement.Status.TERMINATED


# --- R15: the vendor terminates -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_r15_vendor_termination_ends_at_once_and_mails_the_firm_contacts(
    time_machine, make_agreement, staff_user, mailbox
):
    time_machine.move_to(at(date(2026, 11, 24)), tick=False)
    firm = FirmFactory()
    MembershipFactory(organisation=firm, role="admin", user__email="partner@kantoor.nl")
    MembershipFactory(
        organisation=firm,
        role="member",
        is_subscription_contact=True,
        user__email="abonnement@kantoor.nl",
    )
    MembershipFactory(organisation=firm, role="member", user__email="assistent@kantoor.nl")
    client = OrganisationFactory(accountancy_firm=firm, billed_via=firm)
    MembershipFactory(organisation=client, role="admin", user__email="klant@example.nl")
    agreement = make_agreement(client)
    assert agreement.invoice_to == firm

    termination = agreement_terminate_by_vendor(
        agreement=agreement,
        reason=Termination.Reason.BANKRUPTCY,
        note="Faillissement uitgesproken",
        staff_user=staff_user,
    )

    assert termination.kind == Termination.Kind.VENDOR
    assert termination.status == Termination.Status.EFFECTIVE
    assert termination.effective_date == date(2026, 11, 24)
    agreement.refresh_from_db()
    client.refresh_from_db()
    assert agreement.status == Agreement.Status.TERMINATED
    assert agreement.end_date == date(2026, 11, 24)
    assert client.status == Organisation.Status.TERMINATED
    assert client.retention_starts_on == date(2026, 11, 25)
    event = AuditEvent.objects.get(action="licensing.agreement_terminated_at_once")
    assert event.actor_user == staff_user
    assert event.reason == "Faillissement uitgesproken"
    # One mail for the firm that serves and pays; not to the customer, not to the assistant.
    assert len(mailbox) == 1
    assert sorted(mailbox[0].to) == ["abonnement@kantoor.nl", "partner@kantoor.nl"]
    assert client.legal_name in mailbox[0].subject
    assert "Faillissement aangevraagd" in mailbox[0].body
    assert "24 november 2026" in mailbox[0].body


@pytest.mark.django_db(transaction=True)
def test_r15_vendor_termination_without_a_firm_mails_no_one(
    time_machine, customer, staff_user, mailbox
):
    time_machine.move_to(at(date(2026, 11, 24)), tick=False)

    agreement_terminate_by_vendor(
        agreement=customer, reason=Termination.Reason.BREACH, note="", staff_user=staff_user
    )

    customer.refresh_from_db()
    assert customer.status == Agreement.Status.TERMINATED
    assert mailbox == []


def test_r15_vendor_termination_with_an_unknown_reason_changes_nothing(customer, staff_user):
    with pytest.raises(DomainError, match="Kies als reden"):
        agreement_terminate_by_vendor(
            agreement=customer,
            reason=Termination.Reason.NON_PAYMENT,
            note="",
            staff_user=staff_user,
        )

    customer.refresh_from_db()
    assert customer.status == Agreement.Status.ACTIVE
    assert not Termination.objects.exists()


def test_r15_vendor_termination_supersedes_a_scheduled_customer_termination(
    time_machine, customer, org_admin, staff_user
):
    time_machine.move_to(at(date(2026, 11, 27)), tick=False)
    scheduled = agreement_terminate_by_customer(agreement=customer, user=org_admin.user)

    ended = agreement_terminate_by_vendor(
        agreement=customer, reason=Termination.Reason.SURSEANCE, note="", staff_user=staff_user
    )
    repeat = agreement_terminate_by_vendor(
        agreement=customer, reason=Termination.Reason.BREACH, note="", staff_user=staff_user
    )

    scheduled.refresh_from_db()
    assert scheduled.status == Termination.Status.WITHDRAWN
    assert scheduled.withdrawn_by == staff_user
    assert repeat.pk == ended.pk
    assert ended.effective_date == date(2026, 11, 27)
    assert Termination.objects.filter(status=Termination.Status.EFFECTIVE).count() == 1
    # Nothing is left for the calendar to apply.
    assert terminations_apply_due(today=date(2027, 1, 1)) == 0


# --- R13 hook: non-payment ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_r13_non_payment_termination_tells_no_one_and_is_idempotent(
    customer, mailbox, time_machine
):
    time_machine.move_to(at(date(2026, 11, 28), hour=2), tick=False)
    firm = FirmFactory()
    MembershipFactory(organisation=firm, role="admin")
    Organisation.objects.filter(pk=customer.organisation_id).update(accountancy_firm=firm)

    first = agreement_terminate_for_non_payment(agreement=customer, on=date(2026, 11, 28))
    second = agreement_terminate_for_non_payment(agreement=customer, on=date(2026, 11, 28))

    assert second.pk == first.pk
    assert first.kind == Termination.Kind.NON_PAYMENT
    assert first.reason == Termination.Reason.NON_PAYMENT
    assert first.status == Termination.Status.EFFECTIVE
    assert first.effective_date == date(2026, 11, 28)
    customer.refresh_from_db()
    organisation = Organisation.objects.get(pk=customer.organisation_id)
    assert customer.status == Agreement.Status.TERMINATED
    assert customer.end_date == date(2026, 11, 28)
    assert organisation.status == Organisation.Status.TERMINATED
    assert organisation.retention_starts_on == date(2026, 11, 29)
    assert Termination.objects.count() == 1
    assert AuditEvent.objects.filter(action="licensing.agreement_terminated_at_once").count() == 1
    assert mailbox == []


# --- R33: safe when run concurrently (PostgreSQL) -------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r16_terminations_apply_due_in_two_processes_at_once_applies_each_once(
    time_machine, make_agreement, org_admin
):
    time_machine.move_to(at(date(2026, 11, 20)), tick=False)
    terminations = []
    for _ in range(4):
        agreement = make_agreement()
        terminations.append(agreement_terminate_by_customer(agreement=agreement, user=None))
    start = threading.Barrier(2, timeout=WAIT_SECONDS)
    counts, errors = [], []

    def run():
        try:
            start.wait()
            counts.append(terminations_apply_due(today=date(2026, 12, 1)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive(), "a runner did not finish in time"

    assert errors == []
    assert sum(counts) == len(terminations)
    assert AuditEvent.objects.filter(action="licensing.termination_effective").count() == len(
        terminations
    )
    assert AuditEvent.objects.filter(action="licensing.organisation_terminated").count() == len(
        terminations
    )
    assert (
        not Agreement.objects.exclude(status=Agreement.Status.TERMINATED)
        .exclude(organisation=org_admin.organisation)
        .exists()
    )
