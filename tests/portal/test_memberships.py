import pytest
from django.urls import reverse

from afas_sb.audit.models import AuditEvent
from portal.models import Membership
from tests.factories import MembershipFactory


def _edit(client, membership, **data):
    payload = {"role": membership.role, **data}
    return client.post(reverse("portal:membership_edit", args=[membership.pk]), payload)


@pytest.fixture
def colleague(org_admin):
    return MembershipFactory(organisation=org_admin.organisation, role="member")


def test_admin_changes_role_and_breach_flag(org_admin_client, org_admin, colleague):
    response = _edit(org_admin_client, colleague, role="billing", is_breach_contact="on")

    assert response.status_code == 302
    colleague.refresh_from_db()
    assert colleague.role == "billing"
    assert colleague.is_breach_contact
    event = AuditEvent.objects.get(action="portal.membership_updated")
    assert event.actor_user == org_admin.user
    assert event.data["before"]["role"] == "member"
    assert event.data["after"]["role"] == "billing"


def test_subscription_contact_moves_to_the_new_person(org_admin_client, org_admin, colleague):
    _edit(org_admin_client, colleague, is_subscription_contact="on")

    contacts = Membership.objects.filter(
        organisation=org_admin.organisation, is_subscription_contact=True
    )
    assert list(contacts) == [colleague]


def test_subscription_contact_cannot_simply_be_dropped(org_admin_client, org_admin):
    response = _edit(org_admin_client, org_admin, role="admin")

    assert response.status_code == 200
    assert "Er moet altijd een contactpersoon voor het abonnement zijn" in response.content.decode()
    org_admin.refresh_from_db()
    assert org_admin.is_subscription_contact


def test_last_admin_cannot_be_demoted(org_admin_client, org_admin):
    response = _edit(org_admin_client, org_admin, role="viewer", is_subscription_contact="on")

    assert "minstens één beheerder" in response.content.decode()
    org_admin.refresh_from_db()
    assert org_admin.role == "admin"
    assert not AuditEvent.objects.exists()


def test_admin_removes_a_colleague(org_admin_client, colleague):
    response = org_admin_client.post(
        reverse("portal:membership_remove", args=[colleague.pk]), follow=True
    )

    assert not Membership.objects.filter(pk=colleague.pk).exists()
    assert "heeft geen toegang meer" in response.content.decode()
    assert AuditEvent.objects.filter(action="portal.membership_removed").exists()


def test_subscription_contact_cannot_be_removed(org_admin_client, org_admin, colleague):
    second_admin = MembershipFactory(organisation=org_admin.organisation, role="admin")
    org_admin_client.force_login(second_admin.user)

    response = org_admin_client.post(
        reverse("portal:membership_remove", args=[org_admin.pk]), follow=True
    )

    assert Membership.objects.filter(pk=org_admin.pk).exists()
    assert "is contactpersoon voor het abonnement" in response.content.decode()


def test_invalid_role_is_a_form_error(org_admin_client, colleague):
    response = _edit(org_admin_client, colleague, role="superuser")

    assert response.status_code == 200
    assert "Selecteer een geldige keuze" in response.content.decode()
    colleague.refresh_from_db()
    assert colleague.role == "member"


@pytest.mark.parametrize("role", ["billing", "member", "viewer"])
def test_non_admins_see_contacts_but_cannot_change_them(client, org_admin, role):
    member = MembershipFactory(organisation=org_admin.organisation, role=role)
    client.force_login(member.user)

    page = client.get(reverse("portal:contacts"))
    edit = client.post(reverse("portal:membership_edit", args=[org_admin.pk]), {"role": "viewer"})

    assert page.status_code == 200
    assert "Collega uitnodigen" not in page.content.decode()
    assert edit.status_code == 403
    org_admin.refresh_from_db()
    assert org_admin.role == "admin"
