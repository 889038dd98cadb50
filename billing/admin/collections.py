"""Collections for staff (R12): debits, batches, bank files, the unmatched queue, payments, e-mails.

Money rows are never added, edited or deleted by hand. What staff do goes
through the services, from actions and small admin views: mark a batch as
handed to the bank, download its pain.008, upload a bank file, match a
transfer to an invoice or set it aside, send a failed e-mail again. The
"Incasso-overzicht" sums collected, returned and open amounts per month.

The services of the bank-file import, the transfers and the batches are
imported inside the views that call them: they pull in the parsers and the
SEPA writer, which the rest of the admin does not need.
"""

from __future__ import annotations

import functools
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.errors import DomainError
from afas_sb.money import format_eur

from ..collection_selectors import (
    collections_overview,
    match_candidates,
    open_invoice_by_number,
    unmatched_transactions_count,
)
from ..models import (
    BankFileImport,
    BankTransaction,
    CollectionNotice,
    DebitBatch,
    DirectDebit,
    Invoice,
    Payment,
)
from ..sepa.reasons import describe
from .common import ReadOnlyAdmin

ERROR_PREVIEW_CHARS = 120
REFERENCE_PREVIEW_CHARS = 60
# The counters of billing.services.bank_import (SUMMARY_KEYS), as staff read them.
SUMMARY_LABELS = {
    "entries": gettext_lazy("boekingen"),
    "transactions": gettext_lazy("transacties"),
    "new": gettext_lazy("nieuw"),
    "duplicates": gettext_lazy("eerder ingelezen"),
    "collected": gettext_lazy("geïncasseerd"),
    "returned": gettext_lazy("gestorneerd"),
    "rejected": gettext_lazy("geweigerd"),
    "accepted": gettext_lazy("geaccepteerd"),
    "transfers_matched": gettext_lazy("overboekingen gekoppeld"),
    "already": gettext_lazy("al verwerkt"),
    "unmatched": gettext_lazy("niet gekoppeld"),
    "ignored": gettext_lazy("genegeerd"),
    "represented": gettext_lazy("opnieuw aangeboden"),
    "pay_by_transfer": gettext_lazy("verzoek om over te maken"),
    "settled": gettext_lazy("al betaald, niets meer te innen"),
}


def _link(viewname: str, pk, text) -> str:
    return format_html('<a href="{}">{}</a>', reverse(viewname, args=[pk]), text)


def _invoice_link(invoice: Invoice | None) -> str:
    if invoice is None:
        return "—"
    return format_html(
        '<a class="nowrap" href="{}">{}</a>',
        reverse("admin:billing_invoice_change", args=[invoice.pk]),
        invoice.number,
    )


def _amount(value) -> str:
    if value is None:
        return "—"
    return format_html('<span class="nowrap">{}</span>', format_eur(value))


def _moment(value) -> str:
    """A timestamp as staff read it in a list: '20-11-2026 10:00' in Amsterdam time."""
    if value is None:
        return "—"
    return formats.date_format(clock.local(value), "d-m-Y H:i")


def _summary_text(summary: dict) -> str:
    """'3 geïncasseerd, 1 gestorneerd' from an import's summary; zero counts left out."""
    parts = []
    for key, value in (summary or {}).items():
        if isinstance(value, bool) or not isinstance(value, int) or value == 0:
            continue
        parts.append(f"{value} {SUMMARY_LABELS.get(key, key.replace('_', ' '))}")
    return ", ".join(parts) or "—"


def _admin_context(model_admin, request, **context) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        **context,
    }


# --- Direct debits --------------------------------------------------------------------------


class ReturnReasonFilter(admin.SimpleListFilter):
    title = gettext_lazy("stornoreden")
    parameter_name = "reden"

    def lookups(self, request, model_admin):
        codes = (
            DirectDebit.objects.exclude(return_reason="")
            .order_by("return_reason")
            .values_list("return_reason", flat=True)
            .distinct()
        )
        return [(code, describe(code)) for code in codes]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(return_reason=self.value())
        return queryset


@admin.register(DirectDebit)
class DirectDebitAdmin(ReadOnlyAdmin):
    # Status and reason first: on a laptop with both sidebars open the last columns scroll.
    list_display = (
        "end_to_end",
        "organisation",
        "amount_eur",
        "collection_day",
        "status",
        "return_reason_text",
        "attempt",
        "sequence",
        "invoice_number",
    )
    list_filter = ("status", "sequence_type", "collection_date", ReturnReasonFilter)
    list_select_related = ("invoice", "organisation")
    date_hierarchy = "collection_date"
    search_fields = (
        "=end_to_end_id",
        "invoice__number",
        "organisation__legal_name",
        "mandate__reference",
    )
    show_full_result_count = False
    fields = readonly_fields = (
        "end_to_end_id",
        "invoice_number",
        "organisation",
        "mandate",
        "batch",
        "attempt",
        "amount_eur",
        "collection_date",
        "sequence_type",
        "status",
        "return_reason_text",
        "return_info",
        "collected_on",
        "returned_on",
        "prenotified_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description=gettext_lazy("end-to-end-id"), ordering="end_to_end_id")
    def end_to_end(self, obj):
        return format_html('<span class="nowrap">{}</span>', obj.end_to_end_id)

    @admin.display(description=gettext_lazy("factuur"), ordering="invoice__number")
    def invoice_number(self, obj):
        return _invoice_link(obj.invoice)

    @admin.display(description=gettext_lazy("bedrag"), ordering="amount")
    def amount_eur(self, obj):
        return _amount(obj.amount)

    @admin.display(description=gettext_lazy("incassodatum"), ordering="collection_date")
    def collection_day(self, obj):
        return formats.date_format(obj.collection_date, "d-m-Y")

    @admin.display(description=gettext_lazy("volgtype"), ordering="sequence_type")
    def sequence(self, obj):
        return obj.sequence_type or "—"

    @admin.display(description=gettext_lazy("stornoreden"), ordering="return_reason")
    def return_reason_text(self, obj):
        return describe(obj.return_reason) or "—"


# --- Batches ---------------------------------------------------------------------------------


@admin.register(DebitBatch)
class DebitBatchAdmin(ReadOnlyAdmin):
    list_display = (
        "message",
        "collection_day",
        "sequence",
        "status",
        "debits_link",
        "total_eur",
        "download_link",
    )
    list_filter = ("status", "sequence_type")
    date_hierarchy = "collection_date"
    search_fields = ("=message_id",)
    fields = readonly_fields = (
        "message_id",
        "collection_date",
        "sequence_type",
        "status",
        "creditor_id",
        "debit_count",
        "total_eur",
        "debits_link",
        "download_link",
        "sha256",
        "created_at",
        "submitted_at",
        "submitted_by",
        "settled_at",
    )
    change_list_template = "admin/billing/collections/debitbatch_change_list.html"
    actions = ["mark_submitted"]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "overzicht/",
                view(self.overview_view),
                name="billing_debitbatch_overview",
            ),
            path(
                "<int:object_id>/bestand/",
                view(self.download_view),
                name="billing_debitbatch_download",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=gettext_lazy("bericht-id"), ordering="message_id")
    def message(self, obj):
        return format_html('<span class="nowrap">{}</span>', obj.message_id)

    @admin.display(description=gettext_lazy("incassodatum"), ordering="collection_date")
    def collection_day(self, obj):
        return formats.date_format(obj.collection_date, "d-m-Y")

    @admin.display(description=gettext_lazy("volgtype"), ordering="sequence_type")
    def sequence(self, obj):
        return obj.sequence_type

    @admin.display(description=gettext_lazy("totaal"), ordering="total")
    def total_eur(self, obj):
        return _amount(obj.total)

    @admin.display(description=gettext_lazy("incasso's"), ordering="debit_count")
    def debits_link(self, obj):
        url = reverse("admin:billing_directdebit_changelist")
        return format_html(
            '<a href="{}?batch__id__exact={}">{}</a>',
            url,
            obj.pk,
            format_html(
                '<span class="nowrap">{}</span>',
                ngettext("%(n)s incasso", "%(n)s incasso's", obj.debit_count)
                % {"n": obj.debit_count},
            ),
        )

    @admin.display(description=gettext_lazy("pain.008"))
    def download_link(self, obj):
        if not obj.file:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:billing_debitbatch_download", args=[obj.pk]),
            _("Downloaden"),
        )

    def download_view(self, request, object_id):
        """The stored pain.008, byte for byte what the bank gets (checked against its checksum)."""
        from ..services.debit_batches import debit_batch_content

        batch = get_object_or_404(DebitBatch, pk=object_id)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        try:
            content = debit_batch_content(batch)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:billing_debitbatch_change", args=[batch.pk]))
        response = HttpResponse(content, content_type="application/xml")
        response["Content-Disposition"] = f'attachment; filename="{batch.message_id}.xml"'
        return response

    def has_submit_permission(self, request):
        return request.user.has_perm("billing.change_debitbatch")

    @admin.action(
        description=gettext_lazy("Markeer als aangeboden bij de bank"), permissions=["submit"]
    )
    def mark_submitted(self, request, queryset):
        """For the "manual" submission mode: staff uploaded the file to the bank themselves."""
        from ..services.debit_batches import debit_batch_mark_submitted

        for batch in queryset.order_by("collection_date", "pk"):
            if batch.status != DebitBatch.Status.CREATED:
                self.message_user(
                    request,
                    _("%(batch)s was al aangeboden (%(status)s); er is niets gewijzigd.")
                    % {"batch": batch.message_id, "status": batch.get_status_display()},
                    messages.WARNING,
                )
                continue
            try:
                batch = debit_batch_mark_submitted(batch=batch, user=request.user)
            except DomainError as exc:
                self.message_user(request, f"{batch.message_id}: {exc.message}", messages.ERROR)
                continue
            self.message_user(
                request,
                _("%(batch)s is gemarkeerd als aangeboden (%(count)s incasso's, %(total)s).")
                % {
                    "batch": batch.message_id,
                    "count": batch.debit_count,
                    "total": format_eur(batch.total),
                },
                messages.SUCCESS,
            )

    def overview_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        overview = collections_overview(today=clock.today())
        for month in [*overview.months, overview.totals]:
            month.reasons_text = ", ".join(
                f"{describe(code)} ({count}×)" for code, count in month.top_reasons
            )
        return TemplateResponse(
            request,
            "admin/billing/collections/overview.html",
            _admin_context(
                self,
                request,
                title=_("Incasso-overzicht"),
                overview=overview,
                unmatched_count=unmatched_transactions_count(),
            ),
        )


# --- Bank files ---------------------------------------------------------------------------


class BankFileUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Bankbestand"),
        help_text=gettext_lazy(
            "Een rekeningafschrift (camt.053), een notificatie (camt.054) of een statusrapport "
            "(pain.002) als XML. Hetzelfde bestand twee keer inlezen verandert niets."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.BANK_FILE_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                _("Het bestand is groter dan %(mb)s MB en wordt niet ingelezen.")
                % {"mb": limit // (1024 * 1024)}
            )
        return upload


@admin.register(BankFileImport)
class BankFileImportAdmin(ReadOnlyAdmin):
    list_display = (
        "imported",
        "version",
        "message_id",
        "filename",
        "summary_text",
        "transactions_link",
        "imported_by",
    )
    list_filter = ("kind",)
    list_select_related = ("imported_by",)
    date_hierarchy = "imported_at"
    search_fields = ("=message_id", "filename", "=sha256")
    fields = readonly_fields = (
        "kind",
        "version",
        "message_id",
        "filename",
        "size",
        "sha256",
        "imported_at",
        "imported_by",
        "summary_text",
        "transactions_link",
    )
    change_list_template = "admin/billing/collections/bankfileimport_change_list.html"

    def get_urls(self):
        return [
            path(
                "inlezen/",
                self.admin_site.admin_view(self.upload_view),
                name="billing_bankfileimport_upload",
            ),
            *super().get_urls(),
        ]

    def has_import_permission(self, request) -> bool:
        # Imports are rows nobody adds by hand; uploading a file is how they come in.
        return request.user.has_perm("billing.add_bankfileimport")

    def changelist_view(self, request, extra_context=None):
        extra_context = {"can_import": self.has_import_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description=gettext_lazy("ingelezen op"), ordering="imported_at")
    def imported(self, obj):
        return _moment(obj.imported_at)

    @admin.display(description=gettext_lazy("samenvatting"))
    def summary_text(self, obj):
        return _summary_text(obj.summary)

    @admin.display(description=gettext_lazy("transacties"))
    def transactions_link(self, obj):
        return format_html(
            '<a href="{}?import_file__id__exact={}&amp;stand=all">{}</a>',
            reverse("admin:billing_banktransaction_changelist"),
            obj.pk,
            _("Bekijken"),
        )

    def upload_view(self, request):
        """Read one bank file; a refused file stores nothing and says why in one line."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = BankFileUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            redirect = self._import(request, form)
            if redirect is not None:
                return redirect
        return TemplateResponse(
            request,
            "admin/billing/collections/upload.html",
            _admin_context(
                self,
                request,
                title=_("Bankbestand inlezen"),
                form=form,
                max_mb=settings.BANK_FILE_MAX_BYTES // (1024 * 1024),
            ),
        )

    def _import(self, request, form) -> HttpResponseRedirect | None:
        from ..bankfiles.safe_xml import BankFileError
        from ..services.bank_import import bank_file_import

        upload = form.cleaned_data["file"]
        try:
            result = bank_file_import(
                data=upload.read(),
                filename=upload.name,
                user=request.user,
                max_bytes=settings.BANK_FILE_MAX_BYTES,
            )
        except BankFileError as exc:
            form.add_error("file", exc.message)
            return None
        except DomainError as exc:
            form.add_error(None, exc.message)
            return None
        imported = result.import_file
        if result.created:
            self.message_user(
                request,
                _("%(file)s ingelezen (%(kind)s %(id)s): %(summary)s.")
                % {
                    "file": imported.filename,
                    "kind": imported.kind,
                    "id": imported.message_id,
                    "summary": _summary_text(result.summary),
                },
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("Dit bestand is al eerder ingelezen (%(file)s, %(when)s); er is niets gewijzigd.")
                % {
                    "file": imported.filename,
                    "when": formats.date_format(clock.local(imported.imported_at), "j F Y H:i"),
                },
                messages.WARNING,
            )
        return HttpResponseRedirect(
            reverse("admin:billing_bankfileimport_change", args=[imported.pk])
        )


# --- Bank transactions: the unmatched queue -----------------------------------------------


class TransactionStateFilter(admin.SimpleListFilter):
    """Opens on "Niet gekoppeld": the queue is what staff come here for."""

    title = gettext_lazy("stand")
    parameter_name = "stand"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [*BankTransaction.State.choices, (self.ALL, _("Alle"))]

    def choices(self, changelist):
        current = self.value() or BankTransaction.State.UNMATCHED
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value() or BankTransaction.State.UNMATCHED
        if value == self.ALL:
            return queryset
        return queryset.filter(state=value)


class MatchForm(forms.Form):
    invoice_number = forms.CharField(
        label=gettext_lazy("Factuurnummer"),
        max_length=20,
        help_text=gettext_lazy("Bijvoorbeeld 2027-000123; zie de suggesties hieronder."),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("Bedrag (optioneel)"),
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        localize=True,
        help_text=gettext_lazy(
            "Leeg: het hele bedrag van de transactie gaat naar deze factuur. Vul een deel in "
            "als de overboeking meer facturen betaalt."
        ),
    )

    def clean_invoice_number(self):
        invoice = open_invoice_by_number(self.cleaned_data["invoice_number"])
        if invoice is None:
            raise forms.ValidationError(_("Er is geen factuur met dit nummer."))
        self.invoice = invoice
        return invoice.number


class IgnoreForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Notitie"),
        max_length=255,
        widget=forms.TextInput(attrs={"class": "vLargeTextField"}),
        help_text=gettext_lazy(
            "Waarom deze transactie niet bij een factuur hoort, bijv. 'Terugbetaling "
            "leverancier' of 'Dubbel overgemaakt, teruggestort'."
        ),
    )


def _match_message(bank_transaction: BankTransaction, payment: Payment) -> str:
    """What a staff match did, in words: collected, booked in full (over-paid?), or in part."""
    from ..services.ledger import invoice_balance
    from ..services.transfers import bank_transaction_unbooked

    bank_transaction.refresh_from_db()
    invoice = payment.invoice
    values = {
        "name": bank_transaction.counterparty_name or "—",
        "number": invoice.number,
        "amount": format_eur(payment.amount),
    }
    if payment.debit_id is not None:
        return _(
            "Incasso %(debit)s van %(name)s verwerkt als geïncasseerd: %(amount)s op "
            "factuur %(number)s."
        ) % {**values, "debit": payment.debit.end_to_end_id}
    unbooked = bank_transaction_unbooked(bank_transaction)
    if unbooked > 0:
        return _(
            "%(amount)s van de transactie van %(name)s geboekt op factuur %(number)s; "
            "%(rest)s staat nog in de wachtrij om te koppelen."
        ) % {**values, "rest": format_eur(unbooked)}
    message = _("Transactie van %(name)s gekoppeld aan factuur %(number)s (%(amount)s).") % values
    overpaid = invoice_balance(invoice).overpaid
    if overpaid > 0:
        message += " " + _(
            "Er is %(overpaid)s te veel betaald; dat staat als negatief saldo op de factuur."
        ) % {"overpaid": format_eur(overpaid)}
    return message


@admin.register(BankTransaction)
class BankTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "booking_day",
        "amount_eur",
        "counterparty",
        "reference_text",
        "kind",
        "state",
        "invoice_number",
        "match_link",
    )
    list_filter = (TransactionStateFilter, "kind", "booking_date")
    list_select_related = ("invoice",)
    date_hierarchy = "booking_date"
    search_fields = (
        "counterparty_name",
        "counterparty_iban",
        "reference",
        "description",
        "=end_to_end_id",
        "invoice__number",
    )
    show_full_result_count = False
    fields = readonly_fields = (
        "import_file",
        "kind",
        "state",
        "booking_date",
        "amount_eur",
        "credit_debit",
        "counterparty_name",
        "counterparty_iban",
        "reference",
        "description",
        "end_to_end_id",
        "mandate_id",
        "return_reason_text",
        "return_info",
        "invoice_number",
        "debit",
        "payments_text",
        "note",
        "matched_by",
        "matched_at",
        "created_at",
        "match_link",
    )
    actions = ["ignore_transactions"]

    def get_urls(self):
        return [
            path(
                "<int:object_id>/koppelen/",
                self.admin_site.admin_view(self.match_view),
                name="billing_banktransaction_match",
            ),
            *super().get_urls(),
        ]

    def has_match_permission(self, request) -> bool:
        return request.user.has_perm("billing.change_banktransaction")

    @admin.display(description=gettext_lazy("bedrag"), ordering="amount")
    def amount_eur(self, obj):
        amount = -obj.amount if obj.credit_debit == "DBIT" else obj.amount
        return _amount(amount)

    @admin.display(description=gettext_lazy("boekdatum"), ordering="booking_date")
    def booking_day(self, obj):
        return formats.date_format(obj.booking_date, "d-m-Y") if obj.booking_date else "—"

    @admin.display(description=gettext_lazy("tegenpartij"), ordering="counterparty_name")
    def counterparty(self, obj):
        if not obj.counterparty_iban:
            return obj.counterparty_name or "—"
        return format_html(
            '{}<br><span class="help">{}</span>',
            obj.counterparty_name or "—",
            obj.counterparty_iban,
        )

    @admin.display(description=gettext_lazy("kenmerk / omschrijving"))
    def reference_text(self, obj):
        text = " · ".join(part for part in (obj.reference, obj.description) if part)
        if len(text) > REFERENCE_PREVIEW_CHARS:
            text = f"{text[:REFERENCE_PREVIEW_CHARS]}…"
        return text or "—"

    @staticmethod
    def _is_queue(request) -> bool:
        state = request.GET.get(TransactionStateFilter.parameter_name)
        return state in (None, BankTransaction.State.UNMATCHED)

    def get_list_display(self, request):
        # In the queue every row is an unmatched transfer: room for the match button instead.
        if self._is_queue(request):
            return ("booking_day", "amount_eur", "counterparty", "reference_text", "match_link")
        return super().get_list_display(request)

    def changelist_view(self, request, extra_context=None):
        # The page opens on the queue; say so rather than "Select bank transaction to view".
        if self._is_queue(request):
            extra_context = {
                "title": _("Banktransacties die wachten op koppeling"),
                **(extra_context or {}),
            }
        return super().changelist_view(request, extra_context)

    @admin.display(description=gettext_lazy("factuur"), ordering="invoice__number")
    def invoice_number(self, obj):
        return _invoice_link(obj.invoice)

    @admin.display(description=gettext_lazy("reden"))
    def return_reason_text(self, obj):
        return describe(obj.return_reason) or "—"

    @admin.display(description=gettext_lazy("betalingen"))
    def payments_text(self, obj):
        payments = list(obj.payments.select_related("invoice").order_by("pk"))
        if not payments:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> {}',
            (
                (
                    reverse("admin:billing_invoice_change", args=[p.invoice_id]),
                    p.invoice.number,
                    format_eur(p.amount),
                )
                for p in payments
            ),
        )

    @admin.display(description="")
    def match_link(self, obj):
        if obj.state != BankTransaction.State.UNMATCHED:
            return ""
        return format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:billing_banktransaction_match", args=[obj.pk]),
            _("Koppelen"),
        )

    def match_view(self, request, object_id):
        """Settle an invoice with an incoming transfer the automatic matching could not place."""
        if not self.has_match_permission(request):
            raise PermissionDenied
        bank_transaction = get_object_or_404(
            BankTransaction.objects.select_related("import_file", "invoice"), pk=object_id
        )
        form = MatchForm(request.POST or None)
        from ..services.transfers import bank_transaction_match, bank_transaction_unbooked

        if request.method == "POST" and form.is_valid():
            try:
                payment = bank_transaction_match(
                    transaction=bank_transaction,
                    invoice=form.invoice,
                    user=request.user,
                    amount=form.cleaned_data["amount"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request, _match_message(bank_transaction, payment), messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:billing_banktransaction_changelist"))
        unbooked = bank_transaction_unbooked(bank_transaction)
        if bank_transaction.credit_debit == "CRDT" and unbooked != bank_transaction.amount:
            form.fields["amount"].help_text = _(
                "Al geboekt: %(booked)s. Leeg: de rest (%(rest)s) gaat naar deze factuur."
            ) % {
                "booked": format_eur(bank_transaction.amount - unbooked),
                "rest": format_eur(unbooked),
            }
        return TemplateResponse(
            request,
            "admin/billing/collections/match.html",
            _admin_context(
                self,
                request,
                title=_("Banktransactie koppelen aan een factuur"),
                original=bank_transaction,
                transaction=bank_transaction,
                signed_amount=self.amount_eur(bank_transaction),
                form=form,
                is_unmatched=bank_transaction.state == BankTransaction.State.UNMATCHED,
                candidates=match_candidates(bank_transaction),
            ),
        )

    @admin.action(description=gettext_lazy("Negeren"), permissions=["match"])
    def ignore_transactions(self, request, queryset):
        """Set transactions aside with a note, e.g. a refund that belongs to no invoice."""
        from ..services.transfers import bank_transaction_ignore

        transactions = list(queryset.order_by("booking_date", "pk"))
        form = IgnoreForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            ignored = 0
            for bank_transaction in transactions:
                try:
                    bank_transaction_ignore(
                        transaction=bank_transaction,
                        user=request.user,
                        note=form.cleaned_data["note"],
                    )
                except DomainError as exc:
                    self.message_user(request, f"{bank_transaction}: {exc.message}", messages.ERROR)
                    continue
                ignored += 1
            if ignored:
                self.message_user(
                    request,
                    ngettext("%(n)s transactie genegeerd.", "%(n)s transacties genegeerd.", ignored)
                    % {"n": ignored},
                    messages.SUCCESS,
                )
            return None
        return TemplateResponse(
            request,
            "admin/billing/collections/ignore.html",
            _admin_context(
                self,
                request,
                title=_("Banktransacties negeren"),
                transactions=transactions,
                form=form,
                action_checkbox_name=admin.helpers.ACTION_CHECKBOX_NAME,
                action="ignore_transactions",
            ),
        )


# --- Payments -------------------------------------------------------------------------------


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "booked",
        "kind",
        "amount_eur",
        "invoice_number",
        "organisation",
        "source",
    )
    list_filter = ("kind",)
    list_select_related = ("invoice", "organisation", "debit", "bank_transaction", "recorded_by")
    date_hierarchy = "booked_on"
    search_fields = ("invoice__number", "organisation__legal_name", "=debit__end_to_end_id")
    show_full_result_count = False
    fields = readonly_fields = (
        "kind",
        "amount_eur",
        "booked_on",
        "invoice_number",
        "organisation",
        "source",
        "recorded_by",
        "created_at",
    )

    @admin.display(description=gettext_lazy("bedrag"), ordering="amount")
    def amount_eur(self, obj):
        return _amount(obj.amount)

    @admin.display(description=gettext_lazy("factuur"), ordering="invoice__number")
    def invoice_number(self, obj):
        return _invoice_link(obj.invoice)

    @admin.display(description=gettext_lazy("boekdatum"), ordering="booked_on")
    def booked(self, obj):
        return formats.date_format(obj.booked_on, "d-m-Y")

    @admin.display(description=gettext_lazy("bron"))
    def source(self, obj):
        if obj.debit_id:
            return format_html(
                '<a class="nowrap" href="{}">{}</a>',
                reverse("admin:billing_directdebit_change", args=[obj.debit_id]),
                obj.debit.end_to_end_id,
            )
        if obj.bank_transaction_id:
            text = obj.bank_transaction.counterparty_name or _("banktransactie")
            if obj.recorded_by_id:
                text = _("%(source)s, gekoppeld door %(user)s") % {
                    "source": text,
                    "user": obj.recorded_by,
                }
            return _link("admin:billing_banktransaction_change", obj.bank_transaction_id, text)
        return "—"


# --- Collection e-mails ---------------------------------------------------------------------


def notice_retry(*, notice: CollectionNotice, user) -> bool:
    """Send a failed collection e-mail again: back to pending, from the first attempt.

    False when it was not failed (sent or already pending again), so a repeat
    changes nothing.
    """
    from ..notice_tasks import collection_notice_send

    with transaction.atomic():
        notice = CollectionNotice.objects.select_for_update().get(pk=notice.pk)
        if notice.status != CollectionNotice.Status.FAILED:
            return False
        notice.status = CollectionNotice.Status.PENDING
        notice.attempts = 0
        notice.next_attempt_at = clock.now()
        notice.save(update_fields=["status", "attempts", "next_attempt_at"])
        audit_record(
            action="collection_notice.retried",
            actor_kind=ActorKind.STAFF,
            actor_user=user,
            organisation_id=notice.organisation_id,
            target=notice,
            reason=_("Incassobericht opnieuw verstuurd"),
            data={"kind": notice.kind, "last_error": notice.last_error[:200]},
        )
        notice_id = notice.pk
        transaction.on_commit(lambda: collection_notice_send.delay(notice_id))
    return True


@admin.register(CollectionNotice)
class CollectionNoticeAdmin(ReadOnlyAdmin):
    list_display = (
        "created",
        "kind",
        "status",
        "organisation",
        "invoice_number",
        "attempts",
        "sent",
        "error_preview",
    )
    list_filter = ("status", "kind")
    list_select_related = ("organisation", "invoice")
    date_hierarchy = "created_at"
    search_fields = ("invoice__number", "organisation__legal_name", "recipients")
    fields = readonly_fields = (
        "kind",
        "status",
        "organisation",
        "invoice_number",
        "debit",
        "previous_date",
        "recipients",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
        "created_at",
    )
    actions = ["resend"]

    @admin.display(description=gettext_lazy("factuur"), ordering="invoice__number")
    def invoice_number(self, obj):
        return _invoice_link(obj.invoice)

    @admin.display(description=gettext_lazy("aangemaakt op"), ordering="created_at")
    def created(self, obj):
        return _moment(obj.created_at)

    @admin.display(description=gettext_lazy("verzonden op"), ordering="sent_at")
    def sent(self, obj):
        return _moment(obj.sent_at)

    @admin.display(description=gettext_lazy("laatste fout"))
    def error_preview(self, obj):
        if not obj.last_error:
            return "—"
        if len(obj.last_error) > ERROR_PREVIEW_CHARS:
            return f"{obj.last_error[:ERROR_PREVIEW_CHARS]}…"
        return obj.last_error

    def has_resend_permission(self, request):
        return request.user.has_perm("billing.change_collectionnotice")

    @admin.action(description=gettext_lazy("Opnieuw versturen"), permissions=["resend"])
    def resend(self, request, queryset):
        retried = skipped = 0
        for notice in queryset.order_by("pk"):
            if notice_retry(notice=notice, user=request.user):
                retried += 1
            else:
                skipped += 1
        if retried:
            self.message_user(
                request,
                ngettext(
                    "%(n)s bericht wordt opnieuw verstuurd.",
                    "%(n)s berichten worden opnieuw verstuurd.",
                    retried,
                )
                % {"n": retried},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(n)s bericht was niet mislukt en is overgeslagen.",
                    "%(n)s berichten waren niet mislukt en zijn overgeslagen.",
                    skipped,
                )
                % {"n": skipped},
                messages.WARNING,
            )


# --- Admin index ------------------------------------------------------------------------------


def _index_with_collections(index):
    """The admin index shows how many bank transactions wait for a match (one COUNT on an index)."""

    @functools.wraps(index)
    def wrapped(request, extra_context=None):
        context = {"collections_unmatched": unmatched_transactions_count(), **(extra_context or {})}
        return index(request, context)

    wrapped.collections_count = True
    return wrapped


# Wrapped once, before admin.site.urls is built (the admin is autodiscovered first).
if not getattr(admin.site.index, "collections_count", False):
    admin.site.index = _index_with_collections(admin.site.index)
