"""Admin screens for client administrations and their transfers (R2, R17).

Read-only on purpose: every change of an administration also changes a licence
quantity, and those go only through licensing.services.administrations, which
keeps the licence history and the audit trail. Staff look things up here.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import Administration, AdministrationTransfer


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TransferInline(admin.TabularInline):
    model = AdministrationTransfer
    fields = (
        "to_organisation",
        "status",
        "requested_at",
        "requested_by",
        "decided_at",
        "decided_by",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("overdrachten")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Administration)
class AdministrationAdmin(ReadOnlyAdmin):
    list_display = ("name", "firm", "client", "kind", "status", "paying_agreement")
    list_filter = ("kind", "status")
    search_fields = ("name", "firm__legal_name", "client__legal_name", "agreement__number")
    list_select_related = ("firm", "client", "agreement")
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("name", "firm", "client", "kind", "status")}),
        (_("Facturatie"), {"fields": ("agreement",)}),
        (_("Historie"), {"fields": ("created_at", "exported_at", "ended_at")}),
    )
    inlines = [TransferInline]

    @admin.display(description=_("betalende overeenkomst"), ordering="agreement__number")
    def paying_agreement(self, obj):
        return obj.agreement.number


@admin.register(AdministrationTransfer)
class AdministrationTransferAdmin(ReadOnlyAdmin):
    list_display = (
        "administration",
        "to_organisation",
        "status",
        "requested_at",
        "requested_by",
        "decided_at",
        "decided_by",
    )
    list_filter = ("status", "requested_at")
    search_fields = (
        "administration__name",
        "administration__firm__legal_name",
        "to_organisation__legal_name",
    )
    list_select_related = (
        "administration",
        "to_organisation",
        "requested_by",
        "decided_by",
    )
    date_hierarchy = "requested_at"
