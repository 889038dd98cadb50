"""R14 and R16 in the portal: "Opzeggen" shows the exact end date first, and after the end
only invoices, privacy and the people page stay open."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from afas_sb.audit.models import AuditEvent
from licensing.models import Agreement, Component, Organisation, Product, Termination
from licensing.services.agreements import agreement_create
from licensing.services.terminations import (
    agreement_terminate_by_customer,
    agreement_terminate_by_vendor,
    terminations_apply_due,
)
from tests.factories import FirmFactory, MembershipFactory, OrganisationFactory, give_mandate

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
URL = "/opzeggen/"


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=AMSTERDAM)


@pytest.fixture
def component(db):
    product = Product.objects.create(code="sb", name="AFAS SB")
    return Component.objects.create(
        product=product, code="users", name="Gebruikers", kind="user", unit="gebruiker"
    )


@pytest.fixture
def agreement(org_admin, component):
    give_mandate(org_admin.organisation)
    return agreement_create(
        organisation=org_admin.organisation,
        start_date=date(2026, 1, 1),
        quantities={component: 4},
    )


@pytest.fixture
def on_day(time_machine, client):
    """Move to a day (noon in Amsterdam) and log in again: sessions last 8 hours."""

    def move(day: date, user, hour: int = 12):
        time_machine.move_to(at(day, hour), tick=False)
        client.force_login(user)
        return client

    return move


def _confirm(client, end_date: str, **extra):
    return client.post(URL, {"confirm": "on", "end_date": end_date, **extra})


def test_termination_url_is_in_the_portal_namespace():
    assert reverse("portal:termination") == URL
    assert reverse("portal:termination_withdraw") == "/opzeggen/intrekken/"


# --- R14: the page shows the date before the customer confirms ------------------------------


def test_r14_page_shows_end_date_and_cutoff_before_confirming(on_day, org_admin, agreement):
    client = on_day(date(2026, 11, 20), org_admin.user)

    response = client.get(URL)

    page = response.content.decode()
    assert response.status_code == 200
    assert agreement.number in page
    assert "maandag 30 november 2026" in page
    assert "Zeg je uiterlijk donderdag 26 november 2026 op" in page
    assert "31 december 2026" in page  # what a later request would mean
    assert "Gebruikers" in page
    assert 'name="confirm"' in page
    assert not Termination.objects.exists()


def test_r14_page_after_the_cutoff_explains_the_extra_period(on_day, org_admin, agreement):
    client = on_day(date(2026, 11, 27), org_admin.user)

    page = client.get(URL).content.decode()

    assert "donderdag 31 december 2026" in page
    assert "donderdag 26 november 2026" in page
    assert "Zeg je uiterlijk" not in page


def test_r14_confirming_schedules_the_termination(on_day, org_admin, agreement):
    client = on_day(date(2026, 11, 26), org_admin.user)

    response = _confirm(client, "2026-11-30", note="We stoppen met de zaak")

    assert response.status_code == 302
    termination = Termination.objects.get()
    assert termination.effective_date == date(2026, 11, 30)
    assert termination.note == "We stoppen met de zaak"
    assert termination.requested_by == org_admin.user
    page = client.get(URL).content.decode()
    assert "Je licentie is opgezegd; de laatste dag is 30 november 2026" in page
    assert "Je licentie loopt nog tot en met maandag 30 november 2026 (nog 4 dagen)" in page
    assert "Opzegging intrekken" in page


def test_r14_confirming_without_the_checkbox_changes_nothing(on_day, org_admin, agreement):
    client = on_day(date(2026, 11, 20), org_admin.user)

    response = client.post(URL, {"end_date": "2026-11-30"})

    assert response.status_code == 200
    assert "Vink aan dat je de licentie wilt opzeggen." in response.content.decode()
    assert not Termination.objects.exists()
    agreement.refresh_from_db()
    assert agreement.status == Agreement.Status.ACTIVE


def test_r14_confirming_after_the_date_moved_asks_again(on_day, org_admin, agreement):
    # The page was opened on the cutoff day; the form arrives the next day.
    client = on_day(date(2026, 11, 27), org_admin.user)

    response = _confirm(client, "2026-11-30")

    page = response.content.decode()
    assert response.status_code == 200
    assert "De einddatum is veranderd" in page
    assert "31 december 2026" in page
    assert not Termination.objects.exists()


@pytest.mark.parametrize("role", ["billing", "member", "viewer"])
def test_r14_only_a_beheerder_may_terminate(on_day, org_admin, agreement, role):
    colleague = MembershipFactory(organisation=org_admin.organisation, role=role)
    client = on_day(date(2026, 11, 20), colleague.user)

    page = client.get(URL)
    response = _confirm(client, "2026-11-30")

    assert page.status_code == 200
    assert "Alleen een beheerder" in page.content.decode()
    assert 'name="confirm"' not in page.content.decode()
    assert response.status_code == 403
    assert "Daar heb je geen rechten voor" in response.content.decode()
    assert not Termination.objects.exists()


def test_r14_a_firm_sees_its_clients_page_read_only(on_day, component):
    firm = FirmFactory()
    accountant = MembershipFactory(organisation=firm, role="admin")
    client_org = OrganisationFactory(accountancy_firm=firm)
    give_mandate(client_org)
    agreement_create(
        organisation=client_org, start_date=date(2026, 1, 1), quantities={component: 1}
    )
    client = on_day(date(2026, 11, 20), accountant.user)
    client.post(reverse("portal:switch_organisation"), {"organisation": client_org.pk})

    response = _confirm(client, "2026-11-30")

    assert response.status_code == 403
    assert not Termination.objects.exists()


def test_r14_page_without_a_licence_says_so(on_day, org_admin):
    client = on_day(date(2026, 11, 20), org_admin.user)

    response = client.get(URL)

    assert response.status_code == 200
    assert "Geen lopende licentie" in response.content.decode()


def test_r14_page_query_count_is_fixed(on_day, org_admin, agreement, component):
    client = on_day(date(2026, 11, 20), org_admin.user)
    with CaptureQueriesContext(connection) as before:
        client.get(URL)
    for n in range(10):
        extra = Component.objects.create(
            product=component.product, code=f"extra-{n}", name=f"Extra {n}", kind="other", unit="x"
        )
        agreement.lines.create(component=extra, quantity=n + 1)
    with CaptureQueriesContext(connection) as after:
        client.get(URL)

    assert len(after) == len(before)


# --- R14: withdrawal in the portal ------------------------------------------------------------


def test_r14_withdraw_before_the_last_day(on_day, org_admin, agreement):
    client = on_day(date(2026, 11, 20), org_admin.user)
    _confirm(client, "2026-11-30")

    response = client.post(reverse("portal:termination_withdraw"))

    assert response.status_code == 302
    termination = Termination.objects.get()
    assert termination.status == Termination.Status.WITHDRAWN
    agreement.refresh_from_db()
    assert agreement.status == Agreement.Status.ACTIVE
    page = client.get(URL).content.decode()
    assert 'name="confirm"' in page  # the customer may terminate again


def test_r14_withdraw_needs_a_beheerder(on_day, org_admin, agreement):
    termination = agreement_terminate_by_customer(agreement=agreement, user=org_admin.user)
    member = MembershipFactory(organisation=org_admin.organisation, role="member")
    client = on_day(date(2026, 11, 20), member.user)

    page = client.get(URL).content.decode()
    response = client.post(reverse("portal:termination_withdraw"))

    assert "Opzegging intrekken" not in page
    assert response.status_code == 403
    termination.refresh_from_db()
    assert termination.status == Termination.Status.SCHEDULED


def test_r14_withdraw_after_the_last_day_is_refused_with_a_message(on_day, org_admin, agreement):
    client = on_day(date(2026, 11, 20), org_admin.user)
    _confirm(client, "2026-11-30")
    client = on_day(date(2026, 12, 1), org_admin.user, hour=0)  # before the calendar ran

    response = client.post(reverse("portal:termination_withdraw"), follow=True)

    assert "kan niet meer worden ingetrokken" in response.content.decode()
    assert Termination.objects.get().status == Termination.Status.SCHEDULED


# --- R16: after the end ------------------------------------------------------------------------


@pytest.fixture
def ended(on_day, org_admin, agreement):
    """The licence ended on 30 November 2026; it is now 2 December."""
    on_day(date(2026, 11, 20), org_admin.user)
    agreement_terminate_by_customer(agreement=agreement, user=org_admin.user)
    terminations_apply_due(today=date(2026, 12, 1))
    return on_day(date(2026, 12, 2), org_admin.user)


def test_r16_on_the_last_day_everything_still_opens(on_day, org_admin, agreement):
    on_day(date(2026, 11, 20), org_admin.user)
    agreement_terminate_by_customer(agreement=agreement, user=org_admin.user)
    client = on_day(date(2026, 11, 30), org_admin.user)
    terminations_apply_due(today=date(2026, 11, 30))

    response = client.get(reverse("portal:dashboard"))

    assert response.status_code == 200
    assert "Je licentie is beëindigd" not in response.content.decode()


@pytest.mark.parametrize(
    "name", ["portal:dashboard", "portal:licentie", "portal:meldingen", "portal:termination"]
)
def test_r16_after_the_end_pages_show_the_terminated_page(ended, name):
    response = ended.get(reverse(name))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Je licentie is beëindigd" in page
    assert "geëindigd op 30 november 2026" in page
    assert "tot en met 30 november 2027" in page  # retention starts 1 December 2026
    assert reverse("portal:facturen") in page
    assert reverse("portal:privacy") in page


@pytest.mark.parametrize("name", ["portal:facturen", "portal:privacy"])
def test_r16_after_the_end_invoices_and_privacy_stay_open(ended, name):
    response = ended.get(reverse(name))

    assert response.status_code == 200
    assert "Je licentie is beëindigd" not in response.content.decode()


def test_r16_after_the_end_the_people_page_is_read_only(ended, org_admin):
    response = ended.get(reverse("portal:contacts"))

    page = response.content.decode()
    assert response.status_code == 200
    assert org_admin.user.email in page
    assert "Collega uitnodigen" not in page
    assert reverse("portal:organisation_edit") not in page


def test_r16_after_the_end_writes_change_nothing(ended, org_admin):
    organisation = org_admin.organisation

    response = ended.post(
        reverse("portal:invitation_create"), {"email": "nieuw@example.nl", "role": "member"}
    )
    edit = ended.post(reverse("portal:organisation_edit"), {"legal_name": "Andere naam"})

    assert response.status_code == 200
    assert "Je licentie is beëindigd" in response.content.decode()
    assert edit.status_code == 200
    assert organisation.invitations.count() == 0
    assert Organisation.objects.get(pk=organisation.pk).legal_name == organisation.legal_name
    assert not AuditEvent.objects.filter(action__startswith="portal.").exists()


def test_r16_vendor_termination_closes_the_portal_at_once(on_day, org_admin, agreement, staff_user):
    client = on_day(date(2026, 11, 24), org_admin.user)
    agreement_terminate_by_vendor(
        agreement=agreement, reason="breach", note="Misbruik", staff_user=staff_user
    )

    page = client.get(reverse("portal:dashboard")).content.decode()

    assert "geëindigd op 24 november 2026" in page
    assert "tot en met 24 november 2027" in page
