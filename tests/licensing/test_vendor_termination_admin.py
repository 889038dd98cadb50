"""R15 in the back office: staff end an agreement at once, with a reason and a note."""

from datetime import date

import pytest
from django.urls import reverse

from afas_sb import clock
from afas_sb.audit.models import AuditEvent
from licensing.models import Agreement, Component, Organisation, Product, Termination
from licensing.services.agreements import agreement_create, licence_set_quantities
from licensing.services.terminations import agreement_terminate_by_customer
from tests.factories import FirmFactory, MembershipFactory, OrganisationFactory, give_mandate

CHANGELIST = "admin:licensing_agreement_changelist"


@pytest.fixture
def component(db):
    product = Product.objects.create(code="sb", name="AFAS SB")
    return Component.objects.create(
        product=product, code="users", name="Gebruikers", kind="user", unit="gebruiker"
    )


@pytest.fixture
def firm(db):
    firm = FirmFactory(legal_name="Kantoor Jansen")
    MembershipFactory(organisation=firm, role="admin", user__email="partner@jansen.nl")
    return firm


@pytest.fixture
def firm_client(firm, component):
    """A client billed via the firm."""
    organisation = OrganisationFactory(
        legal_name="Bakkerij Via Kantoor", accountancy_firm=firm, billed_via=firm
    )
    return agreement_create(
        organisation=organisation, start_date=date(2026, 1, 1), quantities={component: 2}
    )


@pytest.fixture
def direct(component):
    organisation = OrganisationFactory(legal_name="Direct Klant B.V.", kvk_number="87654321")
    give_mandate(organisation)
    return agreement_create(
        organisation=organisation, start_date=date(2026, 1, 1), quantities={component: 5}
    )


def _action(client, agreements, **data):
    return client.post(
        reverse(CHANGELIST),
        {
            "action": "terminate_by_vendor",
            "_selected_action": [a.pk for a in agreements],
            **data,
        },
    )


def test_agreement_admin_lists_searches_and_filters(staff_client, firm_client, direct):
    url = reverse(CHANGELIST)

    by_number = staff_client.get(url, {"q": direct.number}).content.decode()
    by_kvk = staff_client.get(url, {"q": "87654321"}).content.decode()
    via_firm = staff_client.get(url, {"billed": "firm"}).content.decode()
    billed_direct = staff_client.get(url, {"billed": "direct"}).content.decode()
    entrepreneurs = staff_client.get(url, {"organisation__kind": "entrepreneur"})

    assert "Direct Klant B.V." in by_number and "Bakkerij Via Kantoor" not in by_number
    assert "Direct Klant B.V." in by_kvk
    assert "Bakkerij Via Kantoor" in via_firm and "Direct Klant B.V." not in via_firm
    assert "Direct Klant B.V." in billed_direct and "Bakkerij Via Kantoor" not in billed_direct
    assert entrepreneurs.status_code == 200


def test_agreement_admin_shows_lines_history_and_terminations(staff_client, direct, component):
    licence_set_quantities(agreement=direct, quantities={component: 7}, source="sb_application")
    agreement_terminate_by_customer(agreement=direct, user=None)

    page = staff_client.get(reverse("admin:licensing_agreement_change", args=[direct.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "Gebruikers" in html
    assert "SB-applicatie" in html  # the change history
    assert "Opzegging door klant" in html


def test_r15_vendor_action_asks_for_reason_and_note_first(staff_client, direct):
    response = _action(staff_client, [direct])

    html = response.content.decode()
    assert response.status_code == 200
    assert "Direct beëindigen (leverancier)" in html
    assert "Surseance van betaling aangevraagd" in html
    assert direct.number in html
    direct.refresh_from_db()
    assert direct.status == Agreement.Status.ACTIVE
    assert not Termination.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"reason": "non_payment", "note": "Niet betaald"},  # not a vendor reason
        {"reason": "breach", "note": ""},  # staff always say why
    ],
)
def test_r15_vendor_action_with_bad_input_changes_nothing(staff_client, direct, data):
    response = _action(staff_client, [direct], apply="yes", **data)

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    direct.refresh_from_db()
    assert direct.status == Agreement.Status.ACTIVE
    assert not Termination.objects.exists()


def test_r15_vendor_action_ends_at_once_and_mails_the_firm(
    staff_client, staff_user, firm_client, mailbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _action(
            staff_client,
            [firm_client],
            apply="yes",
            reason="surseance",
            note="Surseance verleend door de rechtbank",
        )

    assert response.status_code == 302
    termination = Termination.objects.get()
    assert termination.kind == Termination.Kind.VENDOR
    assert termination.reason == Termination.Reason.SURSEANCE
    assert termination.effective_date == clock.today()
    assert termination.requested_by == staff_user
    firm_client.refresh_from_db()
    assert firm_client.status == Agreement.Status.TERMINATED
    assert firm_client.end_date == clock.today()
    organisation = Organisation.objects.get(pk=firm_client.organisation_id)
    assert organisation.status == Organisation.Status.TERMINATED
    event = AuditEvent.objects.get(action="licensing.agreement_terminated_at_once")
    assert event.actor_user == staff_user
    assert [m.to for m in mailbox] == [["partner@jansen.nl"]]
    messages = staff_client.get(reverse(CHANGELIST)).content.decode()
    assert "per direct beëindigd" in messages


def test_r15_vendor_action_without_a_firm_mails_no_one(
    staff_client, direct, mailbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _action(
            staff_client, [direct], apply="yes", reason="breach", note="Wanbetaling en misbruik"
        )

    direct.refresh_from_db()
    assert direct.status == Agreement.Status.TERMINATED
    assert mailbox == []


def test_r15_vendor_action_twice_is_harmless(
    staff_client, firm_client, mailbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _action(staff_client, [firm_client], apply="yes", reason="bankruptcy", note="Failliet")
        response = _action(
            staff_client, [firm_client], apply="yes", reason="bankruptcy", note="Failliet"
        )

    assert response.status_code == 302
    assert Termination.objects.count() == 1
    assert len(mailbox) == 1
    messages = staff_client.get(reverse(CHANGELIST)).content.decode()
    assert "was al beëindigd" in messages


def test_agreements_are_not_added_or_deleted_in_admin(staff_client, direct):
    assert staff_client.get(reverse("admin:licensing_agreement_add")).status_code == 403
    assert (
        staff_client.get(reverse("admin:licensing_agreement_delete", args=[direct.pk])).status_code
        == 403
    )


def test_termination_admin_filters_and_searches(staff_client, direct, firm_client):
    agreement_terminate_by_customer(agreement=direct, user=None)
    url = reverse("admin:licensing_termination_changelist")

    by_kind = staff_client.get(url, {"kind__exact": "customer"}).content.decode()
    by_status = staff_client.get(url, {"status__exact": "effective"}).content.decode()
    by_name = staff_client.get(url, {"q": "Direct Klant"}).content.decode()
    by_number = staff_client.get(url, {"q": direct.number}).content.decode()

    assert "Direct Klant B.V." in by_kind
    assert "Direct Klant B.V." not in by_status
    assert "Direct Klant B.V." in by_name
    assert direct.number in by_number
    assert staff_client.get(url, {"effective_date__gte": "2026-01-01"}).status_code == 200
    assert staff_client.get(reverse("admin:licensing_termination_add")).status_code == 403
