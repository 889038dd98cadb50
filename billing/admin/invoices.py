"""Invoices and credit notes: find, read, and correct with a credit note (R9).

Nothing on an issued invoice can be edited or deleted here; the one action
issues a credit note for whole invoices, with the reason asked on a
confirmation page.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from afas_sb.calendars import Period
from afas_sb.errors import DomainError
from afas_sb.money import format_eur

from ..models import Invoice, InvoiceLine, InvoiceVat
from ..services.credit import credit_note_issue
from ..services.issue import period_text
from ..services.ledger import with_balances
from .common import ReadOnlyAdmin, ReadOnlyInline, shown_as


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = readonly_fields = (
        shown_as("position", gettext_lazy("regel")),
        shown_as("description", gettext_lazy("omschrijving")),
        shown_as("quantity", gettext_lazy("aantal")),
        shown_as("unit", gettext_lazy("eenheid")),
        shown_as("unit_price", gettext_lazy("prijs per eenheid")),
        shown_as("net_amount", gettext_lazy("bedrag excl. btw")),
        shown_as("vat_category", gettext_lazy("btw-categorie")),
        shown_as("vat_rate", gettext_lazy("btw %")),
    )
    verbose_name_plural = gettext_lazy("regels")


class InvoiceVatInline(ReadOnlyInline):
    model = InvoiceVat
    fields = readonly_fields = (
        shown_as("category", gettext_lazy("categorie")),
        shown_as("rate", gettext_lazy("tarief %")),
        shown_as("taxable_amount", gettext_lazy("grondslag")),
        shown_as("tax_amount", gettext_lazy("btw")),
        shown_as("exemption_reason", gettext_lazy("reden vrijstelling")),
    )
    verbose_name_plural = gettext_lazy("btw per categorie")


class BuyerCountryFilter(admin.SimpleListFilter):
    title = gettext_lazy("land klant")
    parameter_name = "land"

    def lookups(self, request, model_admin):
        return [("NL", _("Nederland")), ("BE", _("België"))]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(buyer_country=self.value())
        return queryset


class BalanceFilter(admin.SimpleListFilter):
    """Where an invoice's money stands: what collections staff chase or pay back."""

    title = gettext_lazy("betaalstand")
    parameter_name = "saldo"

    def lookups(self, request, model_admin):
        return [
            ("open", _("Nog te betalen")),
            ("partly", _("Deels betaald")),
            ("overpaid", _("Te veel betaald (terugbetalen)")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        invoices = queryset.filter(kind=Invoice.Kind.INVOICE)
        if value == "open":
            return invoices.filter(owed__gt=0)
        if value == "partly":
            return invoices.filter(owed__gt=0, paid_total__gt=0)
        if value == "overpaid":
            # Credited invoices count too: money collected before a credit note is owed back.
            return invoices.filter(owed__lt=0)
        return queryset


class CreditNoteForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reden"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "class": "vLargeTextField"}),
        help_text=gettext_lazy(
            "Komt op de creditnota en in het auditlog, bijv. 'Dubbel gefactureerd' of "
            "'Verkeerd aantal gebruikers'."
        ),
    )


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "kind",
        "customer",
        "issue_date",
        "period",
        "gross",
        "balance",
        "status",
    )
    list_filter = ("kind", "purpose", "status", BalanceFilter, BuyerCountryFilter)
    date_hierarchy = "issue_date"
    search_fields = ("number", "buyer_name", "buyer_kvk", "agreement__number")
    show_full_result_count = False  # a count over every invoice ever issued is slow
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "number",
                    "kind",
                    "purpose",
                    "status",
                    "issue_date",
                    "due_date",
                    "period_start",
                    "period_end",
                    "buyer_reference",
                    "agreement",
                    shown_as("billing_run", gettext_lazy("facturatierun")),
                    "credited_invoice",
                    "credit_notes",
                    "reason",
                )
            },
        ),
        (
            gettext_lazy("Bedragen"),
            {
                "fields": (
                    "currency",
                    "net_total",
                    "vat_total",
                    "gross_total",
                    "vat_note",
                    "credited",
                    "paid",
                    "balance",
                )
            },
        ),
        (
            gettext_lazy("Klant (zoals op de factuur)"),
            {
                "fields": (
                    "organisation",
                    shown_as("buyer_name", gettext_lazy("naam")),
                    shown_as("buyer_street", gettext_lazy("straat en huisnummer")),
                    shown_as("buyer_postcode", gettext_lazy("postcode")),
                    shown_as("buyer_city", gettext_lazy("plaats")),
                    shown_as("buyer_country", gettext_lazy("land")),
                    shown_as("buyer_kvk", gettext_lazy("KvK-nummer")),
                    shown_as("buyer_vat_id", gettext_lazy("btw-id")),
                    shown_as("buyer_email", gettext_lazy("e-mailadres voor facturen")),
                    shown_as("buyer_peppol_scheme", gettext_lazy("Peppol-schema")),
                    shown_as("buyer_peppol_id", gettext_lazy("Peppol-id")),
                )
            },
        ),
        (
            gettext_lazy("Leverancier (zoals op de factuur)"),
            {
                "classes": ("collapse",),
                "fields": (
                    shown_as("seller_name", gettext_lazy("naam")),
                    shown_as("seller_street", gettext_lazy("straat en huisnummer")),
                    shown_as("seller_postcode", gettext_lazy("postcode")),
                    shown_as("seller_city", gettext_lazy("plaats")),
                    shown_as("seller_country", gettext_lazy("land")),
                    shown_as("seller_kvk", gettext_lazy("KvK-nummer")),
                    shown_as("seller_vat_id", gettext_lazy("btw-id")),
                    shown_as("seller_iban", gettext_lazy("IBAN")),
                    shown_as("seller_bic", gettext_lazy("BIC")),
                    "created_at",
                ),
            },
        ),
    )
    readonly_fields = [name for _title, options in fieldsets for name in options["fields"]]
    inlines = [InvoiceLineInline, InvoiceVatInline]
    actions = ["create_credit_note"]

    def get_queryset(self, request):
        queryset = with_balances(super().get_queryset(request))
        return queryset.annotate(owed=F("gross_total") - F("credited_total") - F("paid_total"))

    @admin.display(description=gettext_lazy("gecrediteerd"))
    def credited(self, obj):
        return format_eur(obj.credited_total) if obj.kind == Invoice.Kind.INVOICE else "—"

    @admin.display(description=gettext_lazy("betaald"))
    def paid(self, obj):
        return format_eur(obj.paid_total) if obj.kind == Invoice.Kind.INVOICE else "—"

    @admin.display(description=gettext_lazy("saldo"), ordering="owed")
    def balance(self, obj):
        """What the customer still owes; negative is money we owe back."""
        if obj.kind != Invoice.Kind.INVOICE:
            return "—"
        if obj.owed < 0:
            return format_html(
                '<span title="{}">{}</span>', _("te veel betaald"), format_eur(obj.owed)
            )
        return format_eur(obj.owed)

    @admin.display(description=gettext_lazy("klant"), ordering="buyer_name")
    def customer(self, obj):
        return obj.buyer_name

    @admin.display(description=gettext_lazy("periode"), ordering="period_start")
    def period(self, obj):
        if not obj.period_start:
            return "—"
        return period_text(Period(obj.period_start, obj.period_end))

    @admin.display(description=gettext_lazy("totaal incl. btw"), ordering="gross_total")
    def gross(self, obj):
        # A credit note's amounts are stored positive (EN 16931); it takes them off.
        if obj.kind == Invoice.Kind.CREDIT_NOTE:
            return format_eur(-obj.gross_total)
        return format_eur(obj.gross_total)

    @admin.display(description=gettext_lazy("creditnota's"))
    def credit_notes(self, obj):
        notes = list(obj.credit_notes.order_by("number").values_list("pk", "number"))
        if not notes:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:billing_invoice_change", args=[pk]), number) for pk, number in notes),
        )

    def has_credit_permission(self, request):
        # Invoices never change; crediting one is the nearest thing to changing it.
        return request.user.has_perm("billing.change_invoice")

    @admin.action(description=gettext_lazy("Creditnota maken"), permissions=["credit"])
    def create_credit_note(self, request, queryset):
        """A credit note for each whole invoice, with the reason from a confirmation page."""
        invoices = list(queryset.order_by("number"))
        form = CreditNoteForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for invoice in invoices:
                try:
                    credit_note = credit_note_issue(
                        invoice=invoice,
                        lines=None,
                        reason=form.cleaned_data["reason"],
                        staff_user=request.user,
                    )
                except DomainError as exc:
                    self.message_user(request, f"{invoice.number}: {exc.message}", messages.ERROR)
                    continue
                self.message_user(
                    request,
                    format_html(
                        _("Creditnota {} gemaakt voor factuur {} ({})."),
                        format_html(
                            '<a href="{}">{}</a>',
                            reverse("admin:billing_invoice_change", args=[credit_note.pk]),
                            credit_note.number,
                        ),
                        invoice.number,
                        format_eur(credit_note.gross_total),
                    ),
                    messages.SUCCESS,
                )
            return None
        return TemplateResponse(
            request,
            "admin/billing/invoice/credit_note.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Creditnota maken"),
                "opts": self.model._meta,
                "invoices": invoices,
                "form": form,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "action": "create_credit_note",
            },
        )
