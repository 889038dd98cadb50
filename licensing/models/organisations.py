from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from .. import validators


class Organisation(models.Model):
    """A customer: an entrepreneur, or an accountancy firm with clients of its own.

    A client of a firm points at it with ``accountancy_firm``; ``billed_via`` is
    set when that firm also pays for the client's licence (R2). The firm's
    people see the firm's clients in the portal.
    """

    class Kind(models.TextChoices):
        ENTREPRENEUR = "entrepreneur", _("Ondernemer")
        ACCOUNTANCY_FIRM = "accountancy_firm", _("Accountantskantoor")

    class Country(models.TextChoices):
        NL = "NL", _("Nederland")
        BE = "BE", _("België")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Actief")
        TERMINATED = "terminated", _("Beëindigd")

    class PeppolScheme(models.TextChoices):
        NL_KVK = "0106", _("0106 – KvK-nummer (NL)")
        NL_OIN = "0190", _("0190 – OIN (NL overheid)")
        BE_ENTERPRISE = "0208", _("0208 – Ondernemingsnummer (BE)")
        NL_VAT = "9944", _("9944 – Btw-id (NL)")
        BE_VAT = "9925", _("9925 – Btw-nummer (BE)")

    kind = models.CharField(_("soort"), max_length=20, choices=Kind.choices)
    legal_name = models.CharField(_("statutaire naam"), max_length=200)
    kvk_number = models.CharField(
        _("KvK-nummer"),
        max_length=12,
        help_text=_("KvK-nummer (NL, 8 cijfers) of ondernemingsnummer (BE, 10 cijfers)."),
    )
    vat_id = models.CharField(_("btw-id"), max_length=20, blank=True)
    country = models.CharField(_("land"), max_length=2, choices=Country.choices, default="NL")
    street = models.CharField(_("straat en huisnummer"), max_length=200)
    postcode = models.CharField(_("postcode"), max_length=10)
    city = models.CharField(_("plaats"), max_length=100)
    billing_email = models.EmailField(_("e-mailadres voor facturen"))
    peppol_scheme = models.CharField(
        _("Peppol-schema"), max_length=4, choices=PeppolScheme.choices, blank=True
    )
    peppol_endpoint_id = models.CharField(_("Peppol-id"), max_length=50, blank=True)
    accountancy_firm = models.ForeignKey(
        "self",
        verbose_name=_("accountantskantoor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="clients",
        limit_choices_to={"kind": "accountancy_firm"},
        help_text=_("Het kantoor dat deze klant bedient."),
    )
    billed_via = models.ForeignKey(
        "self",
        verbose_name=_("gefactureerd via"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="billed_clients",
        limit_choices_to={"kind": "accountancy_firm"},
        help_text=_("Leeg: de klant krijgt zelf de factuur. Anders: het kantoor betaalt."),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE
    )
    retention_starts_on = models.DateField(
        _("bewaartermijn loopt vanaf"),
        null=True,
        blank=True,
        help_text=_(
            "De dag na het einde van de laatste licentie; gegevens worden een jaar later verwijderd."
        ),
    )
    created_at = models.DateTimeField(_("aangemaakt op"), auto_now_add=True)
    updated_at = models.DateTimeField(_("gewijzigd op"), auto_now=True)

    class Meta:
        verbose_name = _("organisatie")
        verbose_name_plural = _("organisaties")
        ordering = ["legal_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "kvk_number"], name="licensing_org_registration_unique"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["entrepreneur", "accountancy_firm"]),
                name="licensing_org_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(country__in=["NL", "BE"]), name="licensing_org_country_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["active", "terminated"]),
                name="licensing_org_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(accountancy_firm__isnull=True) | ~Q(accountancy_firm=F("id")),
                name="licensing_org_not_own_firm",
            ),
            models.CheckConstraint(
                condition=Q(billed_via__isnull=True) | Q(billed_via=F("accountancy_firm")),
                name="licensing_org_billed_via_own_firm",
            ),
            models.CheckConstraint(
                condition=~Q(kind="accountancy_firm") | Q(accountancy_firm__isnull=True),
                name="licensing_org_firm_has_no_firm",
            ),
            models.CheckConstraint(
                condition=(Q(peppol_scheme="") & Q(peppol_endpoint_id=""))
                | (~Q(peppol_scheme="") & ~Q(peppol_endpoint_id="")),
                name="licensing_org_peppol_complete",
            ),
        ]

    def __str__(self):
        return self.legal_name

    @property
    def is_accountancy_firm(self) -> bool:
        return self.kind == self.Kind.ACCOUNTANCY_FIRM

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def peppol_participant(self) -> str:
        """'0106:12345678', as Peppol addresses a participant; empty without one."""
        if not self.peppol_endpoint_id:
            return ""
        return f"{self.peppol_scheme}:{self.peppol_endpoint_id}"

    def clean(self):
        """Normalise identifiers and report every problem at once, per field, in Dutch."""
        errors: dict[str, list] = {}

        def check(field, func, *args):
            try:
                setattr(self, field, func(*args))
            except ValidationError as exc:
                errors.setdefault(field, []).extend(exc.error_list)

        if self.country not in self.Country.values:
            errors["country"] = [ValidationError(_("Kies Nederland of België als land."))]
        else:
            check("kvk_number", validators.clean_registration_number, self.country, self.kvk_number)
            if self.vat_id:
                check("vat_id", validators.clean_vat_id, self.country, self.vat_id)
            if self.postcode:
                check("postcode", validators.clean_postcode, self.country, self.postcode)
        if bool(self.peppol_scheme) != bool(self.peppol_endpoint_id):
            field = "peppol_endpoint_id" if self.peppol_scheme else "peppol_scheme"
            errors.setdefault(field, []).append(
                ValidationError(
                    _("Vul zowel het Peppol-schema als het Peppol-id in, of geen van beide.")
                )
            )
        elif self.peppol_scheme:
            check(
                "peppol_endpoint_id",
                validators.clean_peppol_endpoint,
                self.peppol_scheme,
                self.peppol_endpoint_id,
            )
        errors.update(self._relation_errors())
        if errors:
            raise ValidationError(errors)

    def _relation_errors(self) -> dict:
        errors = {}
        firm = self.accountancy_firm
        if firm is not None:
            if self.is_accountancy_firm:
                errors["accountancy_firm"] = [
                    ValidationError(_("Een accountantskantoor valt zelf niet onder een kantoor."))
                ]
            elif firm.pk == self.pk or not firm.is_accountancy_firm:
                errors["accountancy_firm"] = [ValidationError(_("Kies een accountantskantoor."))]
        if self.billed_via_id and self.billed_via_id != self.accountancy_firm_id:
            errors["billed_via"] = [
                ValidationError(
                    _("Alleen het eigen accountantskantoor van de klant kan de factuur krijgen.")
                )
            ]
        return errors
