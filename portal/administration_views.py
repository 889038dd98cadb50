"""Administraties: the client administrations an accountancy firm runs (R2, R17; §3.1, §3.6).

The page belongs to accountancy firms. Any organisation that is offered an
administration (a client going on alone, another firm) sees the offers on the
same page; an entrepreneur without offers gets a 404, as for a page that does
not exist for it. Every change goes through licensing.services.administrations.
"""

import re

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from afas_sb.errors import DomainError
from licensing.models import Administration, AdministrationTransfer, Organisation
from licensing.selectors import firm_clients, live_agreement
from licensing.services import administrations as services

from .tenancy import scoped
from .views import portal_view

PENDING = AdministrationTransfer.Status.PENDING


# --- Forms ---------------------------------------------------------------------------------


class AdministrationCreateForm(forms.Form):
    client = forms.ModelChoiceField(
        label=gettext_lazy("Klant"),
        queryset=Organisation.objects.none(),
        empty_label=gettext_lazy("Kies een klant"),
        error_messages={
            "required": gettext_lazy("Kies de klant voor wie de administratie is."),
            "invalid_choice": gettext_lazy("Kies een klant van je kantoor."),
        },
    )
    name = forms.CharField(
        label=gettext_lazy("Naam van de administratie"),
        max_length=200,
        error_messages={"required": gettext_lazy("Geef de administratie een naam.")},
    )
    billed_to = forms.ChoiceField(
        label=gettext_lazy("Factuur naar"),
        choices=[
            ("firm", gettext_lazy("Kantoor: telt mee op de licentie van je kantoor")),
            ("client", gettext_lazy("Klant: telt mee op de eigen licentie van de klant")),
        ],
        initial="firm",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, firm: Organisation, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = firm_clients(firm=firm)


class TransferForm(forms.Form):
    destination = forms.ChoiceField(
        label=gettext_lazy("Wie neemt de administratie over?"),
        choices=[
            ("client", gettext_lazy("De klant zelf: gaat zelfstandig verder")),
            ("firm", gettext_lazy("Een ander accountantskantoor")),
        ],
        initial="client",
        widget=forms.RadioSelect,
    )
    kvk_number = forms.CharField(
        label=gettext_lazy("KvK-nummer van het andere kantoor"),
        required=False,
        max_length=20,
        help_text=gettext_lazy("Alleen nodig als een ander accountantskantoor het overneemt."),
    )

    def __init__(self, *args, administration: Administration, **kwargs):
        super().__init__(*args, **kwargs)
        self.administration = administration

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("destination") == "client":
            cleaned["to_organisation"] = self.administration.client
        elif cleaned.get("destination") == "firm":
            number = re.sub(r"[\s.\-]", "", cleaned.get("kvk_number") or "").upper()
            number = number.removeprefix("BE")
            if not number:
                self.add_error("kvk_number", _("Vul het KvK-nummer van het andere kantoor in."))
                return cleaned
            # Looked up by registration number, so the portal never lists the
            # vendor's other customers.
            firm = (
                Organisation.objects.filter(
                    kind=Organisation.Kind.ACCOUNTANCY_FIRM, kvk_number=number
                )
                .exclude(pk=self.administration.firm_id)
                .first()
            )
            if firm is None:
                self.add_error(
                    "kvk_number",
                    _("We vinden geen ander accountantskantoor met dit KvK-nummer."),
                )
            cleaned["to_organisation"] = firm
        return cleaned


# --- The page -------------------------------------------------------------------------------


@portal_view()
def administrations(request, access):
    return _page(request, access)


def _page(request, access, create_form=None, status=200):
    organisation = access.organisation
    incoming = _incoming_transfers(request)
    if not organisation.is_accountancy_firm and not incoming:
        raise Http404
    context = {
        "organisation": organisation,
        "incoming": incoming,
        "own_agreement": live_agreement(organisation=organisation),
        "can_decide": access.can("manage_organisation"),
        "can_manage": False,
    }
    if organisation.is_accountancy_firm:
        context.update(_firm_context(request, access, create_form))
    return render(request, "portal/administrations/administrations.html", context, status=status)


def _firm_context(request, access, create_form):
    firm = access.organisation
    rows = list(
        scoped(
            request,
            Administration.objects.select_related(
                "client", "agreement__organisation", "agreement__invoice_to"
            ),
        ).order_by("client__legal_name", "client_id", "name", "pk")
    )
    pending = {
        t.administration_id: t
        for t in scoped(
            request,
            AdministrationTransfer.objects.select_related("to_organisation"),
            field="administration__firm",
        ).filter(status=PENDING)
    }
    ended_clients = services.terminated_client_ids(clients={a.client for a in rows if a.client})
    for row in rows:
        row.pending_transfer = pending.get(row.pk)
        row.client_ended = row.client_id in ended_clients
        row.paid_by_firm = row.agreement.organisation_id == firm.pk
    can_manage = access.can("manage_administrations")
    return {
        "active": [a for a in rows if a.status == Administration.Status.ACTIVE],
        "ended": [a for a in rows if a.status != Administration.Status.ACTIVE],
        "can_manage": can_manage,
        "create_form": create_form or (AdministrationCreateForm(firm=firm) if can_manage else None),
    }


def _incoming_transfers(request):
    return list(
        scoped(
            request,
            AdministrationTransfer.objects.select_related(
                "administration__firm", "administration__client", "requested_by"
            ),
            field="to_organisation",
        )
        .filter(status=PENDING)
        .order_by("requested_at", "pk")
    )


@require_POST
@portal_view("manage_administrations")
def administration_create(request, access):
    firm = _firm_or_404(access)
    form = AdministrationCreateForm(request.POST, firm=firm)
    if form.is_valid():
        try:
            administration = services.administration_create(
                firm=firm,
                client=form.cleaned_data["client"],
                name=form.cleaned_data["name"],
                billed_to_firm=form.cleaned_data["billed_to"] == "firm",
                user=request.user,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _("Administratie '%(name)s' aangemaakt voor %(client)s.")
                % {"name": administration.name, "client": administration.client.legal_name},
            )
            return redirect("portal:administrations")
    return _page(request, access, create_form=form, status=400)


# --- Per administration: confirm, then act ----------------------------------------------------


def _confirm_texts(action: str, administration: Administration, firm_agreement) -> dict:
    agreement = administration.agreement
    kind = administration.get_kind_display().lower()
    name = administration.name
    if action == "archive":
        return {
            "title": _("'%(name)s' omzetten naar een archieflicentie") % {"name": name},
            "effects": [
                _("De administratie blijft bewaard, maar je werkt er niet meer in."),
                _(
                    "Op overeenkomst %(number)s telt vanaf de volgende factuur 1 administratie "
                    "minder en 1 archieflicentie meer."
                )
                % {"number": agreement.number},
            ],
            "button": _("Omzetten naar archieflicentie"),
            "danger": False,
        }
    if action == "delete":
        return {
            "title": _("'%(name)s' verwijderen") % {"name": name},
            "effects": [
                _("Een verwijderde administratie komt niet terug."),
                _("Op overeenkomst %(number)s telt vanaf de volgende factuur 1 %(kind)s minder.")
                % {"number": agreement.number, "kind": kind},
            ],
            "button": _("Definitief verwijderen"),
            "danger": True,
        }
    if action == "view_only":
        return {
            "title": _("Inkijklicentie voor '%(name)s'") % {"name": name},
            "effects": [
                _(
                    "Je klant kan er daarna nog met 1 gebruiker in, alleen met kijkrechten. "
                    "Je kantoor betaalt de inkijklicentie."
                ),
                _("Op overeenkomst %(number)s telt 1 %(kind)s minder.")
                % {"number": agreement.number, "kind": kind},
                _("Op overeenkomst %(number)s van je kantoor telt 1 inkijklicentie meer.")
                % {"number": firm_agreement.number if firm_agreement else "–"},
            ],
            "button": _("Inkijklicentie afnemen"),
            "danger": False,
        }
    return {
        "title": _("'%(name)s' exporteren en daarna verwijderen") % {"name": name},
        "effects": [
            _(
                "We leggen vast dat de administratie is geëxporteerd en verwijderen hem "
                "daarna. Een verwijderde administratie komt niet terug."
            ),
            _(
                "Het exportbestand zelf (Excel en CSV, bijlagen als één ZIP) kun je nog niet "
                "in de portal downloaden; maak de export eerst in AFAS SB."
            ),
            _("Op overeenkomst %(number)s telt vanaf de volgende factuur 1 %(kind)s minder.")
            % {"number": agreement.number, "kind": kind},
        ],
        "button": _("Exporteren en verwijderen"),
        "danger": True,
    }


ACTIONS = {
    "archive": (
        services.administration_convert_to_archive,
        gettext_lazy("'%(name)s' is nu een archieflicentie."),
    ),
    "delete": (services.administration_delete, gettext_lazy("'%(name)s' is verwijderd.")),
    "view_only": (
        services.administration_take_view_only,
        gettext_lazy("'%(name)s' is nu een inkijklicentie op de licentie van je kantoor."),
    ),
    "export_delete": (
        services.administration_export_and_delete,
        gettext_lazy("De export van '%(name)s' is vastgelegd en de administratie is verwijderd."),
    ),
}


def _administration_action(request, access, pk, action):
    firm = _firm_or_404(access)
    administration = get_object_or_404(
        scoped(request, Administration.objects.select_related("client", "agreement")), pk=pk
    )
    service, success = ACTIONS[action]
    if request.method == "POST":
        return _run(
            request,
            access,
            lambda: service(administration=administration, user=request.user),
            success % {"name": administration.name},
        )
    texts = _confirm_texts(action, administration, live_agreement(organisation=firm))
    return render(
        request,
        "portal/administrations/confirm.html",
        {"administration": administration, **texts},
    )


@portal_view("manage_administrations")
def administration_archive(request, access, pk):
    return _administration_action(request, access, pk, "archive")


@portal_view("manage_administrations")
def administration_delete(request, access, pk):
    return _administration_action(request, access, pk, "delete")


@portal_view("manage_administrations")
def administration_view_only(request, access, pk):
    return _administration_action(request, access, pk, "view_only")


@portal_view("manage_administrations")
def administration_export_delete(request, access, pk):
    return _administration_action(request, access, pk, "export_delete")


@portal_view("manage_administrations")
def administration_transfer(request, access, pk):
    _firm_or_404(access)
    administration = get_object_or_404(
        scoped(request, Administration.objects.select_related("client", "agreement")), pk=pk
    )
    form = TransferForm(request.POST or None, administration=administration)
    if request.method == "POST" and form.is_valid():
        receiver = form.cleaned_data["to_organisation"]
        try:
            services.administration_transfer_request(
                administration=administration, to_organisation=receiver, user=request.user
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _(
                    "De overdracht van '%(name)s' is aangevraagd. %(receiver)s moet hem nog "
                    "accepteren."
                )
                % {"name": administration.name, "receiver": receiver.legal_name},
            )
            return redirect("portal:administrations")
    return render(
        request,
        "portal/administrations/transfer.html",
        {"administration": administration, "form": form},
        status=400 if form.is_bound else 200,
    )


# --- Transfers ------------------------------------------------------------------------------


# Accepting or declining changes what the receiving organisation pays: its
# beheerder decides (the same role that manages the organisation itself).
@require_POST
@portal_view("manage_organisation")
def transfer_accept(request, access, pk):
    transfer = _incoming_or_404(request, pk)
    return _run(
        request,
        access,
        lambda: services.administration_transfer_accept(transfer=transfer, user=request.user),
        _("Je hebt '%(name)s' overgenomen. Hij telt vanaf de volgende factuur mee op je licentie.")
        % {"name": transfer.administration.name},
    )


@require_POST
@portal_view("manage_organisation")
def transfer_decline(request, access, pk):
    transfer = _incoming_or_404(request, pk)
    return _run(
        request,
        access,
        lambda: services.administration_transfer_decline(transfer=transfer, user=request.user),
        _("Je hebt de overdracht van '%(name)s' afgewezen.")
        % {"name": transfer.administration.name},
    )


@require_POST
@portal_view("manage_administrations")
def transfer_cancel(request, access, pk):
    transfer = get_object_or_404(
        scoped(
            request,
            AdministrationTransfer.objects.select_related("administration"),
            field="administration__firm",
        ),
        pk=pk,
    )
    return _run(
        request,
        access,
        lambda: services.administration_transfer_cancel(transfer=transfer, user=request.user),
        _("De overdracht van '%(name)s' is geannuleerd.") % {"name": transfer.administration.name},
    )


# --- Helpers --------------------------------------------------------------------------------


def _firm_or_404(access) -> Organisation:
    if not access.organisation.is_accountancy_firm:
        raise Http404
    return access.organisation


def _incoming_or_404(request, pk) -> AdministrationTransfer:
    return get_object_or_404(
        scoped(
            request,
            AdministrationTransfer.objects.select_related("administration"),
            field="to_organisation",
        ),
        pk=pk,
    )


def _run(request, access, action, success_message):
    try:
        action()
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success_message)
    # A client that just answered its last offer has nothing left on the page.
    if access.organisation.is_accountancy_firm or _incoming_transfers(request):
        return redirect("portal:administrations")
    return redirect("portal:dashboard")
