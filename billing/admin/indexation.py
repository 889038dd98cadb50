"""Indexation rounds (R5, R6): record the July CPI figure, review the draft prices, approve.

Staff add a round with the year of the new prices and either the CBS figure
with its source, or the CBS StatLine JSON download from which the figure and
source are read. Saving drafts next year's price list through the service;
the draft is reviewed (and may be corrected) in the price-list admin, and
approved here with the "Goedkeuren" action. Every write goes through
billing.services.indexation.
"""

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from afas_sb.errors import DomainError
from afas_sb.money import format_eur
from licensing.models import Price
from licensing.selectors import price_list_on

from ..models import IndexationRound
from ..services.indexation import (
    CBS_MAX_BYTES,
    indexation_approve,
    indexation_check_cpi,
    indexation_import_cbs,
    indexation_read_cbs,
    indexation_record_cpi,
)

CBS_DOWNLOAD_HINT = gettext_lazy(
    "Optioneel: het JSON-bestand van CBS StatLine (tabel 83131NED, Consumentenprijzen). "
    "Download alleen juli, bijv. https://opendata.cbs.nl/ODataApi/odata/83131NED/"
    "TypedDataSet?$filter=Perioden eq '2026MM07'. Met een bestand worden CPI-cijfer en bron "
    "daaruit gelezen."
)


class IndexationRoundForm(forms.ModelForm):
    """Year, figure and source, or a CBS file instead of the figure and source."""

    cbs_file = forms.FileField(label=gettext_lazy("CBS-bestand (JSON)"), required=False)

    class Meta:
        model = IndexationRound
        fields = ("year", "cpi_change", "source")
        # Staff type the figure the Dutch way, "3,2".
        localized_fields = ("cpi_change",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cbs_bytes: bytes | None = None
        self.fields["cbs_file"].help_text = CBS_DOWNLOAD_HINT
        for name in ("cpi_change", "source"):
            if name in self.fields:
                self.fields[name].required = False
        if "cpi_change" in self.fields:
            self.fields["cpi_change"].help_text = _(
                "In procenten, bijv. 3,2 of -0,4: de jaarmutatie CPI van juli, alle bestedingen."
            )
        if "year" in self.fields:
            self.fields["year"].help_text = _(
                "Het jaar waarvan de eerste factuur de nieuwe prijzen krijgt; het CPI-cijfer "
                "is dat van juli het jaar ervoor."
            )

    def validate_unique(self):
        # A second figure for a year's round updates its draft: the service decides, not a
        # unique error.
        pass

    def clean(self):
        data = super().clean()
        year = data.get("year") or self.instance.year
        if not year or self.errors:
            return data
        upload = data.get("cbs_file")
        try:
            if upload:
                if upload.size > CBS_MAX_BYTES:
                    raise DomainError(
                        _("Het CBS-bestand is te groot (maximaal %(mb)s MB).")
                        % {"mb": CBS_MAX_BYTES // (1024 * 1024)}
                    )
                self.cbs_bytes = upload.read()
                data["cpi_change"], data["source"] = indexation_read_cbs(
                    year=year, json_bytes=self.cbs_bytes
                )
            elif data.get("cpi_change") is None or not data.get("source"):
                raise DomainError(_("Vul het CPI-cijfer en de bron in, of upload het CBS-bestand."))
            data["cpi_change"], data["source"] = indexation_check_cpi(
                year=year, cpi_change=data["cpi_change"], source=data["source"]
            )
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None
        return data


@admin.register(IndexationRound)
class IndexationRoundAdmin(admin.ModelAdmin):
    form = IndexationRoundForm
    list_display = (
        "year",
        "cpi_display",
        "source",
        "status",
        "price_list_link",
        "mailing_sent_at",
    )
    list_filter = ("status",)
    readonly_fields = (
        "status",
        "cpi_month",
        "price_list_link",
        "price_preview",
        "approved_at",
        "approved_by_display",
        "mailing_sent_at",
    )
    actions = ["approve"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("year", "cpi_change", "source", "cbs_file")
        if obj.status == IndexationRound.Status.APPROVED:
            return ("year", "cpi_change", "source", *self.readonly_fields)
        return ("year", "cpi_change", "source", "cbs_file", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if obj.status == IndexationRound.Status.APPROVED:
            # Approved: the prices are promised to customers; nothing changes any more.
            return ("year", "cpi_change", "source", *self.readonly_fields)
        # A round stays in its year; a new year is a new round.
        return ("year", *self.readonly_fields)

    def has_change_permission(self, request, obj=None):
        # Approved: the prices are promised to customers; the round is only shown.
        if obj is not None and obj.status == IndexationRound.Status.APPROVED:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # The round explains a price list that invoices may use; it is never deleted.
        return False

    def save_model(self, request, obj, form, change):
        """Record the figure (or import the file) through the service, then show its result."""
        year = obj.year
        if form.cbs_bytes is not None:
            result = indexation_import_cbs(
                year=year, json_bytes=form.cbs_bytes, staff_user=request.user
            )
        else:
            result = indexation_record_cpi(
                year=year,
                cpi_change=form.cleaned_data["cpi_change"],
                source=form.cleaned_data["source"],
                staff_user=request.user,
            )
        # The admin logs and redirects with ``obj``: make it the round the service wrote.
        obj.pk = result.pk
        obj.refresh_from_db()

    @admin.display(description=gettext_lazy("goedgekeurd door"))
    def approved_by_display(self, obj):
        return obj.approved_by.get_full_name() if obj.approved_by else "—"

    @admin.display(description=gettext_lazy("CPI jaarmutatie"), ordering="cpi_change")
    def cpi_display(self, obj):
        sign = "+" if obj.cpi_change > 0 else ""
        return f"{sign}{number_format(obj.cpi_change, 2)}%"

    @admin.display(description=gettext_lazy("nieuwe prijslijst"))
    def price_list_link(self, obj):
        if obj.price_list_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a> ({})',
            reverse("admin:licensing_pricelist_change", args=[obj.price_list_id]),
            obj.price_list.name,
            obj.price_list.get_status_display(),
        )

    @admin.display(description=gettext_lazy("prijzen oud → nieuw"))
    def price_preview(self, obj):
        """Each component's price on 31 December next to the indexed one, for the review."""
        if obj is None or obj.price_list_id is None:
            return "—"
        old_list = price_list_on(date(obj.year - 1, 12, 31))
        old = (
            dict(old_list.prices.values_list("component_id", "unit_price"))
            if old_list is not None
            else {}
        )
        rows = Price.objects.filter(price_list_id=obj.price_list_id).select_related("component")
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("onderdeel"),
            _("nu"),
            _("nieuw"),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        price.component.name,
                        format_eur(old[price.component_id]) if price.component_id in old else "—",
                        format_eur(price.unit_price),
                    )
                    for price in rows
                ),
            ),
        )

    def has_approve_permission(self, request):
        return request.user.has_perm("billing.change_indexationround")

    @admin.action(
        description=gettext_lazy("Goedkeuren (nieuwe prijzen vanaf 1 januari)"),
        permissions=["approve"],
    )
    def approve(self, request, queryset):
        for indexation_round in queryset.order_by("year"):
            try:
                indexation_approve(round=indexation_round, staff_user=request.user)
            except DomainError as exc:
                self.message_user(request, f"{indexation_round}: {exc.message}", messages.ERROR)
                continue
            self.message_user(
                request,
                _(
                    "Indexatie %(year)s goedgekeurd: de nieuwe prijzen gelden vanaf de eerste "
                    "factuur van januari %(year)s."
                )
                % {"year": indexation_round.year},
                messages.SUCCESS,
            )
