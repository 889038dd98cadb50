"""Facturen: the organisation's invoices and credit notes, with status and due date (R9, R16).

Each invoice also says where its payment stands (R12): when it will be
debited, that it was collected, returned (why, and what happens next), paid,
partly paid or paid too much. Balances come from the ledger and the debits
from one prefetch, so a page costs the same number of queries however many
invoices, debits and payments it shows.

Scoped on ``Invoice.TENANT_FIELD`` (the organisation the invoice is addressed
to): a firm that pays for its clients' licences sees those invoices here,
and a client billed via its firm sees none of them. Still open after the
licence ended (R16): customers keep access to their invoices.
"""

from django import forms
from django.core.paginator import Paginator
from django.http import FileResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from afas_sb import clock
from afas_sb.calendars import Period
from billing.collection_selectors import (
    invoices_with_payment_state,
    open_amount_with_payments,
    payment_state,
)
from billing.documents.base import document_store
from billing.models import Invoice
from billing.services.issue import period_text
from billing.services.payment_terms import invoice_renderers

from .tenancy import get_scoped_or_404, scoped
from .views import portal_view

PAGE_SIZE = 20

STATUS_FILTERS = {
    "open": {"kind": Invoice.Kind.INVOICE, "status": Invoice.Status.OPEN},
    "paid": {"kind": Invoice.Kind.INVOICE, "status": Invoice.Status.PAID},
    "credited": {"kind": Invoice.Kind.INVOICE, "status": Invoice.Status.CREDITED},
    "credit_note": {"kind": Invoice.Kind.CREDIT_NOTE},
}


class InvoiceFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("Alle facturen")),
            ("open", _("Openstaand")),
            ("paid", _("Betaald")),
            ("credited", _("Gecrediteerd")),
            ("credit_note", _("Creditnota's")),
        ],
    )
    jaar = forms.TypedChoiceField(label=_("Jaar"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args, years: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["jaar"].choices = [("", _("Alle jaren"))] + [(y, str(y)) for y in years]


@portal_view(after_end=True)
def invoices(request, access):
    organisation = access.organisation
    all_invoices = scoped(request, Invoice)
    years = [day.year for day in all_invoices.dates("issue_date", "year", order="DESC")]
    form = InvoiceFilterForm(request.GET or None, years=years)
    listed = invoices_with_payment_state(
        all_invoices.select_related("agreement__organisation", "credited_invoice")
    ).order_by("-issue_date", "-number")
    filtered = False
    if form.is_bound and form.is_valid():
        if form.cleaned_data["status"]:
            listed = listed.filter(**STATUS_FILTERS[form.cleaned_data["status"]])
            filtered = True
        if form.cleaned_data["jaar"]:
            listed = listed.filter(issue_date__year=form.cleaned_data["jaar"])
            filtered = True
    page = Paginator(listed, PAGE_SIZE).get_page(request.GET.get("pagina"))
    today = clock.today()
    for invoice in page:
        invoice.period_label = (
            period_text(Period(invoice.period_start, invoice.period_end))
            if invoice.period_start and invoice.period_end
            else ""
        )
        invoice.is_overdue = (
            invoice.kind == Invoice.Kind.INVOICE
            and invoice.status == Invoice.Status.OPEN
            and invoice.due_date < today
        )
        invoice.payment = payment_state(invoice)
        invoice.for_client = (
            invoice.agreement.organisation
            if invoice.agreement_id and invoice.agreement.organisation_id != organisation.pk
            else None
        )
    query = request.GET.copy()
    query.pop("pagina", None)
    return render(
        request,
        "portal/invoices/invoices.html",
        {
            "organisation": organisation,
            "form": form,
            "page": page,
            "has_any": bool(years),
            "filtered": filtered,
            "filter_query": query.urlencode(),
            "open_amount": open_amount_with_payments(organisation),
        },
    )


@portal_view(after_end=True)
def invoice_document(request, access, pk, format):
    """The invoice as PDF or UBL, rendered once and then served as stored (R9, R10).

    The PDF is stored first because the UBL embeds it.
    """
    invoice = get_scoped_or_404(request, Invoice, pk=pk)
    pdf_renderer, ubl_renderer = invoice_renderers()
    pdf = document_store(invoice=invoice, renderer=pdf_renderer)
    document = pdf if format == "pdf" else document_store(invoice=invoice, renderer=ubl_renderer)
    return FileResponse(
        document.file.open("rb"),
        as_attachment=True,
        filename=document.filename,
        content_type=document.content_type,
    )
