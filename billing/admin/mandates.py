"""SEPA mandates (R12): read-only for staff; they change only through the mandate services."""

from django.contrib import admin
from django.utils.translation import gettext_lazy

from billing.models import Mandate
from billing.services.mandates import mandate_sequence_type

from .common import ReadOnlyAdmin


@admin.register(Mandate)
class MandateAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "organisation",
        "masked_iban",
        "status",
        "signed_at",
        "first_collected_at",
    ]
    list_filter = ["status"]
    search_fields = ["reference", "organisation__legal_name", "iban"]
    list_select_related = ["organisation"]
    date_hierarchy = "signed_at"
    readonly_fields = [
        "reference",
        "organisation",
        "status",
        "account_holder",
        "masked_iban",
        "bic",
        "sequence_type",
        "signed_at",
        "signed_by",
        "signed_ip",
        "first_collected_at",
        "amends",
        "invalid_reason",
        "ended_at",
        "mandate_text",
        "created_at",
    ]
    fields = readonly_fields

    @admin.display(description=gettext_lazy("IBAN"))
    def masked_iban(self, obj):
        # The full IBAN is searchable but never displayed: staff confirm, they do not read it out.
        return obj.iban_masked

    @admin.display(description=gettext_lazy("volgende reeks"))
    def sequence_type(self, obj):
        return mandate_sequence_type(obj)

    def get_search_results(self, request, queryset, search_term):
        # IBANs are stored compact; "NL91 ABNA 0417 …" as written on a card should find them.
        compact = search_term.replace(" ", "").upper()
        if compact != search_term and len(compact) >= 15 and compact[:2].isalpha():
            return queryset.filter(iban=compact), False
        return super().get_search_results(request, queryset, search_term)
