from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Product(models.Model):
    """A product the vendor sells, e.g. "AFAS SB"; it consists of components."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("naam"), max_length=100)
    description = models.TextField(_("omschrijving"), blank=True)
    is_active = models.BooleanField(_("actief"), default=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("producten")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Component(models.Model):
    """A priced part of a licence: the base licence, a user, an administration, ..."""

    class Kind(models.TextChoices):
        BASE = "base", _("Basislicentie")
        USER = "user", _("Gebruiker")
        ADMINISTRATION = "administration", _("Administratie")
        ARCHIVE = "archive", _("Archieflicentie")
        VIEW_ONLY = "view_only", _("Inkijklicentie")
        OTHER = "other", _("Overig")

    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="components"
    )
    code = models.SlugField(
        _("code"),
        max_length=40,
        unique=True,
        help_text=_("De naam waarmee de SB-applicatie aantallen doorgeeft, bijv. 'users'."),
    )
    name = models.CharField(_("naam"), max_length=100)
    kind = models.CharField(_("soort"), max_length=20, choices=Kind.choices)
    unit = models.CharField(
        _("eenheid"), max_length=40, help_text=_("Bijv. 'gebruiker', 'administratie'.")
    )
    position = models.PositiveSmallIntegerField(_("volgorde"), default=0)
    is_active = models.BooleanField(_("actief"), default=True)

    class Meta:
        verbose_name = _("onderdeel")
        verbose_name_plural = _("onderdelen")
        ordering = ["product", "position", "name"]

    def __str__(self):
        return self.name


class PriceList(models.Model):
    """Unit prices from a date on. The list valid on a period's first day prices it (R4).

    Only approved lists count; a draft (e.g. next year's indexed prices) waits
    for review.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Concept")
        APPROVED = "approved", _("Goedgekeurd")

    name = models.CharField(_("naam"), max_length=100)
    valid_from = models.DateField(_("geldig vanaf"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT
    )
    approved_at = models.DateTimeField(_("goedgekeurd op"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("goedgekeurd door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.TextField(_("toelichting"), blank=True)

    class Meta:
        verbose_name = _("prijslijst")
        verbose_name_plural = _("prijslijsten")
        ordering = ["-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["valid_from"],
                condition=Q(status="approved"),
                name="licensing_one_approved_pricelist_per_date",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.valid_from:%d-%m-%Y})"


class Price(models.Model):
    price_list = models.ForeignKey(
        PriceList, verbose_name=_("prijslijst"), on_delete=models.CASCADE, related_name="prices"
    )
    component = models.ForeignKey(
        Component, verbose_name=_("onderdeel"), on_delete=models.PROTECT, related_name="prices"
    )
    unit_price = models.DecimalField(
        _("prijs per eenheid per maand"), max_digits=12, decimal_places=2
    )

    class Meta:
        verbose_name = _("prijs")
        verbose_name_plural = _("prijzen")
        ordering = ["component__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["price_list", "component"], name="licensing_one_price_per_component"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="licensing_price_not_negative"
            ),
        ]

    def __str__(self):
        return f"{self.component}: {self.unit_price}"
