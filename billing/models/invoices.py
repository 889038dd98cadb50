from django.db import models
from django.db.models import Q
from django.db.models.functions import Round
from django.utils.translation import gettext_lazy as _


class NumberSeries(models.Model):
    """A gapless counter per series (Dutch invoicing rules: consecutive numbers).

    Numbers are taken inside the transaction that inserts the invoices, under
    this row's lock, so a rolled-back chunk leaves no hole.
    """

    key = models.CharField(
        _("reeks"), max_length=40, unique=True, help_text=_("Bijv. 'invoice-2027'.")
    )
    prefix = models.CharField(_("voorvoegsel"), max_length=20)
    last_number = models.PositiveIntegerField(_("laatste nummer"), default=0)

    class Meta:
        verbose_name = _("nummerreeks")
        verbose_name_plural = _("nummerreeksen")
        ordering = ["key"]

    def __str__(self):
        return f"{self.key} ({self.prefix}{self.last_number:06d})"


class Invoice(models.Model):
    """An issued invoice or credit note. Immutable once issued (R9): corrections are credit notes.

    Seller and buyer are snapshotted so the document renders the same in ten years.
    """

    TENANT_FIELD = "organisation"

    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Factuur")
        CREDIT_NOTE = "credit_note", _("Creditnota")

    class Purpose(models.TextChoices):
        SUBSCRIPTION = "subscription", _("Abonnement")
        ONE_OFF = "one_off", _("Eenmalig")

    class Status(models.TextChoices):
        OPEN = "open", _("Openstaand")
        PAID = "paid", _("Betaald")
        CREDITED = "credited", _("Gecrediteerd")

    # Unique through Meta.constraints: ``unique=True`` adds a LIKE index on PostgreSQL
    # that no query uses and every issued invoice writes.
    number = models.CharField(_("nummer"), max_length=30)
    kind = models.CharField(_("soort"), max_length=20, choices=Kind.choices, default=Kind.INVOICE)
    purpose = models.CharField(_("doel"), max_length=20, choices=Purpose.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.OPEN
    )
    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("klant (ontvanger)"),
        on_delete=models.PROTECT,
        related_name="invoices",
        db_index=False,  # the (organisation, -issue_date) index serves it
    )
    agreement = models.ForeignKey(
        "licensing.Agreement",
        verbose_name=_("overeenkomst"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoices",
    )
    billing_run = models.ForeignKey(
        "billing.BillingRun",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoices",
    )
    credited_invoice = models.ForeignKey(
        "self",
        verbose_name=_("gecrediteerde factuur"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_notes",
    )
    reason = models.TextField(_("reden"), blank=True)
    issue_date = models.DateField(_("factuurdatum"))
    due_date = models.DateField(_("vervaldatum"))
    period_start = models.DateField(_("periode van"), null=True, blank=True)
    period_end = models.DateField(_("periode tot en met"), null=True, blank=True)
    currency = models.CharField(_("valuta"), max_length=3, default="EUR")
    net_total = models.DecimalField(_("totaal excl. btw"), max_digits=12, decimal_places=2)
    vat_total = models.DecimalField(_("btw"), max_digits=12, decimal_places=2)
    gross_total = models.DecimalField(_("totaal incl. btw"), max_digits=12, decimal_places=2)
    vat_note = models.CharField(_("btw-vermelding"), max_length=255, blank=True)
    buyer_reference = models.CharField(_("referentie koper"), max_length=100)
    # Seller snapshot
    seller_name = models.CharField(max_length=200)
    seller_street = models.CharField(max_length=200)
    seller_postcode = models.CharField(max_length=10)
    seller_city = models.CharField(max_length=100)
    seller_country = models.CharField(max_length=2)
    seller_kvk = models.CharField(max_length=12)
    seller_vat_id = models.CharField(max_length=20)
    seller_iban = models.CharField(max_length=34)
    seller_bic = models.CharField(max_length=11, blank=True)
    # Buyer snapshot
    buyer_name = models.CharField(max_length=200)
    buyer_street = models.CharField(max_length=200)
    buyer_postcode = models.CharField(max_length=10)
    buyer_city = models.CharField(max_length=100)
    buyer_country = models.CharField(max_length=2)
    buyer_kvk = models.CharField(max_length=12)
    buyer_vat_id = models.CharField(max_length=20, blank=True)
    buyer_email = models.EmailField()
    buyer_peppol_scheme = models.CharField(max_length=4, blank=True)
    buyer_peppol_id = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(_("aangemaakt op"), auto_now_add=True)

    class Meta:
        verbose_name = _("factuur")
        verbose_name_plural = _("facturen")
        ordering = ["-issue_date", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="billing_invoice_number_unique"),
            # Exactly once: one subscription invoice per agreement and period (R7, R9).
            models.UniqueConstraint(
                fields=["agreement", "period_start"],
                condition=Q(kind="invoice", purpose="subscription"),
                name="billing_one_subscription_invoice_per_period",
            ),
            models.CheckConstraint(
                condition=Q(gross_total=Round(models.F("net_total") + models.F("vat_total"), 2)),
                name="billing_gross_is_net_plus_vat",
            ),
            models.CheckConstraint(
                condition=Q(kind="invoice", credited_invoice__isnull=True)
                | Q(kind="credit_note", credited_invoice__isnull=False),
                name="billing_credit_note_references_invoice",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "-issue_date"])]

    def __str__(self):
        return self.number

    def delete(self, *args, **kwargs):
        raise RuntimeError("An issued invoice is never deleted; issue a credit note instead.")


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveSmallIntegerField()
    description = models.CharField(max_length=255)
    component_code = models.CharField(max_length=40, blank=True)
    unit = models.CharField(max_length=40, blank=True)
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    net_amount = models.DecimalField(max_digits=12, decimal_places=2)
    vat_category = models.CharField(max_length=2)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)

    class Meta:
        verbose_name = _("factuurregel")
        verbose_name_plural = _("factuurregels")
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "position"], name="billing_line_position_unique"
            ),
        ]

    def __str__(self):
        return self.description


class InvoiceVat(models.Model):
    """VAT per category on the category's net total (EN 16931); PDF, UBL and totals share it."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="vat_breakdown")
    category = models.CharField(max_length=2)
    rate = models.DecimalField(max_digits=5, decimal_places=2)
    taxable_amount = models.DecimalField(max_digits=12, decimal_places=2)
    tax_amount = models.DecimalField(max_digits=12, decimal_places=2)
    exemption_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = _("btw-regel")
        verbose_name_plural = _("btw-regels")
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "category", "rate"], name="billing_vat_unique"
            ),
        ]

    def __str__(self):
        return f"{self.category} {self.rate}%"


class InvoiceDocument(models.Model):
    """A rendered document of an invoice (PDF or UBL), stored once with its checksum."""

    class Format(models.TextChoices):
        PDF = "pdf", "PDF"
        UBL = "ubl", "UBL"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="documents")
    format = models.CharField(max_length=3, choices=Format.choices)
    filename = models.CharField(max_length=100)
    content_type = models.CharField(max_length=100)
    file = models.FileField(upload_to="invoices/%Y/")
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("factuurdocument")
        verbose_name_plural = _("factuurdocumenten")
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "format"], name="billing_one_document_per_format"
            ),
        ]

    def __str__(self):
        return self.filename
