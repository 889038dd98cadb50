"""Every change to memberships, invitations and organisation details.

Each function is one transaction: lock, re-check, save, audit, then mail on
commit. Errors are DomainErrors with a Dutch message for the person acting.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import actor_kind_for, audit_record
from afas_sb.errors import Conflict, DomainError, NotFound, PermissionDenied
from afas_sb.mail import send_templated_mail
from licensing.models import Organisation

from .models import Invitation, Membership, Role

User = get_user_model()

ORGANISATION_DETAIL_FIELDS = (
    "legal_name",
    "vat_id",
    "street",
    "postcode",
    "city",
    "billing_email",
    "peppol_scheme",
    "peppol_endpoint_id",
)


# --- Invitations ---------------------------------------------------------------------


def invitation_create(
    *,
    organisation: Organisation,
    email: str,
    role: str,
    is_subscription_contact: bool = False,
    is_breach_contact: bool = False,
    invited_by,
) -> Invitation:
    """Invite a colleague by e-mail. Refused for a member or an already open invitation."""
    email = User.objects.normalize_email(email).strip().lower()
    _check_role(role)
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=organisation.pk)
        if Membership.objects.filter(organisation=organisation, user__email__iexact=email).exists():
            raise Conflict(
                _("%(email)s is al lid van %(organisation)s.")
                % {"email": email, "organisation": organisation.legal_name},
                code="already_member",
            )
        previous = _unfinished_invitation(organisation, email)
        if previous is not None:
            if not previous.is_expired:
                raise Conflict(
                    _(
                        "Er staat al een uitnodiging open voor %(email)s. "
                        "Verstuur die opnieuw of trek hem in."
                    )
                    % {"email": email},
                    code="invitation_open",
                )
            # An expired invitation makes room for a new one.
            previous.revoked_at = clock.now()
            previous.save(update_fields=["revoked_at"])
        token = secrets.token_urlsafe(32)
        invitation = Invitation.objects.create(
            organisation=organisation,
            email=email,
            role=role,
            is_subscription_contact=is_subscription_contact,
            is_breach_contact=is_breach_contact,
            token_hash=Invitation.hash_token(token),
            invited_by=invited_by,
            expires_at=clock.now() + timedelta(days=settings.INVITATION_VALID_DAYS),
        )
        audit_record(
            action="portal.invitation_created",
            actor_kind=actor_kind_for(invited_by),
            actor_user=invited_by,
            organisation_id=organisation.pk,
            target=invitation,
            data={"email": email, "role": role},
        )
        transaction.on_commit(lambda: _send_invitation(invitation, token))
    return invitation


def invitation_resend(*, invitation: Invitation, actor) -> Invitation:
    """A fresh link and a fresh validity period; the old link stops working."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at or invitation.revoked_at:
            raise Conflict(
                _("Deze uitnodiging is al afgehandeld en kan niet opnieuw worden verstuurd.")
            )
        token = secrets.token_urlsafe(32)
        invitation.token_hash = Invitation.hash_token(token)
        invitation.expires_at = clock.now() + timedelta(days=settings.INVITATION_VALID_DAYS)
        invitation.save(update_fields=["token_hash", "expires_at"])
        audit_record(
            action="portal.invitation_resent",
            actor_kind=actor_kind_for(actor),
            actor_user=actor,
            organisation_id=invitation.organisation_id,
            target=invitation,
        )
        transaction.on_commit(lambda: _send_invitation(invitation, token))
    return invitation


def invitation_revoke(*, invitation: Invitation, actor) -> Invitation:
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.revoked_at:
            return invitation
        if invitation.accepted_at:
            raise Conflict(_("Deze uitnodiging is al geaccepteerd."))
        invitation.revoked_at = clock.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            action="portal.invitation_revoked",
            actor_kind=actor_kind_for(actor),
            actor_user=actor,
            organisation_id=invitation.organisation_id,
            target=invitation,
        )
    return invitation


def invitation_for_token(token: str) -> Invitation:
    """The invitation behind a link, or a DomainError that says why it cannot be used."""
    invitation = (
        Invitation.objects.select_related("organisation", "invited_by")
        .filter(token_hash=Invitation.hash_token(token or ""))
        .first()
    )
    if invitation is None:
        raise NotFound(
            _("Deze uitnodiging bestaat niet (meer). Controleer de link of vraag een nieuwe aan."),
            code="invitation_unknown",
        )
    _check_usable(invitation)
    return invitation


def invitation_accept(*, token: str, user) -> Membership:
    """The logged-in person joins the organisation the invitation is for."""
    with transaction.atomic():
        invitation = invitation_for_token(token)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        _check_usable(invitation)
        if invitation.email.lower() != user.email.lower():
            raise PermissionDenied(
                _(
                    "Deze uitnodiging is voor %(invited)s, maar je bent ingelogd als %(current)s. "
                    "Log uit en open de link opnieuw."
                )
                % {"invited": invitation.email, "current": user.email},
                code="invitation_other_user",
            )
        if Membership.objects.filter(
            user=user, organisation_id=invitation.organisation_id
        ).exists():
            raise Conflict(
                _("Je bent al lid van %(organisation)s.")
                % {"organisation": invitation.organisation.legal_name},
                code="already_member",
            )
        if invitation.is_subscription_contact:
            _clear_subscription_contact(invitation.organisation_id)
        membership = Membership.objects.create(
            user=user,
            organisation_id=invitation.organisation_id,
            role=invitation.role,
            is_subscription_contact=invitation.is_subscription_contact,
            is_breach_contact=invitation.is_breach_contact,
        )
        invitation.accepted_at = clock.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(
            action="portal.invitation_accepted",
            actor_kind=ActorKind.CUSTOMER,
            actor_user=user,
            organisation_id=invitation.organisation_id,
            target=membership,
            data={"role": membership.role},
        )
    return membership


def invitation_accept_as_new_user(*, token: str, full_name: str, password: str):
    """Create the account for an invited address (verified by the link) and join."""
    with transaction.atomic():
        invitation = invitation_for_token(token)
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise Conflict(
                _(
                    "Er bestaat al een account voor %(email)s. Log in om de uitnodiging te accepteren."
                )
                % {"email": invitation.email},
                code="account_exists",
            )
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    email=invitation.email, password=password, full_name=full_name.strip()
                )
        except IntegrityError:
            raise Conflict(
                _(
                    "Er bestaat al een account voor %(email)s. Log in om de uitnodiging te accepteren."
                )
                % {"email": invitation.email},
                code="account_exists",
            ) from None
        # The invitation reached this address, which verifies it.
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        invitation_accept(token=token, user=user)
    return user


def _send_invitation(invitation: Invitation, token: str) -> None:
    inviter = invitation.invited_by
    send_templated_mail(
        to=[invitation.email],
        subject=_("Uitnodiging voor %(organisation)s")
        % {"organisation": invitation.organisation.legal_name},
        template="portal/email/invitation",
        context={
            "invitation": invitation,
            "inviter_name": inviter.get_full_name() if inviter else "",
            "accept_url": settings.SITE_URL + reverse("portal:invitation_accept", args=[token]),
        },
    )


def _unfinished_invitation(organisation: Organisation, email: str) -> Invitation | None:
    return Invitation.objects.filter(
        organisation=organisation,
        email__iexact=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
    ).first()


def _check_usable(invitation: Invitation) -> None:
    if invitation.accepted_at:
        raise Conflict(
            _("Deze uitnodiging is al gebruikt. Log in om verder te gaan."), code="invitation_used"
        )
    if invitation.revoked_at:
        raise Conflict(
            _(
                "Deze uitnodiging is ingetrokken. Vraag de beheerder van %(organisation)s om een nieuwe."
            )
            % {"organisation": invitation.organisation.legal_name},
            code="invitation_revoked",
        )
    if invitation.is_expired:
        raise Conflict(
            _(
                "Deze uitnodiging is verlopen. Vraag de beheerder van %(organisation)s "
                "om de uitnodiging opnieuw te versturen."
            )
            % {"organisation": invitation.organisation.legal_name},
            code="invitation_expired",
        )


# --- Memberships --------------------------------------------------------------------------


def membership_update(
    *,
    membership: Membership,
    role: str,
    is_subscription_contact: bool,
    is_breach_contact: bool,
    actor,
) -> Membership:
    """Change a colleague's role and contact flags.

    An organisation always keeps a beheerder and a subscription contact:
    the flag moves when another person takes it, and cannot simply be dropped.
    """
    _check_role(role)
    with transaction.atomic():
        members = _lock_members(membership.organisation_id)
        membership = members[membership.pk]
        before = _membership_state(membership)
        if membership.role == Role.ADMIN and role != Role.ADMIN:
            _ensure_other_admin(members, membership)
        if membership.is_subscription_contact and not is_subscription_contact:
            raise DomainError(
                _(
                    "Er moet altijd een contactpersoon voor het abonnement zijn. "
                    "Maak eerst iemand anders contactpersoon."
                ),
                code="subscription_contact_required",
            )
        if is_subscription_contact and not membership.is_subscription_contact:
            _clear_subscription_contact(membership.organisation_id)
        membership.role = role
        membership.is_subscription_contact = is_subscription_contact
        membership.is_breach_contact = is_breach_contact
        membership.save(update_fields=["role", "is_subscription_contact", "is_breach_contact"])
        after = _membership_state(membership)
        if after != before:
            audit_record(
                action="portal.membership_updated",
                actor_kind=actor_kind_for(actor),
                actor_user=actor,
                organisation_id=membership.organisation_id,
                target=membership,
                data={"before": before, "after": after, "user": membership.user.email},
            )
    return membership


def membership_remove(*, membership: Membership, actor) -> None:
    with transaction.atomic():
        members = _lock_members(membership.organisation_id)
        membership = members.get(membership.pk)
        if membership is None:
            return
        if membership.role == Role.ADMIN:
            _ensure_other_admin(members, membership)
        if membership.is_subscription_contact:
            raise DomainError(
                _(
                    "%(name)s is contactpersoon voor het abonnement. "
                    "Maak eerst iemand anders contactpersoon."
                )
                % {"name": membership.user.get_full_name()},
                code="subscription_contact_required",
            )
        audit_record(
            action="portal.membership_removed",
            actor_kind=actor_kind_for(actor),
            actor_user=actor,
            organisation_id=membership.organisation_id,
            target=membership,
            data={"user": membership.user.email, "role": membership.role},
        )
        membership.delete()


def _lock_members(organisation_id: int) -> dict[int, Membership]:
    """Lock all of an organisation's memberships, in primary-key order (no deadlocks)."""
    rows = (
        Membership.objects.select_for_update()
        .filter(organisation_id=organisation_id)
        .select_related("user")
        .order_by("pk")
    )
    return {row.pk: row for row in rows}


def _ensure_other_admin(members: dict[int, Membership], membership: Membership) -> None:
    if not any(m.role == Role.ADMIN and m.pk != membership.pk for m in members.values()):
        raise DomainError(
            _(
                "Een organisatie heeft altijd minstens één beheerder. Maak eerst iemand anders beheerder."
            ),
            code="last_admin",
        )


def _clear_subscription_contact(organisation_id: int) -> None:
    Membership.objects.filter(organisation_id=organisation_id, is_subscription_contact=True).update(
        is_subscription_contact=False
    )


def _membership_state(membership: Membership) -> dict:
    return {
        "role": membership.role,
        "is_subscription_contact": membership.is_subscription_contact,
        "is_breach_contact": membership.is_breach_contact,
    }


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise DomainError(_("Onbekende rol."), code="invalid_role")


# --- Organisation details ------------------------------------------------------------------


def organisation_update_details(
    *, organisation: Organisation, changes: dict, actor
) -> Organisation:
    """Save the details a customer maintains itself (address, billing e-mail, VAT id, Peppol).

    ``changes`` must already be validated (the form runs ``Organisation.clean``).
    """
    unknown = set(changes) - set(ORGANISATION_DETAIL_FIELDS)
    if unknown:
        raise DomainError(_("Deze gegevens kun je niet zelf wijzigen."), code="field_not_editable")
    with transaction.atomic():
        locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
        before = {field: getattr(locked, field) for field in changes}
        for field, value in changes.items():
            setattr(locked, field, value)
        changed = [field for field in changes if before[field] != changes[field]]
        if not changed:
            return locked
        locked.save(update_fields=[*changed, "updated_at"])
        audit_record(
            action="licensing.organisation_details_updated",
            actor_kind=actor_kind_for(actor),
            actor_user=actor,
            organisation_id=locked.pk,
            target=locked,
            data={field: {"before": before[field], "after": changes[field]} for field in changed},
        )
    return locked
