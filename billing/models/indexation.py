from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class IndexationRound(models.Model):
    """The yearly CPI indexation (R5, R6): July CPI → next year's price list.

    ``year`` is the calendar year whose first invoice carries the new prices.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Concept")
        APPROVED = "approved", _("Goedgekeurd")

    year = models.PositiveIntegerField(_("nieuwe prijzen vanaf januari"), unique=True)
    cpi_month = models.DateField(_("CPI-maand"), help_text=_("Juli van het jaar ervoor."))
    cpi_change = models.DecimalField(
        _("CPI jaarmutatie (%)"),
        max_digits=5,
        decimal_places=2,
        help_text=_("Bijv. 3.20 voor 3,2%."),
    )
    source = models.CharField(_("bron"), max_length=255)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT
    )
    price_list = models.OneToOneField(
        "licensing.PriceList",
        verbose_name=_("nieuwe prijslijst"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="indexation_round",
    )
    approved_at = models.DateTimeField(_("goedgekeurd op"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mailing_sent_at = models.DateTimeField(_("mailing verstuurd op"), null=True, blank=True)
    created_at = models.DateTimeField(_("aangemaakt op"), auto_now_add=True)

    class Meta:
        verbose_name = _("indexatieronde")
        verbose_name_plural = _("indexatierondes")
        ordering = ["-year"]

    def __str__(self):
        return str(self.year)
