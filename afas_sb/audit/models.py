from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ActorKind(models.TextChoices):
    CUSTOMER = "customer", _("klant")
    STAFF = "staff", _("medewerker")
    SB_APPLICATION = "sb_application", _("SB-applicatie")
    CALENDAR = "calendar", _("kalender")
    SYSTEM = "system", _("systeem")


class AuditEvent(models.Model):
    """An append-only record of who changed what, and why.

    ``organisation_id`` is a plain column, not a foreign key: the kernel sits
    below the apps that own organisations, and the trail must outlive them.
    """

    created_at = models.DateTimeField(_("tijdstip"), auto_now_add=True, db_index=True)
    actor_kind = models.CharField(_("door"), max_length=20, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("gebruiker"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    organisation_id = models.BigIntegerField(_("organisatie-id"), null=True, blank=True)
    action = models.CharField(_("actie"), max_length=80)
    object_type = models.CharField(_("objecttype"), max_length=80, blank=True)
    object_id = models.CharField(_("object-id"), max_length=64, blank=True)
    reason = models.TextField(_("reden"), blank=True)
    data = models.JSONField(_("gegevens"), default=dict, blank=True)

    class Meta:
        verbose_name = _("auditregel")
        verbose_name_plural = _("auditlog")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organisation_id", "-created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"
