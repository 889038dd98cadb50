from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ServiceToken(models.Model):
    """A credential of one SB application environment for the counts API.

    Only the SHA-256 of the token is stored; the token is shown once, when the
    management command creates it. Staff revoke it in admin.
    """

    class Environment(models.TextChoices):
        PRODUCTION = "production", _("Productie")
        ACCEPTANCE = "acceptance", _("Acceptatie")
        TEST = "test", _("Test")

    name = models.CharField(_("naam"), max_length=100)
    environment = models.CharField(_("omgeving"), max_length=20, choices=Environment.choices)
    prefix = models.CharField(_("begin van de token"), max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("aangemaakt op"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(_("laatst gebruikt"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("ingetrokken op"), null=True, blank=True)

    class Meta:
        verbose_name = _("servicetoken")
        verbose_name_plural = _("servicetokens")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.get_environment_display()}, {self.prefix}…)"


class CountEvent(models.Model):
    """One accepted push of licence counts, kept so a repeat gets the same answer (R3)."""

    event_id = models.CharField(_("event-id"), max_length=100, unique=True)
    token = models.ForeignKey(
        ServiceToken, verbose_name=_("token"), on_delete=models.PROTECT, related_name="events"
    )
    agreement = models.ForeignKey(
        "licensing.Agreement",
        verbose_name=_("overeenkomst"),
        on_delete=models.PROTECT,
        related_name="count_events",
    )
    payload = models.JSONField(_("ontvangen"))
    response_body = models.JSONField(_("antwoord"))
    received_at = models.DateTimeField(_("ontvangen op"), auto_now_add=True)

    class Meta:
        verbose_name = _("telling van SB")
        verbose_name_plural = _("tellingen van SB")
        ordering = ["-received_at"]

    def __str__(self):
        return self.event_id
