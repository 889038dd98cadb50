from django.urls import reverse

from afas_sb.audit.models import AuditEvent
from portal.models import Invitation
from portal.services import invitation_create
from tests.factories import MembershipFactory


def test_staff_find_organisations_and_see_their_people(staff_client, org_admin):
    org = org_admin.organisation

    listing = staff_client.get(
        reverse("admin:licensing_organisation_changelist"), {"q": org.kvk_number}
    )
    detail = staff_client.get(reverse("admin:licensing_organisation_change", args=[org.pk]))

    assert org.legal_name in listing.content.decode()
    assert org_admin.user.email in detail.content.decode()


def test_staff_filter_and_revoke_open_invitations(staff_client, staff_user, org_admin):
    invitation_create(
        organisation=org_admin.organisation,
        email="open@example.nl",
        role="member",
        invited_by=org_admin.user,
    )
    url = reverse("admin:portal_invitation_changelist")

    listing = staff_client.get(url, {"state": "open"})
    assert "open@example.nl" in listing.content.decode()

    invitation = Invitation.objects.get()
    staff_client.post(url, {"action": "revoke", "_selected_action": [invitation.pk]})

    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert AuditEvent.objects.get(action="portal.invitation_revoked").actor_user == staff_user
    assert "open@example.nl" not in staff_client.get(url, {"state": "open"}).content.decode()


def test_staff_search_memberships_by_email(staff_client, db):
    membership = MembershipFactory(user__email="zoek.mij@example.nl")

    response = staff_client.get(reverse("admin:portal_membership_changelist"), {"q": "zoek.mij"})

    assert membership.organisation.legal_name in response.content.decode()
