"""SEPA Core direct debit mandates (R12, terms §3.3).

A direct customer (an entrepreneur billed directly, not via its accountancy
firm) pays by mandatory direct debit; a firm may choose debit or transfer.

SEPA choice on a changed account (EPC SDD Core rulebook, AT-24 "reason for
amendment"): the rulebook allows keeping the mandate reference and sending the
original debtor account ("SMNDA" when the debtor changed bank) with the next
collection. We do not amend. A new IBAN — at the same bank or another — makes a
NEW mandate with a new reference whose first collection is FRST; the previous
mandate becomes "replaced" and ``amends`` points at it. The customer signs a
fresh e-mandate anyway, a new reference needs no amendment indicator in the
pain.008 (which sepaxml does not check), and FRST on a new mandate is always
accepted by the debtor bank, so no bank-specific amendment rules can bite.
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# The SEPA (Latin) character set for identifiers such as the mandate reference (AT-01).
SEPA_REFERENCE_RE = re.compile(r"^[A-Za-z0-9/\-?:().,'+ ]{1,35}$")


def validate_sepa_reference(value: str) -> None:
    """The EPC rules for a mandate id: SEPA characters, 1–35, no leading/trailing '/' nor '//'."""
    if (
        not SEPA_REFERENCE_RE.match(value or "")
        or value.startswith("/")
        or value.endswith("/")
        or "//" in value
    ):
        raise ValidationError(
            _("Een machtigingskenmerk bevat alleen SEPA-tekens en is hooguit 35 tekens lang."),
            code="sepa_reference",
        )


def mask_iban(iban: str) -> str:
    """Only the last four characters visible; the length is hidden too."""
    if not iban:
        return ""
    return f"•••• •••• •••• {iban[-4:]}"


class Mandate(models.Model):
    """One signed e-mandate for SEPA Core direct debit; at most one active per organisation."""

    TENANT_FIELD = "organisation"

    class Status(models.TextChoices):
        ACTIVE = "active", _("Actief")
        REPLACED = "replaced", _("Vervangen")
        REVOKED = "revoked", _("Ingetrokken")
        INVALID = "invalid", _("Ongeldig")

    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("organisatie"),
        on_delete=models.PROTECT,
        related_name="mandates",
    )
    reference = models.CharField(
        _("machtigingskenmerk"),
        max_length=35,
        unique=True,
        validators=[validate_sepa_reference],
    )
    account_holder = models.CharField(_("rekeninghouder"), max_length=70)
    iban = models.CharField(_("IBAN"), max_length=34, help_text=_("Zonder spaties."))
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    signed_at = models.DateTimeField(_("getekend op"))
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("getekend door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    signed_ip = models.GenericIPAddressField(_("IP-adres"), null=True, blank=True)
    mandate_text = models.TextField(_("machtigingstekst"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    first_collected_at = models.DateTimeField(
        _("eerste incasso geïnd op"),
        null=True,
        blank=True,
        help_text=_("Leeg: de volgende incasso is FRST; daarna RCUR."),
    )
    amends = models.ForeignKey(
        "self",
        verbose_name=_("vervangt"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_by",
    )
    invalid_reason = models.CharField(_("reden ongeldig"), max_length=35, blank=True)
    ended_at = models.DateTimeField(_("beëindigd op"), null=True, blank=True)
    created_at = models.DateTimeField(_("aangemaakt op"), auto_now_add=True)

    class Meta:
        verbose_name = _("incassomachtiging")
        verbose_name_plural = _("incassomachtigingen")
        ordering = ["-signed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation"],
                condition=Q(status="active"),
                name="billing_mandate_one_active_per_org",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "replaced", "revoked", "invalid"]),
                name="billing_mandate_status_valid",
            ),
            models.CheckConstraint(condition=~Q(iban=""), name="billing_mandate_iban_present"),
        ]

    def __str__(self):
        return f"{self.reference} ({self.get_status_display()})"

    @property
    def iban_masked(self) -> str:
        return mask_iban(self.iban)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
