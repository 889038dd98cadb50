from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import Organisation


class BilledViaFilter(admin.SimpleListFilter):
    title = _("facturatie")
    parameter_name = "billing"

    def lookups(self, request, model_admin):
        return [("direct", _("Direct")), ("firm", _("Via accountantskantoor"))]

    def queryset(self, request, queryset):
        if self.value() == "direct":
            return queryset.filter(billed_via__isnull=True)
        if self.value() == "firm":
            return queryset.filter(billed_via__isnull=False)
        return queryset


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = (
        "legal_name",
        "kind",
        "kvk_number",
        "country",
        "city",
        "accountancy_firm",
        "billed_via",
        "status",
    )
    list_filter = ("kind", "status", "country", BilledViaFilter)
    search_fields = ("legal_name", "kvk_number", "vat_id", "billing_email", "city")
    autocomplete_fields = ("accountancy_firm", "billed_via")
    list_select_related = ("accountancy_firm", "billed_via")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("kind", "legal_name", "status")}),
        (_("Registratie"), {"fields": ("country", "kvk_number", "vat_id")}),
        (_("Adres"), {"fields": ("street", "postcode", "city")}),
        (_("Facturatie"), {"fields": ("billing_email", "peppol_scheme", "peppol_endpoint_id")}),
        (_("Accountant"), {"fields": ("accountancy_firm", "billed_via")}),
        (_("Historie"), {"fields": ("created_at", "updated_at")}),
    )
