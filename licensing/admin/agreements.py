"""Admin screens for agreements and terminations.

Agreements change only through services (quantities from the SB application,
terminations here and in the portal), so these screens read; the one write is
the vendor's immediate termination (R15), an action with a confirmation page.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminRadioSelect
from django.db.models import F
from django.template.response import TemplateResponse
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from afas_sb.errors import DomainError
from licensing.services.terminations import VENDOR_REASONS, agreement_terminate_by_vendor

from ..models import Agreement, LicenceChange, LicenceLine, Termination


class InvoiceToFilter(admin.SimpleListFilter):
    title = gettext_lazy("facturatie")
    parameter_name = "billed"

    def lookups(self, request, model_admin):
        return [("direct", _("Direct aan de klant")), ("firm", _("Via accountantskantoor"))]

    def queryset(self, request, queryset):
        if self.value() == "direct":
            return queryset.filter(invoice_to=F("organisation"))
        if self.value() == "firm":
            return queryset.exclude(invoice_to=F("organisation"))
        return queryset


class ReadOnlyInline(admin.TabularInline):
    """History and current state, shown; they change only through the services."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LicenceLineInline(ReadOnlyInline):
    model = LicenceLine
    fields = readonly_fields = ("component", "quantity", "updated_at")
    verbose_name_plural = gettext_lazy("licentie (huidige aantallen)")


class LicenceChangeInline(ReadOnlyInline):
    model = LicenceChange
    fields = readonly_fields = (
        "created_at",
        "component",
        "old_quantity",
        "new_quantity",
        "source",
        "actor_user",
        "note",
    )
    verbose_name_plural = gettext_lazy("wijzigingshistorie")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("component", "actor_user")


class TerminationInline(ReadOnlyInline):
    model = Termination
    fields = readonly_fields = (
        "kind",
        "reason",
        "status",
        "effective_date",
        "requested_at",
        "requested_by",
        "withdrawn_at",
        "withdrawn_by",
        "note",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("requested_by", "withdrawn_by")


class VendorTerminationForm(forms.Form):
    reason = forms.ChoiceField(
        label=gettext_lazy("Reden"),
        choices=[(value, Termination.Reason(value).label) for value in VENDOR_REASONS],
        widget=AdminRadioSelect(attrs={"class": "radiolist"}),
    )
    note = forms.CharField(
        label=gettext_lazy("Toelichting"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "class": "vLargeTextField"}),
        help_text=gettext_lazy(
            "Wat is er gebeurd, en waar staat het bewijs (dossier, uitspraak, publicatie)?"
        ),
    )


@admin.register(Agreement)
class AgreementAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "organisation",
        "invoice_to",
        "status",
        "start_date",
        "end_date",
        "terms_version",
    )
    list_filter = ("status", "organisation__kind", InvoiceToFilter)
    search_fields = ("number", "organisation__legal_name", "organisation__kvk_number")
    list_select_related = ("organisation", "invoice_to", "terms_version")
    date_hierarchy = "start_date"
    readonly_fields = (
        "number",
        "organisation",
        "invoice_to",
        "start_date",
        "end_date",
        "status",
        "terms_version",
        "previous_terms_version",
        "previous_terms_until",
        "created_at",
    )
    fieldsets = (
        (None, {"fields": ("number", "organisation", "invoice_to", "status")}),
        (gettext_lazy("Looptijd"), {"fields": ("start_date", "end_date", "created_at")}),
        (
            gettext_lazy("Voorwaarden"),
            {"fields": ("terms_version", "previous_terms_version", "previous_terms_until")},
        ),
    )
    inlines = [LicenceLineInline, TerminationInline, LicenceChangeInline]
    actions = ["terminate_by_vendor"]

    def has_add_permission(self, request):
        # New agreements get their number and first quantities from agreement_create.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(
        description=gettext_lazy("Direct beëindigen (leverancier)"), permissions=["change"]
    )
    def terminate_by_vendor(self, request, queryset):
        """R15: ask for the reason and a note on a confirmation page, then end at once."""
        agreements = list(queryset.select_related("organisation", "invoice_to").order_by("pk"))
        form = VendorTerminationForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for agreement in agreements:
                was_live = agreement.is_live
                try:
                    termination = agreement_terminate_by_vendor(
                        agreement=agreement,
                        reason=form.cleaned_data["reason"],
                        note=form.cleaned_data["note"],
                        staff_user=request.user,
                    )
                except DomainError as exc:
                    self.message_user(request, f"{agreement.number}: {exc.message}", messages.ERROR)
                    continue
                if was_live:
                    self.message_user(
                        request,
                        _("%(number)s is per direct beëindigd; de laatste dag is %(date)s.")
                        % {
                            "number": agreement.number,
                            "date": date_format(termination.effective_date, "j F Y"),
                        },
                        messages.SUCCESS,
                    )
                else:
                    self.message_user(
                        request,
                        _("%(number)s was al beëindigd (%(kind)s, %(date)s).")
                        % {
                            "number": agreement.number,
                            "kind": termination.get_kind_display(),
                            "date": date_format(termination.effective_date, "j F Y"),
                        },
                        messages.WARNING,
                    )
            return None
        return TemplateResponse(
            request,
            "admin/licensing/agreement/terminate_by_vendor.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Overeenkomsten direct beëindigen"),
                "opts": self.model._meta,
                "agreements": agreements,
                "form": form,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "action": "terminate_by_vendor",
            },
        )


@admin.register(Termination)
class TerminationAdmin(admin.ModelAdmin):
    list_display = (
        "agreement_number",
        "organisation",
        "kind",
        "reason",
        "status",
        "effective_date",
        "requested_at",
        "requested_by",
    )
    list_filter = ("kind", "status", "reason", ("effective_date", admin.DateFieldListFilter))
    search_fields = (
        "agreement__number",
        "agreement__organisation__legal_name",
        "agreement__organisation__kvk_number",
    )
    list_select_related = ("agreement__organisation", "requested_by")
    date_hierarchy = "effective_date"
    readonly_fields = (
        "agreement",
        "kind",
        "reason",
        "note",
        "status",
        "effective_date",
        "requested_at",
        "requested_by",
        "withdrawn_at",
        "withdrawn_by",
    )

    @admin.display(description=gettext_lazy("overeenkomst"), ordering="agreement__number")
    def agreement_number(self, obj):
        return obj.agreement.number

    @admin.display(
        description=gettext_lazy("klant"), ordering="agreement__organisation__legal_name"
    )
    def organisation(self, obj):
        return obj.agreement.organisation

    def has_add_permission(self, request):
        # Terminations come from the portal, the vendor action and the calendar.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
