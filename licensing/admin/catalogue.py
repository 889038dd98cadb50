from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from afas_sb import clock

from ..models import Component, Price, PriceList, Product


class ComponentInline(admin.TabularInline):
    model = Component
    fields = ("code", "name", "kind", "unit", "position", "is_active")
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "is_active")
    search_fields = ("name", "code")
    inlines = [ComponentInline]


@admin.register(Component)
class ComponentAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "product", "kind", "unit", "position", "is_active")
    list_filter = ("product", "kind", "is_active")
    search_fields = ("name", "code")


class PriceInline(admin.TabularInline):
    """Prices of a draft list are editable; an approved list has priced invoices and stays."""

    model = Price
    fields = ("component", "unit_price")
    extra = 0
    autocomplete_fields = ("component",)

    @staticmethod
    def _editable(price_list) -> bool:
        return price_list is None or price_list.status != PriceList.Status.APPROVED

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(PriceList)
class PriceListAdmin(admin.ModelAdmin):
    """Prices per component from a date on; the list valid on a period's first day applies (R4)."""

    list_display = ("name", "valid_from", "status", "approved_at", "approved_by")
    list_filter = ("status",)
    search_fields = ("name",)
    date_hierarchy = "valid_from"
    readonly_fields = ("approved_at", "approved_by")
    inlines = [PriceInline]
    fieldsets = (
        (None, {"fields": ("name", "valid_from", "status", "note")}),
        (_("Goedkeuring"), {"fields": ("approved_at", "approved_by")}),
    )

    def get_readonly_fields(self, request, obj=None):
        # An approved list has priced invoices: it no longer changes.
        if obj is not None and obj.status == PriceList.Status.APPROVED:
            return ("name", "valid_from", "status", "note", "approved_at", "approved_by")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if obj.status == PriceList.Status.APPROVED and obj.approved_at is None:
            obj.approved_at = clock.now()
            obj.approved_by = request.user
        super().save_model(request, obj, form, change)
