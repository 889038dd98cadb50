"""R20 (terms §1.2): terms versions, the newsletter, acceptance, suggestions and
the old terms for two more months after terminating over a change."""

import threading
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.urls import reverse

from afas_sb import clock
from afas_sb.audit.models import AuditEvent
from afas_sb.errors import Conflict, DomainError, PermissionDenied
from afas_sb.scheduler import registry
from afas_sb.scheduler.services import calendar_run_range
from licensing import terms_calendar  # noqa: F401  (registers the calendar action)
from licensing.models import Agreement, TermsAcceptance, TermsSuggestion, TermsVersion
from licensing.services.agreements import agreement_create
from licensing.services.terms import (
    NEWSLETTER_AUDIT_ACTION,
    TERMS_ACCEPT_ROLES,
    TERMS_SUGGEST_ROLES,
    terms_accept,
    terms_clear_previous,
    terms_keep_previous_for_termination,
    terms_newsletter_send,
    terms_pending_for,
    terms_previous_version_applies,
    terms_publication_warning,
    terms_publish,
    terms_suggest,
    terms_versions_published_in_last_12_months,
)
from portal.tenancy import PERMISSIONS
from tests.factories import (
    FirmFactory,
    MembershipFactory,
    OrganisationFactory,
    UserFactory,
    give_mandate,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TODAY = date(2026, 6, 15)
WAIT_SECONDS = 10

pytestmark = pytest.mark.django_db


def at(day: date, hour: int = 12):
    return time_machine.travel(datetime.combine(day, time(hour), tzinfo=AMSTERDAM), tick=False)


@pytest.fixture(autouse=True)
def _today():
    with at(TODAY):
        yield


def draft(number: str, effective: date, *, major: bool = False) -> TermsVersion:
    return TermsVersion.objects.create(
        number=number,
        effective_date=effective,
        summary=f"Wat er verandert in {number}: artikel 3.3 over facturatie is verduidelijkt.",
        full_text=f"Volledige tekst van de voorwaarden {number}.",
        is_major=major,
    )


def published(number: str, effective: date, *, major: bool = False, on: date | None = None):
    """A version published through the service, at ``on`` (default: today)."""
    version = draft(number, effective, major=major)
    if on is None:
        return terms_publish(version=version, staff_user=None)
    with at(on):
        return terms_publish(version=version, staff_user=None)


def customer(*, members=("member",), start=date(2026, 1, 1)):
    """An organisation with a beheerder, more members and a live agreement."""
    admin = MembershipFactory(role="admin", is_subscription_contact=True)
    others = [MembershipFactory(organisation=admin.organisation, role=role) for role in members]
    give_mandate(admin.organisation)
    agreement = agreement_create(organisation=admin.organisation, start_date=start, quantities={})
    return admin, others, agreement


def newsletter_rows(version) -> list[int]:
    return sorted(
        event.data["user_id"]
        for event in AuditEvent.objects.filter(
            action=NEWSLETTER_AUDIT_ACTION, object_id=str(version.pk)
        )
    )


# --- Publishing and the newsletter ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_r20_publishing_a_major_version_mails_every_contact_once(mailbox, staff_user):
    admin_a, (member_a,), _ = customer()
    admin_b, (viewer_b,), _ = customer(members=("viewer",))
    # One person in two customers gets one mail.
    MembershipFactory(user=member_a.user, organisation=admin_b.organisation, role="billing")
    no_agreement = MembershipFactory(role="admin")
    gone = MembershipFactory(organisation=admin_a.organisation, role="member")
    gone.user.is_active = False
    gone.user.save(update_fields=["is_active"])
    version = draft("2026.2", date(2026, 7, 1), major=True)

    terms_publish(version=version, staff_user=staff_user)
    terms_publish(version=version, staff_user=staff_user)

    recipients = sorted(address for message in mailbox for address in message.to)
    expected = sorted(m.user.email for m in (admin_a, member_a, admin_b, viewer_b))
    assert recipients == expected
    assert no_agreement.user.email not in recipients
    message = mailbox[0]
    assert message.subject.endswith("Nieuwe voorwaarden per 1 juli 2026")
    assert "artikel 3.3 over facturatie" in message.body
    assert settings.SITE_URL + reverse("portal:voorwaarden") in message.body
    assert newsletter_rows(version) == sorted(
        m.user.pk for m in (admin_a, member_a, admin_b, viewer_b)
    )
    assert AuditEvent.objects.filter(action="licensing.terms_published").count() == 1


@pytest.mark.django_db(transaction=True)
def test_r20_newsletter_sent_again_mails_nobody_twice(mailbox):
    customer()
    version = published("2026.2", date(2026, 7, 1), major=True)
    assert len(mailbox) == 2

    assert terms_newsletter_send(version=version) == 0
    later = customer(members=())[0]
    assert terms_newsletter_send(version=version) == 1

    assert [message.to for message in mailbox[2:]] == [[later.user.email]]


@pytest.mark.django_db(transaction=True)
def test_r20_minor_version_sends_no_mail_and_is_shown_in_the_portal(mailbox):
    admin, _, _ = customer()

    version = published("2026.2", date(2026, 7, 1))

    assert mailbox == []
    assert newsletter_rows(version) == []
    assert terms_pending_for(organisation=admin.organisation) == version


def test_r20_publishing_is_idempotent(staff_user):
    version = draft("2026.2", TODAY)
    first = terms_publish(version=version, staff_user=staff_user)

    with at(date(2026, 6, 20)):
        again = terms_publish(version=version, staff_user=staff_user)

    assert again.published_at == first.published_at
    assert AuditEvent.objects.filter(action="licensing.terms_published").count() == 1


def test_r20_publishing_a_version_older_than_the_newest_is_refused_in_dutch():
    published("2026.2", date(2026, 7, 1))
    older = draft("2026.1", date(2026, 1, 1))

    with pytest.raises(Conflict, match="De nieuwste voorwaarden gelden altijd"):
        terms_publish(version=older, staff_user=None)

    older.refresh_from_db()
    assert older.published_at is None


# --- The newest terms apply ---------------------------------------------------------------


def test_r20_version_effective_today_applies_to_live_agreements_at_publish():
    _, _, agreement = customer()
    _, _, ended = customer()
    Agreement.objects.filter(pk=ended.pk).update(status=Agreement.Status.TERMINATED)

    version = published("2026.2", TODAY)

    agreement.refresh_from_db()
    ended.refresh_from_db()
    assert agreement.terms_version == version
    assert ended.terms_version is None
    assert AuditEvent.objects.filter(action="licensing.terms_version_applied").count() == 1


def test_r20_announced_version_applies_from_its_effective_date_through_the_calendar():
    old = published("2026.1", date(2026, 1, 1), on=date(2025, 12, 1))
    _, _, agreement = customer()
    _, _, terminating = customer()
    Agreement.objects.filter(pk=terminating.pk).update(status=Agreement.Status.TERMINATING)
    new = published("2026.2", date(2026, 7, 1))

    calendar_run_range(start=date(2026, 6, 30), end=date(2026, 6, 30))
    agreement.refresh_from_db()
    assert agreement.terms_version == old

    results = calendar_run_range(start=date(2026, 7, 1), end=date(2026, 7, 1))

    agreement.refresh_from_db()
    terminating.refresh_from_db()
    assert agreement.terms_version == new
    assert terminating.terms_version == new
    outcome = [r.outcome for r in results if r.action == "licensing.apply_terms_versions"]
    assert outcome == ["2 overeenkomst(en) naar versie 2026.2"]


def test_r20_calendar_action_is_registered():
    assert "licensing.apply_terms_versions" in {action.name for action in registry.actions()}


# --- Acceptance -------------------------------------------------------------------------------


def test_r20_acceptance_by_admin_is_idempotent():
    admin, _, _ = customer()
    version = published("2026.2", date(2026, 7, 1))

    first = terms_accept(organisation=admin.organisation, version=version, user=admin.user)
    again = terms_accept(organisation=admin.organisation, version=version, user=admin.user)

    assert again == first
    assert TermsAcceptance.objects.count() == 1
    assert AuditEvent.objects.filter(action="licensing.terms_accepted").count() == 1
    assert terms_pending_for(organisation=admin.organisation) is None


@pytest.mark.parametrize("role", ["member", "billing", "viewer"])
def test_r20_acceptance_only_by_admins(role):
    admin, (other,), _ = customer(members=(role,))
    version = published("2026.2", date(2026, 7, 1))

    with pytest.raises(PermissionDenied, match="Alleen een beheerder"):
        terms_accept(organisation=admin.organisation, version=version, user=other.user)

    assert TermsAcceptance.objects.count() == 0


def test_r20_acceptance_refused_for_an_accountant_of_the_client_and_for_a_stranger():
    firm = FirmFactory()
    accountant = MembershipFactory(organisation=firm, role="admin")
    client = OrganisationFactory(accountancy_firm=firm)
    version = published("2026.2", date(2026, 7, 1))

    for user in (accountant.user, UserFactory()):
        with pytest.raises(PermissionDenied):
            terms_accept(organisation=client, version=version, user=user)

    assert TermsAcceptance.objects.count() == 0


def test_r20_acceptance_of_a_draft_is_refused():
    admin, _, _ = customer()
    version = draft("2026.2", date(2026, 7, 1))

    with pytest.raises(Conflict, match="nog niet gepubliceerd"):
        terms_accept(organisation=admin.organisation, version=version, user=admin.user)

    assert TermsAcceptance.objects.count() == 0


def test_terms_roles_match_the_portal_permissions():
    assert PERMISSIONS["accept_terms"] == set(TERMS_ACCEPT_ROLES)
    assert PERMISSIONS["suggest_terms"] == set(TERMS_SUGGEST_ROLES)


# --- Improvement suggestions ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_r20_suggestion_is_stored_and_mailed_to_support(mailbox):
    admin, (member,), _ = customer()
    version = published("2026.2", date(2026, 7, 1))

    suggestion = terms_suggest(
        organisation=admin.organisation,
        version=version,
        user=member.user,
        text="  Graag een langere opzegtermijn in artikel 3.6.  ",
    )
    terms_suggest(
        organisation=admin.organisation,
        version=version,
        user=member.user,
        text="Graag een langere opzegtermijn in artikel 3.6.",
    )

    assert TermsSuggestion.objects.get() == suggestion
    assert suggestion.text == "Graag een langere opzegtermijn in artikel 3.6."
    assert [message.to for message in mailbox] == [[settings.SUPPORT_EMAIL]]
    assert admin.organisation.legal_name in mailbox[0].subject
    assert "langere opzegtermijn" in mailbox[0].body
    assert member.user.email in mailbox[0].body
    assert AuditEvent.objects.get(action="licensing.terms_suggestion_sent").actor_user == (
        member.user
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Schrijf eerst je verbetervoorstel"),
        ("   \n ", "Schrijf eerst je verbetervoorstel"),
        ("x" * 5001, "maximaal 5000 tekens"),
    ],
)
def test_r20_empty_or_too_long_suggestion_is_refused_in_dutch_and_nothing_stored(
    mailbox, django_capture_on_commit_callbacks, text, message
):
    admin, _, _ = customer(members=())
    version = published("2026.2", date(2026, 7, 1))

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(DomainError, match=message),
    ):
        terms_suggest(organisation=admin.organisation, version=version, user=admin.user, text=text)

    assert TermsSuggestion.objects.count() == 0
    assert mailbox == []


def test_r20_viewer_cannot_send_a_suggestion():
    admin, (viewer,), _ = customer(members=("viewer",))
    version = published("2026.2", date(2026, 7, 1))

    with pytest.raises(PermissionDenied, match="alleen lezen"):
        terms_suggest(organisation=admin.organisation, version=version, user=viewer.user, text="Ja")

    assert TermsSuggestion.objects.count() == 0


# --- Terminating over a change: the old terms two more months -------------------------------


@pytest.mark.parametrize(
    ("terminated_on", "until"),
    [
        (date(2026, 12, 31), date(2027, 2, 28)),
        (date(2027, 12, 31), date(2028, 2, 29)),  # leap year
        (date(2026, 12, 15), date(2027, 2, 15)),
        (date(2026, 11, 30), date(2027, 1, 30)),
    ],
)
def test_r20_terminated_over_a_change_keeps_the_previous_terms_two_months(terminated_on, until):
    old = published("2026.1", date(2026, 1, 1), on=date(2025, 12, 1))
    _, _, agreement = customer()
    with at(terminated_on):
        new = published("2027.1", terminated_on)
        agreement = terms_keep_previous_for_termination(
            agreement=agreement, new_version=new, terminated_on=terminated_on
        )

    assert agreement.terms_version == new
    assert agreement.previous_terms_version == old
    assert agreement.previous_terms_until == until
    assert terms_previous_version_applies(agreement=agreement, on=terminated_on) == old
    assert terms_previous_version_applies(agreement=agreement, on=until) == old
    day_after = until + timedelta(days=1)
    assert terms_previous_version_applies(agreement=agreement, on=day_after) == new


def test_r20_terminated_before_an_announced_change_keeps_the_version_it_ran_under():
    old = published("2026.1", date(2026, 1, 1), on=date(2025, 12, 1))
    _, _, agreement = customer()
    new = published("2026.2", date(2026, 9, 1))

    agreement = terms_keep_previous_for_termination(
        agreement=agreement, new_version=new, terminated_on=TODAY
    )
    with at(date(2026, 9, 1)):
        calendar_run_range(start=date(2026, 9, 1), end=date(2026, 9, 1))
    agreement.refresh_from_db()

    assert agreement.previous_terms_version == old
    assert agreement.previous_terms_until == date(2026, 8, 15)
    assert agreement.terms_version == new
    assert terms_previous_version_applies(agreement=agreement, on=date(2026, 9, 1)) == new


def test_r20_keeping_the_previous_terms_twice_changes_nothing_and_withdrawal_clears_it():
    published("2026.1", date(2026, 1, 1), on=date(2025, 12, 1))
    _, _, agreement = customer()
    new = published("2026.2", TODAY)

    for _ in range(2):
        terms_keep_previous_for_termination(
            agreement=agreement, new_version=new, terminated_on=TODAY
        )
    assert AuditEvent.objects.filter(action="licensing.terms_previous_kept").count() == 1

    agreement = terms_clear_previous(agreement=agreement)

    assert agreement.previous_terms_version is None
    assert terms_previous_version_applies(agreement=agreement, on=TODAY) == new


def test_r20_keeping_previous_terms_refused_without_an_earlier_version():
    _, _, agreement = customer()
    first = published("2026.1", TODAY)

    with pytest.raises(Conflict, match="geen eerdere versie"):
        terms_keep_previous_for_termination(
            agreement=agreement, new_version=first, terminated_on=TODAY
        )

    agreement.refresh_from_db()
    assert agreement.previous_terms_version is None
    assert agreement.previous_terms_until is None


# --- At least twice a year ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("publication_dates", "counted"),
    [
        ([], 0),
        ([date(2026, 3, 1)], 1),
        ([date(2025, 6, 14), date(2026, 3, 1)], 1),  # one day more than twelve months ago
        ([date(2025, 6, 15), date(2026, 3, 1)], 2),  # exactly twelve months ago counts
        ([date(2025, 9, 1), date(2026, 3, 1)], 2),
    ],
)
def test_r20_publication_warning_below_two_versions_in_twelve_months(publication_dates, counted):
    for n, day in enumerate(publication_dates):
        published(f"v{n}", day, on=day)

    warning = terms_publication_warning(TODAY)

    assert terms_versions_published_in_last_12_months(TODAY).count() == counted
    if counted < 2:
        assert "minstens twee keer per jaar" in warning
        assert f"{counted} versie" in warning
    else:
        assert warning is None


# --- Admin ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "warns"), [(0, True), (1, True), (2, False)])
def test_r20_admin_index_warns_with_fewer_than_two_versions_in_twelve_months(
    staff_client, count, warns
):
    for n in range(count):
        published(f"2026.{n}", date(2026, 1 + n, 1), on=date(2026, 1 + n, 1))

    page = staff_client.get(reverse("admin:index")).content.decode()

    assert ("minstens twee keer per jaar" in page) == warns


@pytest.mark.parametrize(("count", "warns"), [(0, True), (1, True), (2, False)])
def test_r20_admin_version_list_warns_with_fewer_than_two_versions(staff_client, count, warns):
    for n in range(count):
        published(f"2026.{n}", date(2026, 1 + n, 1), on=date(2026, 1 + n, 1))

    response = staff_client.get(reverse("admin:licensing_termsversion_changelist"))

    warnings = [m.message for m in response.context["messages"] if m.level_tag == "warning"]
    assert bool(warnings) == warns


@pytest.mark.django_db(transaction=True)
def test_r20_admin_publish_action_publishes_and_mails_a_major_version(
    staff_client, staff_user, mailbox
):
    admin, _, agreement = customer(members=())
    version = draft("2026.2", TODAY, major=True)
    url = reverse("admin:licensing_termsversion_changelist")

    staff_client.post(url, {"action": "publish", "_selected_action": [version.pk]})

    version.refresh_from_db()
    agreement.refresh_from_db()
    assert version.published_at is not None
    assert agreement.terms_version == version
    assert [message.to for message in mailbox] == [[admin.user.email]]
    assert AuditEvent.objects.get(action="licensing.terms_published").actor_user == staff_user


def test_r20_admin_published_version_is_read_only(staff_client):
    version = published("2026.2", TODAY)
    url = reverse("admin:licensing_termsversion_change", args=[version.pk])

    staff_client.post(
        url,
        {
            "number": "2026.9",
            "effective_date": "2026-12-01",
            "summary": "Anders",
            "full_text": "Anders",
        },
    )

    version.refresh_from_db()
    assert version.number == "2026.2"
    assert version.summary.startswith("Wat er verandert")


def test_r20_admin_lists_versions_with_acceptance_counts_suggestions_and_acceptances(staff_client):
    admin, (member,), _ = customer()
    version = published("2026.2", TODAY)
    terms_accept(organisation=admin.organisation, version=version, user=admin.user)
    terms_suggest(
        organisation=admin.organisation, version=version, user=member.user, text="Kortere zinnen"
    )

    versions = staff_client.get(reverse("admin:licensing_termsversion_changelist"))
    suggestions = staff_client.get(
        reverse("admin:licensing_termssuggestion_changelist"), {"q": "Kortere"}
    )
    acceptances = staff_client.get(reverse("admin:licensing_termsacceptance_changelist"))

    assert versions.status_code == suggestions.status_code == acceptances.status_code == 200
    row = next(r for r in versions.context["cl"].result_list if r.pk == version.pk)
    assert row.acceptances_total == 1
    assert admin.organisation.legal_name in suggestions.content.decode()
    assert admin.organisation.legal_name in acceptances.content.decode()


# --- Concurrency (PostgreSQL) ------------------------------------------------------------------


def _in_threads(target, count: int = 2) -> list:
    """Run ``target`` in ``count`` threads that start together; each has its own connection."""
    barrier = threading.Barrier(count, timeout=WAIT_SECONDS)
    results: list = []
    errors: list = []

    def run():
        try:
            barrier.wait()
            results.append(target())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive(), "thread did not finish in time"
    if errors:
        raise errors[0]
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r20_concurrent_publish_on_postgresql_mails_every_contact_once(mailbox):
    admin, (member,), _ = customer()
    version = draft("2026.2", TODAY, major=True)

    _in_threads(lambda: terms_publish(version=version, staff_user=None), count=3)

    assert sorted(address for message in mailbox for address in message.to) == sorted(
        [admin.user.email, member.user.email]
    )
    assert AuditEvent.objects.filter(action="licensing.terms_published").count() == 1
    assert newsletter_rows(version) == sorted([admin.user.pk, member.user.pk])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r20_concurrent_newsletter_runs_on_postgresql_mail_every_contact_once(mailbox):
    people = [customer()[:2] for _ in range(3)]
    version = draft("2026.2", TODAY, major=True)
    # Published without the service's own newsletter run, so only the threads send.
    TermsVersion.objects.filter(pk=version.pk).update(published_at=clock.now())

    sent = _in_threads(lambda: terms_newsletter_send(version=version), count=3)

    expected = sorted(m.user.email for admin, others in people for m in (admin, *others))
    assert sorted(address for message in mailbox for address in message.to) == expected
    assert sum(sent) == len(expected)
