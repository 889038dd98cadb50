from django.db import models
from django.utils.translation import gettext_lazy as _


class CalendarDay(models.Model):
    """A business date the calendar has looked at.

    A day is complete once every action due on it has succeeded. The first
    incomplete day is where the next tick starts, so missed days are caught up
    in order.
    """

    date = models.DateField(_("datum"), unique=True)
    created_at = models.DateTimeField(_("eerste keer bekeken"), auto_now_add=True)
    completed_at = models.DateTimeField(_("afgerond op"), null=True, blank=True)

    class Meta:
        verbose_name = _("kalenderdag")
        verbose_name_plural = _("kalenderdagen")
        ordering = ["-date"]

    def __str__(self):
        return self.date.isoformat()


class CalendarRun(models.Model):
    """One action on one date: runs at most once successfully, by construction."""

    class Status(models.TextChoices):
        PENDING = "pending", _("wachtend")
        SUCCEEDED = "succeeded", _("geslaagd")
        FAILED = "failed", _("mislukt")

    action = models.CharField(_("actie"), max_length=100)
    date = models.DateField(_("datum"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("pogingen"), default=0)
    outcome = models.CharField(_("resultaat"), max_length=255, blank=True)
    error = models.TextField(_("foutmelding"), blank=True)
    created_at = models.DateTimeField(_("aangemaakt"), auto_now_add=True)
    started_at = models.DateTimeField(_("laatst gestart"), null=True, blank=True)
    finished_at = models.DateTimeField(_("afgerond"), null=True, blank=True)

    class Meta:
        verbose_name = _("kalenderrun")
        verbose_name_plural = _("kalenderruns")
        ordering = ["-date", "action"]
        constraints = [
            models.UniqueConstraint(fields=["action", "date"], name="scheduler_run_once_per_day"),
        ]
        indexes = [models.Index(fields=["status", "date"])]

    def __str__(self):
        return f"{self.action} @ {self.date}"
