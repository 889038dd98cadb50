import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from afas_sb import clock


class Role(models.TextChoices):
    """What a person may do for an organisation in the portal.

    admin: everything, including people and contacts; billing: invoices and
    payment details; member: day-to-day use; viewer: read only.
    """

    ADMIN = "admin", _("Beheerder")
    BILLING = "billing", _("Financieel")
    MEMBER = "member", _("Medewerker")
    VIEWER = "viewer", _("Alleen lezen")


class Membership(models.Model):
    """A person in an organisation, with a role and contact flags (§6.8.4)."""

    TENANT_FIELD = "organisation"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("gebruiker"),
        on_delete=models.CASCADE,
        related_name="memberships",
    )
    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("organisatie"),
        on_delete=models.CASCADE,
        related_name="memberships",
    )
    role = models.CharField(_("rol"), max_length=20, choices=Role.choices, default=Role.MEMBER)
    is_subscription_contact = models.BooleanField(
        _("contactpersoon abonnement"),
        default=False,
        help_text=_("Eerste aanspreekpunt over het abonnement en bij een datalek."),
    )
    is_breach_contact = models.BooleanField(
        _("Meldplicht Datalekken"),
        default=False,
        help_text=_("Krijgt ook meldingen over datalekken (§6.8.4 van de voorwaarden)."),
    )
    created_at = models.DateTimeField(_("lid sinds"), auto_now_add=True)

    class Meta:
        verbose_name = _("lidmaatschap")
        verbose_name_plural = _("lidmaatschappen")
        ordering = ["organisation", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organisation"], name="portal_membership_unique"
            ),
            models.UniqueConstraint(
                fields=["organisation"],
                condition=Q(is_subscription_contact=True),
                name="portal_one_subscription_contact",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["admin", "billing", "member", "viewer"]),
                name="portal_membership_role_valid",
            ),
        ]

    def __str__(self):
        return f"{self.user} @ {self.organisation} ({self.get_role_display()})"


class Invitation(models.Model):
    """An e-mailed invitation to join an organisation.

    Only the SHA-256 of the token is stored: a leaked database row cannot be
    used to join. Whether an invitation is still open follows from its dates.
    """

    TENANT_FIELD = "organisation"

    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("organisatie"),
        on_delete=models.CASCADE,
        related_name="invitations",
    )
    email = models.EmailField(_("e-mailadres"))
    role = models.CharField(_("rol"), max_length=20, choices=Role.choices, default=Role.MEMBER)
    is_subscription_contact = models.BooleanField(_("contactpersoon abonnement"), default=False)
    is_breach_contact = models.BooleanField(_("Meldplicht Datalekken"), default=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uitgenodigd door"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("verstuurd op"), auto_now_add=True)
    expires_at = models.DateTimeField(_("verloopt op"))
    accepted_at = models.DateTimeField(_("geaccepteerd op"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("geaccepteerd door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(_("ingetrokken op"), null=True, blank=True)

    class Meta:
        verbose_name = _("uitnodiging")
        verbose_name_plural = _("uitnodigingen")
        ordering = ["-created_at"]
        constraints = [
            # One open invitation per address and organisation; a resend replaces it.
            models.UniqueConstraint(
                "organisation",
                models.functions.Lower("email"),
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="portal_one_open_invitation",
            ),
        ]

    def __str__(self):
        return f"{self.email} → {self.organisation}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= clock.now()

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and not self.is_expired

    @property
    def state_label(self) -> str:
        if self.accepted_at:
            return _("Geaccepteerd")
        if self.revoked_at:
            return _("Ingetrokken")
        if self.is_expired:
            return _("Verlopen")
        return _("Openstaand")
