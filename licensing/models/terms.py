from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TermsVersion(models.Model):
    """A published version of the terms and conditions (§1.2, R20). The newest applies."""

    number = models.CharField(_("versie"), max_length=20, unique=True)
    effective_date = models.DateField(_("geldt vanaf"))
    summary = models.TextField(_("samenvatting van de wijzigingen"))
    full_text = models.TextField(_("volledige tekst"))
    is_major = models.BooleanField(
        _("grote wijziging"),
        default=False,
        help_text=_("Grote wijzigingen gaan ook per nieuwsbrief."),
    )
    published_at = models.DateTimeField(_("gepubliceerd op"), null=True, blank=True)
    created_at = models.DateTimeField(_("aangemaakt op"), auto_now_add=True)

    class Meta:
        verbose_name = _("versie voorwaarden")
        verbose_name_plural = _("versies voorwaarden")
        ordering = ["-effective_date", "-number"]

    def __str__(self):
        return self.number


class TermsAcceptance(models.Model):
    """An organisation's beheerder has seen and accepted a version."""

    TENANT_FIELD = "organisation"

    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("organisatie"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    terms_version = models.ForeignKey(
        TermsVersion, verbose_name=_("versie"), on_delete=models.PROTECT, related_name="acceptances"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("door"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    accepted_at = models.DateTimeField(_("geaccepteerd op"), auto_now_add=True)

    class Meta:
        verbose_name = _("acceptatie voorwaarden")
        verbose_name_plural = _("acceptaties voorwaarden")
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "terms_version"], name="licensing_accept_once"
            ),
        ]

    def __str__(self):
        return f"{self.organisation_id}: {self.terms_version}"


class TermsSuggestion(models.Model):
    """An improvement suggestion a customer sends about a version (§1.2)."""

    TENANT_FIELD = "organisation"

    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("organisatie"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    terms_version = models.ForeignKey(
        TermsVersion, verbose_name=_("versie"), on_delete=models.PROTECT, related_name="suggestions"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("door"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    text = models.TextField(_("verbetervoorstel"))
    created_at = models.DateTimeField(_("ingediend op"), auto_now_add=True)

    class Meta:
        verbose_name = _("verbetervoorstel")
        verbose_name_plural = _("verbetervoorstellen")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.terms_version}: {self.text[:40]}"
