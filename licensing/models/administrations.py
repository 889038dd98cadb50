from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Administration(models.Model):
    """An SB administration an accountancy firm runs for a client (R2, R17).

    It counts on the agreement that pays for it (``agreement``): the firm's, or
    the client's own when the client is billed directly.
    """

    TENANT_FIELD = "firm"

    class Kind(models.TextChoices):
        STANDARD = "standard", _("Administratie")
        ARCHIVE = "archive", _("Archieflicentie")
        VIEW_ONLY = "view_only", _("Inkijklicentie")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Actief")
        DELETED = "deleted", _("Verwijderd")
        TRANSFERRED = "transferred", _("Overgedragen")

    firm = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("accountantskantoor"),
        on_delete=models.PROTECT,
        related_name="administrations",
    )
    client = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("klant"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="client_administrations",
    )
    agreement = models.ForeignKey(
        "licensing.Agreement",
        verbose_name=_("betalende overeenkomst"),
        on_delete=models.PROTECT,
        related_name="administrations",
    )
    name = models.CharField(_("naam"), max_length=200)
    kind = models.CharField(_("soort"), max_length=20, choices=Kind.choices, default=Kind.STANDARD)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE
    )
    created_at = models.DateTimeField(_("aangemaakt op"), auto_now_add=True)
    exported_at = models.DateTimeField(_("geëxporteerd op"), null=True, blank=True)
    ended_at = models.DateTimeField(_("beëindigd op"), null=True, blank=True)

    class Meta:
        verbose_name = _("klantadministratie")
        verbose_name_plural = _("klantadministraties")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["standard", "archive", "view_only"]),
                name="licensing_admin_kind_valid",
            ),
        ]

    def __str__(self):
        return self.name


class AdministrationTransfer(models.Model):
    """A proposal to hand an administration to the client alone or to another firm (R17c)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Wacht op ontvanger")
        ACCEPTED = "accepted", _("Geaccepteerd")
        DECLINED = "declined", _("Afgewezen")
        CANCELLED = "cancelled", _("Geannuleerd")

    administration = models.ForeignKey(
        Administration,
        verbose_name=_("administratie"),
        on_delete=models.PROTECT,
        related_name="transfers",
    )
    to_organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("naar"),
        on_delete=models.PROTECT,
        related_name="incoming_transfers",
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    requested_at = models.DateTimeField(_("aangevraagd op"), auto_now_add=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(_("besloten op"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("overdracht")
        verbose_name_plural = _("overdrachten")
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["administration"],
                condition=Q(status="pending"),
                name="licensing_one_pending_transfer",
            ),
        ]

    def __str__(self):
        return f"{self.administration} → {self.to_organisation}"
