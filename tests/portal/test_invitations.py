import re
from datetime import timedelta

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.urls import reverse

from afas_sb import clock
from afas_sb.audit.models import AuditEvent
from portal.models import Invitation, Membership
from portal.services import invitation_create
from tests.factories import MembershipFactory, UserFactory

User = get_user_model()

# Invitation mails are sent on commit: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


def _link(message) -> str:
    return re.search(r"http://\S+/uitnodiging/\S+/", message.body).group(0)


def _invite(client, **data):
    payload = {"email": "collega@example.nl", "role": "member", **data}
    return client.post(reverse("portal:invitation_create"), payload)


def test_admin_invites_colleague_who_creates_an_account(
    client, org_admin_client, org_admin, mailbox
):
    response = _invite(org_admin_client, is_breach_contact="on")

    assert response.status_code == 302
    assert len(mailbox) == 1
    assert mailbox[0].to == ["collega@example.nl"]
    assert org_admin.organisation.legal_name in mailbox[0].subject
    link = _link(mailbox[0])

    client.logout()
    page = client.get(link)
    assert "Maak je account aan" in page.content.decode()
    response = client.post(
        link,
        {
            "full_name": "Nieuwe Collega",
            "password1": "Lang-genoeg-2026",
            "password2": "Lang-genoeg-2026",
        },
    )

    assert response.status_code == 302
    user = User.objects.get(email="collega@example.nl")
    membership = Membership.objects.get(user=user)
    assert membership.organisation == org_admin.organisation
    assert membership.role == "member"
    assert membership.is_breach_contact
    assert EmailAddress.objects.get(user=user).verified
    assert client.get(reverse("portal:dashboard")).status_code == 200
    assert AuditEvent.objects.filter(action="portal.invitation_accepted", actor_user=user).exists()


def test_existing_user_logs_in_then_accepts(client, org_admin, mailbox):
    existing = UserFactory(email="bestaand@example.nl")
    invitation_create(
        organisation=org_admin.organisation,
        email="Bestaand@Example.nl",
        role="viewer",
        invited_by=org_admin.user,
    )
    link = _link(mailbox[0])

    page = client.get(link).content.decode()
    assert "Je hebt al een account" in page

    client.force_login(existing)
    assert client.post(link).status_code == 302
    assert Membership.objects.get(user=existing).role == "viewer"


def test_invitation_to_existing_member_is_refused_and_changes_nothing(
    org_admin_client, org_admin, mailbox
):
    colleague = MembershipFactory(organisation=org_admin.organisation, role="member")

    response = _invite(org_admin_client, email=colleague.user.email.upper())

    assert response.status_code == 200
    assert f"{colleague.user.email} is al lid van" in response.content.decode()
    assert Invitation.objects.count() == 0
    assert mailbox == []


def test_second_invitation_while_one_is_open_is_refused(org_admin_client, mailbox):
    _invite(org_admin_client)

    response = _invite(org_admin_client)

    assert "Er staat al een uitnodiging open" in response.content.decode()
    assert Invitation.objects.count() == 1
    assert len(mailbox) == 1


def test_expired_invitation_gets_a_clear_message_and_changes_nothing(client, org_admin, mailbox):
    invitation_create(
        organisation=org_admin.organisation,
        email="laat@example.nl",
        role="member",
        invited_by=org_admin.user,
    )
    link = _link(mailbox[0])

    with time_machine.travel(clock.now() + timedelta(days=8)):
        page = client.get(link)
        post = client.post(
            link,
            {
                "full_name": "Te Laat",
                "password1": "Lang-genoeg-2026",
                "password2": "Lang-genoeg-2026",
            },
        )

    assert page.status_code == 410
    assert "Deze uitnodiging is verlopen" in page.content.decode()
    assert post.status_code == 410
    assert not User.objects.filter(email="laat@example.nl").exists()
    assert Membership.objects.count() == 1


def test_expired_invitation_can_be_sent_again(org_admin_client, org_admin, mailbox):
    _invite(org_admin_client)
    with time_machine.travel(clock.now() + timedelta(days=8)):
        org_admin_client.force_login(org_admin.user)  # the session itself expired meanwhile
        invitation = Invitation.objects.get()
        response = org_admin_client.post(reverse("portal:invitation_resend", args=[invitation.pk]))
        assert response.status_code == 302
        invitation.refresh_from_db()
        assert invitation.is_open
    assert len(mailbox) == 2
    assert _link(mailbox[0]) != _link(mailbox[1])


def test_resend_makes_the_old_link_useless(client, org_admin_client, mailbox):
    _invite(org_admin_client)
    invitation = Invitation.objects.get()
    org_admin_client.post(reverse("portal:invitation_resend", args=[invitation.pk]))
    old, new = _link(mailbox[0]), _link(mailbox[1])

    client.logout()
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


def test_revoked_invitation_cannot_be_used(client, org_admin_client, mailbox):
    _invite(org_admin_client)
    invitation = Invitation.objects.get()
    org_admin_client.post(reverse("portal:invitation_revoke", args=[invitation.pk]))

    client.logout()
    response = client.get(_link(mailbox[0]))

    assert response.status_code == 410
    assert "ingetrokken" in response.content.decode()


def test_used_invitation_cannot_be_used_twice(client, org_admin, mailbox):
    invitation_create(
        organisation=org_admin.organisation,
        email="een@example.nl",
        role="member",
        invited_by=org_admin.user,
    )
    link = _link(mailbox[0])
    data = {"full_name": "Een", "password1": "Lang-genoeg-2026", "password2": "Lang-genoeg-2026"}
    client.post(link, data)
    client.logout()

    response = client.get(link)

    assert response.status_code == 410
    assert "al gebruikt" in response.content.decode()


def test_invitation_for_someone_else_is_refused_for_logged_in_user(client, org_admin, mailbox):
    invitation_create(
        organisation=org_admin.organisation,
        email="bedoeld@example.nl",
        role="member",
        invited_by=org_admin.user,
    )
    other = UserFactory(email="ander@example.nl")
    client.force_login(other)

    response = client.post(_link(mailbox[0]))

    assert response.status_code == 403
    assert "Deze uitnodiging is voor bedoeld@example.nl" in response.content.decode()
    assert not Membership.objects.filter(user=other).exists()


def test_weak_password_is_refused_in_dutch(client, org_admin, mailbox):
    invitation_create(
        organisation=org_admin.organisation,
        email="zwak@example.nl",
        role="member",
        invited_by=org_admin.user,
    )

    response = client.post(
        _link(mailbox[0]), {"full_name": "Zwak", "password1": "12345678", "password2": "12345678"}
    )

    assert response.status_code == 200
    assert "Dit wachtwoord is te kort" in response.content.decode()
    assert not User.objects.filter(email="zwak@example.nl").exists()


def test_unknown_invitation_link_is_not_found(client, db):
    response = client.get(reverse("portal:invitation_accept", args=["niet-bestaand"]))

    assert response.status_code == 404
    assert "bestaat niet" in response.content.decode()


@pytest.mark.parametrize("role", ["billing", "member", "viewer"])
def test_only_admins_invite(client, db, role, mailbox):
    membership = MembershipFactory(role=role)
    client.force_login(membership.user)

    response = _invite(client)

    assert response.status_code == 403
    assert Invitation.objects.count() == 0


def test_invitation_with_subscription_contact_moves_the_flag(client, org_admin, mailbox):
    invitation_create(
        organisation=org_admin.organisation,
        email="opvolger@example.nl",
        role="admin",
        is_subscription_contact=True,
        invited_by=org_admin.user,
    )
    client.post(
        _link(mailbox[0]),
        {"full_name": "Opvolger", "password1": "Lang-genoeg-2026", "password2": "Lang-genoeg-2026"},
    )

    contacts = Membership.objects.filter(
        organisation=org_admin.organisation, is_subscription_contact=True
    )
    assert [m.user.email for m in contacts] == ["opvolger@example.nl"]
