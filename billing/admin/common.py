from collections.abc import Callable
from decimal import Decimal

from django.contrib import admin
from django.utils import formats


class ReadOnlyInline(admin.TabularInline):
    """Rows shown with their parent; they change only through services."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """A list and a detail page to read; nothing to add, change or delete by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def shown_as(name: str, label) -> Callable:
    """A read-only admin field showing the model field ``name`` under a Dutch ``label``.

    The snapshot, line, VAT and chunk fields of the billing models have no
    verbose names, so the admin would label them in English ("buyer vat id").
    """

    def show(obj):
        value = getattr(obj, name)
        if value in ("", None):
            return "—"
        if isinstance(value, Decimal):
            # 12.50 → "12,50"; a quantity 3.000 → "3", as people write it.
            if value == value.to_integral_value() and name == "quantity":
                value = value.quantize(Decimal(1))
            return formats.number_format(value, use_l10n=True)
        return value

    show.__name__ = name
    show.short_description = label
    return show
