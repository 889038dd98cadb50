from django.db import models
from django.utils.translation import gettext_lazy as _


class BillingRun(models.Model):
    """The monthly subscription invoicing for one period (R7), split in chunks."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Bezig")
        DONE = "done", _("Klaar")
        FAILED = "failed", _("Met fouten")

    period_start = models.DateField(_("periode"), unique=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.RUNNING
    )
    agreements_total = models.PositiveIntegerField(_("overeenkomsten"), default=0)
    chunks_total = models.PositiveIntegerField(_("delen"), default=0)
    chunks_done = models.PositiveIntegerField(_("delen klaar"), default=0)
    chunks_failed = models.PositiveIntegerField(_("delen mislukt"), default=0)
    invoices_created = models.PositiveIntegerField(_("facturen"), default=0)
    started_at = models.DateTimeField(_("gestart"), auto_now_add=True)
    finished_at = models.DateTimeField(_("klaar op"), null=True, blank=True)

    class Meta:
        verbose_name = _("facturatierun")
        verbose_name_plural = _("facturatieruns")
        ordering = ["-period_start"]

    def __str__(self):
        return f"{self.period_start:%Y-%m}"


class BillingChunk(models.Model):
    """A slice of a run that one worker invoices in one transaction."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Wachtend")
        DONE = "done", _("Klaar")
        FAILED = "failed", _("Mislukt")

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    agreement_ids = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    invoices_created = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("facturatiedeel")
        verbose_name_plural = _("facturatiedelen")
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="billing_chunk_unique"),
        ]

    def __str__(self):
        return f"{self.run} #{self.number}"
