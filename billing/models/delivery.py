from django.db import models
from django.utils.translation import gettext_lazy as _


class InvoiceDelivery(models.Model):
    """Getting one invoice to its customer: by e-mail (PDF + UBL) or over Peppol (R10).

    State lives here, not in a Celery message: a periodic sweep re-sends what is
    still pending, so an SMTP or access-point outage delays delivery and loses nothing.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        PEPPOL = "peppol", _("Peppol")

    class Status(models.TextChoices):
        PENDING = "pending", _("Wachtend")
        SENDING = "sending", _("Bezig")
        SENT = "sent", _("Verzonden")
        FAILED = "failed", _("Mislukt")

    invoice = models.OneToOneField(
        "billing.Invoice",
        verbose_name=_("factuur"),
        on_delete=models.PROTECT,
        related_name="delivery",
    )
    channel = models.CharField(_("kanaal"), max_length=10, choices=Channel.choices)
    recipient = models.CharField(_("ontvanger"), max_length=255)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("pogingen"), default=0)
    next_attempt_at = models.DateTimeField(
        _("volgende poging"), null=True, blank=True, db_index=True
    )
    last_error = models.TextField(_("laatste fout"), blank=True)
    external_id = models.CharField(_("bericht-id"), max_length=255, blank=True)
    sent_at = models.DateTimeField(_("verzonden op"), null=True, blank=True)
    created_at = models.DateTimeField(_("aangemaakt op"), auto_now_add=True)
    updated_at = models.DateTimeField(_("gewijzigd op"), auto_now=True)

    class Meta:
        verbose_name = _("verzending")
        verbose_name_plural = _("verzendingen")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return f"{self.invoice} → {self.recipient} ({self.get_status_display()})"
