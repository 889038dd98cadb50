"""Betaalgegevens: the organisation's SEPA direct debit mandate (R12, terms §3.3).

Everyone with access reads the active mandate (IBAN masked except the last
four characters); people with "manage_billing" (beheerder, financieel) sign an
e-mandate or change the IBAN, which makes a new mandate. Scoped on
``Mandate.TENANT_FIELD``: another organisation's mandate is never shown.

Also listed: the debits still to come (date, amount, invoice), and, when the
bank made the mandate unusable (closed account, no mandate, …), why, with the
request to sign a new one.
"""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from afas_sb import clock
from afas_sb.errors import DomainError
from billing.collection_selectors import invalidated_mandate, upcoming_debits
from billing.models import Mandate
from billing.services.mandates import (
    creditor_name,
    direct_customer_needs_mandate,
    mandate_sequence_type,
    mandate_sign,
    mandate_text_for,
    next_mandate_reference,
    sepa_creditor_id,
)

from .tenancy import scoped
from .views import portal_view

UPCOMING_DEBITS = 12


class MandateForm(forms.Form):
    account_holder = forms.CharField(
        label=gettext_lazy("Naam rekeninghouder"),
        max_length=70,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    iban = forms.CharField(
        label=gettext_lazy("IBAN"),
        max_length=42,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    bic = forms.CharField(
        label=gettext_lazy("BIC (optioneel)"),
        max_length=15,
        required=False,
        help_text=gettext_lazy(
            "We leiden de BIC af uit je IBAN; vul hem alleen in als dat niet lukt."
        ),
    )
    accepted = forms.BooleanField(
        label=gettext_lazy("Ik ga akkoord met de doorlopende machtiging SEPA hierboven."),
        required=False,
    )


@portal_view()
def payment_details(request, access):
    organisation = access.organisation
    can_manage = access.can("manage_billing")
    form = MandateForm(request.POST or None)
    if request.method == "POST":
        if not can_manage:
            return render(request, "portal/forbidden.html", {"access": access}, status=403)
        if form.is_valid():
            try:
                previous = scoped(request, Mandate).filter(status=Mandate.Status.ACTIVE).first()
                mandate = mandate_sign(
                    organisation=organisation,
                    account_holder=form.cleaned_data["account_holder"],
                    iban=form.cleaned_data["iban"],
                    bic=form.cleaned_data["bic"],
                    accepted=form.cleaned_data["accepted"],
                    user=request.user,
                    ip=request.META.get("REMOTE_ADDR"),
                )
            except DomainError as exc:
                field = {
                    "mandate_not_accepted": "accepted",
                    "iban_invalid": "iban",
                    "iban_not_sepa": "iban",
                    "bic_invalid": "bic",
                    "holder_missing": "account_holder",
                    "holder_too_long": "account_holder",
                }.get(exc.code)
                form.add_error(field, exc.message)
            else:
                if previous is not None and previous.pk == mandate.pk:
                    messages.success(
                        request, _("Dit IBAN staat al in je machtiging; er is niets gewijzigd.")
                    )
                else:
                    messages.success(
                        request,
                        _(
                            "Je machtiging %(reference)s is vastgelegd. "
                            "Vanaf nu incasseren we van deze rekening."
                        )
                        % {"reference": mandate.reference},
                    )
                return redirect("portal:betaalgegevens")

    mandate = (
        scoped(request, Mandate.objects.select_related("signed_by"))
        .filter(status=Mandate.Status.ACTIVE)
        .first()
    )
    bank_refused = None if mandate else invalidated_mandate(scoped(request, Mandate))
    upcoming = list(scoped(request, upcoming_debits(today=clock.today()))[:UPCOMING_DEBITS])
    needs_mandate = direct_customer_needs_mandate(organisation)
    next_reference = next_mandate_reference(organisation=organisation)
    return render(
        request,
        "portal/payments/payment_details.html",
        {
            "organisation": organisation,
            "mandate": mandate,
            "sequence_type": mandate_sequence_type(mandate) if mandate else None,
            "creditor_name": creditor_name(),
            "creditor_id": sepa_creditor_id(),
            "needs_mandate": needs_mandate,
            "billed_via": organisation.billed_via,
            "can_manage": can_manage,
            "form": form if can_manage else None,
            "next_reference": next_reference,
            "mandate_text": mandate_text_for(organisation=organisation, reference=next_reference),
            # The form starts open when there is no mandate yet or the last attempt had errors.
            "form_open": mandate is None or form.is_bound,
            "bank_refused": bank_refused,
            "upcoming_debits": upcoming,
        },
    )
