"""Collections: SEPA direct debits and their batches, bank-file imports, payments (R12, R13).

The ledger of an invoice is its ``Payment`` rows: what it is still owed is its
gross total minus its credit notes minus the sum of its payments. A collected
debit, a matched transfer and a staff match each add a positive payment; a
returned debit adds the negative reversal. The database's unique constraints
make each of those happen once, however often or concurrently a bank file is
imported.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class SequenceType(models.TextChoices):
    """SEPA sequence type: FRST on a mandate's first collection, RCUR after."""

    FRST = "FRST", _("Eerste (FRST)")
    RCUR = "RCUR", _("Herhaald (RCUR)")


class DebitBatch(models.Model):
    """One pain.008 file: the debits of one collection date and sequence type."""

    class Status(models.TextChoices):
        CREATED = "created", _("Aangemaakt")
        SUBMITTED = "submitted", _("Aangeboden")
        COLLECTED = "collected", _("Geïncasseerd")
        RETURNED = "returned", _("Deels gestorneerd")

    message_id = models.CharField(
        _("bericht-id"),
        max_length=35,
        unique=True,
        help_text=_("GrpHdr/MsgId en PmtInfId van het pain.008-bestand."),
    )
    collection_date = models.DateField(_("incassodatum"))
    sequence_type = models.CharField(_("volgtype"), max_length=4, choices=SequenceType.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.CREATED
    )
    creditor_id = models.CharField(_("incassant-ID"), max_length=35)
    debit_count = models.PositiveIntegerField(_("aantal incasso's"), default=0)
    total = models.DecimalField(_("totaal"), max_digits=14, decimal_places=2, default=0)
    file = models.FileField(_("bestand"), upload_to="sepa/%Y/", blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(_("aangemaakt op"))
    submitted_at = models.DateTimeField(_("aangeboden op"), null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("aangeboden door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    settled_at = models.DateTimeField(_("afgewikkeld op"), null=True, blank=True)

    class Meta:
        verbose_name = _("incassobatch")
        verbose_name_plural = _("incassobatches")
        ordering = ["-collection_date", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["created", "submitted", "collected", "returned"]),
                name="billing_debit_batch_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(sequence_type__in=["FRST", "RCUR"]),
                name="billing_debit_batch_sequence_valid",
            ),
        ]

    def __str__(self):
        return self.message_id


class DirectDebit(models.Model):
    """One attempt to collect one invoice's open amount on one mandate.

    A returned AM04/MS03 debit is re-presented as a new row with the next
    attempt number; the invoice is never in two live debits at once.
    """

    TENANT_FIELD = "organisation"
    LIVE_STATUSES = ("scheduled", "batched", "submitted")

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Gepland")
        BATCHED = "batched", _("In batch")
        SUBMITTED = "submitted", _("Aangeboden")
        COLLECTED = "collected", _("Geïncasseerd")
        RETURNED = "returned", _("Gestorneerd")
        REJECTED = "rejected", _("Geweigerd")
        CANCELLED = "cancelled", _("Geannuleerd")

    # Indexed by the constraint and index that start with them (a second index
    # only slows the 100 000-row writes of a batch or a statement).
    invoice = models.ForeignKey(
        "billing.Invoice",
        verbose_name=_("factuur"),
        on_delete=models.PROTECT,
        related_name="debits",
        db_index=False,
    )
    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("organisatie"),
        on_delete=models.PROTECT,
        related_name="direct_debits",
        db_index=False,
    )
    mandate = models.ForeignKey(
        "billing.Mandate",
        verbose_name=_("machtiging"),
        on_delete=models.PROTECT,
        related_name="debits",
    )
    batch = models.ForeignKey(
        DebitBatch,
        verbose_name=_("batch"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="debits",
    )
    attempt = models.PositiveSmallIntegerField(_("poging"), default=1)
    amount = models.DecimalField(_("bedrag"), max_digits=12, decimal_places=2)
    collection_date = models.DateField(_("incassodatum"))
    sequence_type = models.CharField(
        _("volgtype"),
        max_length=4,
        choices=SequenceType.choices,
        blank=True,
        help_text=_("Vastgelegd zodra de incasso in een batch komt."),
    )
    end_to_end_id = models.CharField(_("end-to-end-id"), max_length=35)  # unique: Meta
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.SCHEDULED
    )
    return_reason = models.CharField(_("stornoreden"), max_length=4, blank=True)
    return_info = models.CharField(_("toelichting bank"), max_length=255, blank=True)
    collected_on = models.DateField(_("geïncasseerd op"), null=True, blank=True)
    returned_on = models.DateField(_("gestorneerd op"), null=True, blank=True)
    prenotified_at = models.DateTimeField(
        _("vooraankondiging"),
        null=True,
        blank=True,
        help_text=_("Wanneer de klant bedrag, datum en kenmerk kreeg (factuur of e-mail)."),
    )
    created_at = models.DateTimeField(_("aangemaakt op"))
    updated_at = models.DateTimeField(_("gewijzigd op"), auto_now=True)

    class Meta:
        verbose_name = _("incasso")
        verbose_name_plural = _("incasso's")
        ordering = ["-collection_date", "-pk"]
        constraints = [
            # One invoice is never in two live debits.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(status__in=["scheduled", "batched", "submitted"]),
                name="billing_one_live_debit_per_invoice",
            ),
            models.UniqueConstraint(
                fields=["invoice", "attempt"], name="billing_debit_attempt_unique"
            ),
            # Not ``unique=True``: that adds a LIKE index on PostgreSQL no query uses.
            models.UniqueConstraint(
                fields=["end_to_end_id"], name="billing_debit_end_to_end_id_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_debit_amount_positive"),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "scheduled",
                        "batched",
                        "submitted",
                        "collected",
                        "returned",
                        "rejected",
                        "cancelled",
                    ]
                ),
                name="billing_debit_status_valid",
            ),
            # A debit in a batch has its sequence type; a scheduled one has no batch yet.
            models.CheckConstraint(
                condition=Q(status="scheduled", batch__isnull=True)
                | Q(status="cancelled", batch__isnull=True)
                | (Q(batch__isnull=False) & ~Q(sequence_type="")),
                name="billing_debit_batched_has_sequence",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "collection_date"]),
            models.Index(fields=["organisation", "-collection_date"]),
        ]

    def __str__(self):
        return self.end_to_end_id

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES


class BankFileImport(models.Model):
    """One imported camt.053, camt.054 or pain.002 file; the same file (by checksum) only once."""

    kind = models.CharField(_("soort"), max_length=10)
    version = models.CharField(_("versie"), max_length=20)
    message_id = models.CharField(_("bericht-id"), max_length=35)
    filename = models.CharField(_("bestandsnaam"), max_length=255)
    sha256 = models.CharField(_("controlegetal"), max_length=64, unique=True)
    size = models.PositiveBigIntegerField(_("grootte"))
    file = models.FileField(_("bestand"), upload_to="bankfiles/%Y/", blank=True)
    summary = models.JSONField(_("samenvatting"), default=dict, blank=True)
    imported_at = models.DateTimeField(_("ingelezen op"))
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("ingelezen door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("bankbestand")
        verbose_name_plural = _("bankbestanden")
        ordering = ["-imported_at", "-pk"]

    def __str__(self):
        return f"{self.kind} {self.message_id}"


class BankTransaction(models.Model):
    """One booking (or status line) from a bank file, and what it did.

    ``unique_key`` comes from the parser and is stable for the same booking in
    the same file, so an entry seen twice is stored once. It starts with the
    file's message id, so the same booking in another file (the camt.054 during
    the day, then the camt.053 statement) has another key: debits are settled
    once by meaning (``Payment`` once per debit and kind), incoming transfers by
    ``booking_key``, which only the first row of a booking carries.
    """

    class Kind(models.TextChoices):
        DEBIT_COLLECTED = "debit_collected", _("Incasso geïnd")
        DEBIT_RETURNED = "debit_returned", _("Incasso gestorneerd")
        DEBIT_REJECTED = "debit_rejected", _("Incasso geweigerd")
        DEBIT_ACCEPTED = "debit_accepted", _("Incasso geaccepteerd")
        TRANSFER_IN = "transfer_in", _("Overboeking ontvangen")
        OTHER = "other", _("Overig")

    class State(models.TextChoices):
        PROCESSED = "processed", _("Verwerkt")
        UNMATCHED = "unmatched", _("Niet gekoppeld")
        MATCHED = "matched", _("Handmatig gekoppeld")
        IGNORED = "ignored", _("Genegeerd")

    import_file = models.ForeignKey(
        BankFileImport,
        verbose_name=_("bankbestand"),
        on_delete=models.PROTECT,
        related_name="transactions",
    )
    unique_key = models.CharField(_("sleutel"), max_length=400)  # unique: Meta
    booking_key = models.CharField(
        _("boekingssleutel"),
        max_length=400,
        blank=True,
        default="",
        help_text=_(
            "Van een ontvangen overboeking: eigen IBAN, referentie van de bank, boekdatum, "
            "bedrag en richting. Dezelfde boeking in een ander bankbestand wordt niet nog "
            "eens verwerkt."
        ),
    )
    kind = models.CharField(_("soort"), max_length=20, choices=Kind.choices)
    state = models.CharField(_("stand"), max_length=10, choices=State.choices)
    booking_date = models.DateField(_("boekdatum"), null=True, blank=True)
    amount = models.DecimalField(_("bedrag"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("valuta"), max_length=3, default="EUR")
    credit_debit = models.CharField(_("bij/af"), max_length=4)
    end_to_end_id = models.CharField(_("end-to-end-id"), max_length=35, blank=True)
    mandate_id = models.CharField(_("machtigingskenmerk"), max_length=35, blank=True)
    reference = models.CharField(_("betalingskenmerk"), max_length=140, blank=True)
    description = models.CharField(_("omschrijving"), max_length=500, blank=True)
    counterparty_name = models.CharField(_("tegenpartij"), max_length=140, blank=True)
    counterparty_iban = models.CharField(_("tegenrekening"), max_length=34, blank=True)
    return_reason = models.CharField(_("reden"), max_length=4, blank=True)
    return_info = models.CharField(_("toelichting bank"), max_length=255, blank=True)
    invoice = models.ForeignKey(
        "billing.Invoice",
        verbose_name=_("factuur"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bank_transactions",
    )
    debit = models.ForeignKey(
        DirectDebit,
        verbose_name=_("incasso"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bank_transactions",
    )
    note = models.CharField(_("notitie"), max_length=255, blank=True)
    matched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("gekoppeld door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    matched_at = models.DateTimeField(_("gekoppeld op"), null=True, blank=True)
    created_at = models.DateTimeField(_("aangemaakt op"))

    class Meta:
        verbose_name = _("banktransactie")
        verbose_name_plural = _("banktransacties")
        ordering = ["-booking_date", "-pk"]
        indexes = [
            models.Index(fields=["state", "-booking_date"]),
            models.Index(fields=["end_to_end_id"]),
        ]
        constraints = [
            # Not ``unique=True``: that adds a LIKE index on PostgreSQL no query uses.
            models.UniqueConstraint(
                fields=["unique_key"], name="billing_bank_transaction_key_unique"
            ),
            # An incoming transfer is booked once, whichever file (camt.054, camt.053) says so first.
            models.UniqueConstraint(
                fields=["booking_key"],
                condition=~Q(booking_key=""),
                name="billing_bank_transaction_booking_once",
            ),
        ]

    def __str__(self):
        return f"{self.booking_date} {self.amount} {self.counterparty_name}".strip()


class Payment(models.Model):
    """One movement on an invoice's ledger: received (positive) or reversed (negative)."""

    TENANT_FIELD = "organisation"

    class Kind(models.TextChoices):
        DIRECT_DEBIT = "direct_debit", _("Incasso")
        DEBIT_REVERSAL = "debit_reversal", _("Storno")
        TRANSFER = "transfer", _("Overboeking")

    # invoice, debit and bank_transaction are indexed by the index and partial unique
    # constraints that start with them (``debit_id = x`` implies it is not null).
    invoice = models.ForeignKey(
        "billing.Invoice",
        verbose_name=_("factuur"),
        on_delete=models.PROTECT,
        related_name="payments",
        db_index=False,
    )
    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("organisatie"),
        on_delete=models.PROTECT,
        related_name="payments",
    )
    kind = models.CharField(_("soort"), max_length=20, choices=Kind.choices)
    amount = models.DecimalField(_("bedrag"), max_digits=12, decimal_places=2)
    booked_on = models.DateField(_("boekdatum"))
    debit = models.ForeignKey(
        DirectDebit,
        verbose_name=_("incasso"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
        db_index=False,
    )
    bank_transaction = models.ForeignKey(
        BankTransaction,
        verbose_name=_("banktransactie"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
        db_index=False,
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("vastgelegd door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("aangemaakt op"))

    class Meta:
        verbose_name = _("betaling")
        verbose_name_plural = _("betalingen")
        ordering = ["-booked_on", "-pk"]
        constraints = [
            # A debit is collected once and reversed once, whichever file says so first.
            models.UniqueConstraint(
                fields=["debit", "kind"],
                condition=Q(debit__isnull=False),
                name="billing_payment_once_per_debit_and_kind",
            ),
            # A bank booking settles an invoice once.
            models.UniqueConstraint(
                fields=["bank_transaction", "invoice"],
                condition=Q(bank_transaction__isnull=False),
                name="billing_payment_once_per_transaction_and_invoice",
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="billing_payment_not_zero"),
            models.CheckConstraint(
                condition=Q(kind="debit_reversal", amount__lt=0)
                | (~Q(kind="debit_reversal") & Q(amount__gt=0)),
                name="billing_payment_sign_matches_kind",
            ),
        ]
        indexes = [models.Index(fields=["invoice", "booked_on"])]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} ({self.invoice_id})"


class CollectionNotice(models.Model):
    """An e-mail about a debit that must reach the customer once: kept here until it is sent.

    Pre-notification of a debit the invoice did not announce, a failed debit that
    will be tried again, and the request to pay by transfer after the last
    attempt. A sweep sends what is pending, so an SMTP outage delays and loses nothing.
    """

    TENANT_FIELD = "organisation"

    class Kind(models.TextChoices):
        PRENOTIFICATION = "prenotification", _("Vooraankondiging incasso")
        RETRY = "retry", _("Incasso mislukt, nieuwe poging")
        PAY_BY_TRANSFER = "pay_by_transfer", _("Verzoek om over te maken")
        DATE_MOVED = "date_moved", _("Incassodatum gewijzigd")

    class Status(models.TextChoices):
        PENDING = "pending", _("Wachtend")
        SENT = "sent", _("Verzonden")
        FAILED = "failed", _("Mislukt")

    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("organisatie"),
        on_delete=models.PROTECT,
        related_name="collection_notices",
    )
    invoice = models.ForeignKey(
        "billing.Invoice",
        verbose_name=_("factuur"),
        on_delete=models.PROTECT,
        related_name="collection_notices",
    )
    debit = models.ForeignKey(
        DirectDebit,
        verbose_name=_("incasso"),
        on_delete=models.PROTECT,
        related_name="notices",
    )
    kind = models.CharField(_("soort"), max_length=20, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    # DATE_MOVED: the collection date the customer had been told (the e-mail names it).
    previous_date = models.DateField(_("eerder aangekondigde datum"), null=True, blank=True)
    recipients = models.TextField(_("ontvangers"), blank=True)
    attempts = models.PositiveIntegerField(_("pogingen"), default=0)
    next_attempt_at = models.DateTimeField(_("volgende poging"), null=True, blank=True)
    last_error = models.TextField(_("laatste fout"), blank=True)
    sent_at = models.DateTimeField(_("verzonden op"), null=True, blank=True)
    created_at = models.DateTimeField(_("aangemaakt op"))

    class Meta:
        verbose_name = _("incassobericht")
        verbose_name_plural = _("incassoberichten")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["debit", "kind"], name="billing_notice_once_per_debit"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} {self.invoice_id}"
