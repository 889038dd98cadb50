from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Agreement(models.Model):
    """A licence agreement: indefinite unless an end date is agreed, renewed monthly (R1).

    ``invoice_to`` is the organisation that pays: the customer itself, or the
    accountancy firm that it is billed via (R2).
    """

    TENANT_FIELD = "organisation"

    class Status(models.TextChoices):
        ACTIVE = "active", _("Actief")
        TERMINATING = "terminating", _("Opgezegd")
        TERMINATED = "terminated", _("Beëindigd")

    number = models.CharField(_("nummer"), max_length=20, unique=True, editable=False)
    organisation = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("klant"),
        on_delete=models.PROTECT,
        related_name="agreements",
    )
    invoice_to = models.ForeignKey(
        "licensing.Organisation",
        verbose_name=_("factuur aan"),
        on_delete=models.PROTECT,
        related_name="paid_agreements",
    )
    start_date = models.DateField(_("ingangsdatum"))
    end_date = models.DateField(
        _("einddatum"),
        null=True,
        blank=True,
        help_text=_("Leeg: voor onbepaalde tijd, stilzwijgend per maand verlengd."),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE
    )
    terms_version = models.ForeignKey(
        "licensing.TermsVersion",
        verbose_name=_("voorwaarden"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="agreements",
    )
    previous_terms_version = models.ForeignKey(
        "licensing.TermsVersion",
        verbose_name=_("vorige voorwaarden"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Blijft gelden tot en met de datum hieronder na opzegging om een wijziging."),
    )
    previous_terms_until = models.DateField(
        _("vorige voorwaarden gelden tot en met"), null=True, blank=True
    )
    created_at = models.DateTimeField(_("aangemaakt op"), auto_now_add=True)

    class Meta:
        verbose_name = _("overeenkomst")
        verbose_name_plural = _("overeenkomsten")
        ordering = ["-start_date", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation"],
                condition=Q(status__in=["active", "terminating"]),
                name="licensing_one_live_agreement_per_organisation",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="licensing_agreement_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "terminating", "terminated"]),
                name="licensing_agreement_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.number} – {self.organisation}"

    @property
    def is_live(self) -> bool:
        return self.status in (self.Status.ACTIVE, self.Status.TERMINATING)


class LicenceLine(models.Model):
    """The quantity of one component on an agreement, now. History: LicenceChange."""

    TENANT_FIELD = "agreement__organisation"

    agreement = models.ForeignKey(
        Agreement, verbose_name=_("overeenkomst"), on_delete=models.CASCADE, related_name="lines"
    )
    component = models.ForeignKey(
        "licensing.Component",
        verbose_name=_("onderdeel"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    quantity = models.PositiveIntegerField(_("aantal"))
    updated_at = models.DateTimeField(_("gewijzigd op"), auto_now=True)

    class Meta:
        verbose_name = _("licentieregel")
        verbose_name_plural = _("licentieregels")
        ordering = ["component__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "component"], name="licensing_one_line_per_component"
            ),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.component}"


class ChangeSource(models.TextChoices):
    SB_APPLICATION = "sb_application", _("SB-applicatie")
    CUSTOMER = "customer", _("Klant (portal)")
    STAFF = "staff", _("Back office")
    ADMINISTRATION = "administration", _("Administratiebeheer accountant")
    SYSTEM = "system", _("Systeem")


class LicenceChange(models.Model):
    """Append-only history of every quantity change: what, from where, when (R3)."""

    TENANT_FIELD = "agreement__organisation"

    agreement = models.ForeignKey(
        Agreement, verbose_name=_("overeenkomst"), on_delete=models.CASCADE, related_name="changes"
    )
    component = models.ForeignKey(
        "licensing.Component",
        verbose_name=_("onderdeel"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    old_quantity = models.PositiveIntegerField(_("oud aantal"))
    new_quantity = models.PositiveIntegerField(_("nieuw aantal"))
    source = models.CharField(_("bron"), max_length=20, choices=ChangeSource.choices)
    count_event = models.ForeignKey(
        "licensing.CountEvent",
        verbose_name=_("telling"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="changes",
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.CharField(_("toelichting"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("tijdstip"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("licentiewijziging")
        verbose_name_plural = _("licentiewijzigingen")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.component}: {self.old_quantity} → {self.new_quantity}"


class Termination(models.Model):
    """The end of an agreement: by the customer (R14), the vendor (R15, R13) or over terms (R20).

    ``effective_date`` is the last day of service; from the day after, the
    customer has no access (R16).
    """

    TENANT_FIELD = "agreement__organisation"

    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Opzegging door klant")
        TERMS_CHANGE = "terms_change", _("Opzegging om wijziging voorwaarden")
        VENDOR = "vendor", _("Beëindiging door leverancier")
        NON_PAYMENT = "non_payment", _("Automatisch: twee openstaande facturen")

    class Reason(models.TextChoices):
        CUSTOMER_REQUEST = "customer_request", _("Op verzoek van de klant")
        TERMS_CHANGE = "terms_change", _("Wijziging van de voorwaarden")
        BREACH = "breach", _("Tekortkoming in de nakoming")
        SURSEANCE = "surseance", _("Surseance van betaling aangevraagd")
        BANKRUPTCY = "bankruptcy", _("Faillissement aangevraagd")
        NON_PAYMENT = "non_payment", _("Twee openstaande abonnementsfacturen op de 28e")

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Gepland")
        EFFECTIVE = "effective", _("Ingegaan")
        WITHDRAWN = "withdrawn", _("Ingetrokken")

    agreement = models.ForeignKey(
        Agreement,
        verbose_name=_("overeenkomst"),
        on_delete=models.PROTECT,
        related_name="terminations",
    )
    kind = models.CharField(_("soort"), max_length=20, choices=Kind.choices)
    reason = models.CharField(_("reden"), max_length=20, choices=Reason.choices)
    note = models.TextField(_("toelichting"), blank=True)
    requested_at = models.DateTimeField(_("aangevraagd op"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("aangevraagd door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    effective_date = models.DateField(_("laatste dag"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.SCHEDULED
    )
    withdrawn_at = models.DateTimeField(_("ingetrokken op"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("ingetrokken door"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("beëindiging")
        verbose_name_plural = _("beëindigingen")
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement"],
                condition=Q(status__in=["scheduled", "effective"]),
                name="licensing_one_live_termination",
            ),
        ]

    def __str__(self):
        return f"{self.agreement.number}: {self.get_kind_display()} per {self.effective_date}"
