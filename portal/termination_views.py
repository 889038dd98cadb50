"""Opzeggen: the customer ends its licence self-service (R14), and the page after the end (R16)."""

from datetime import date, timedelta

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from afas_sb import clock
from afas_sb.calendars import add_months
from afas_sb.errors import DomainError
from licensing.models import LicenceLine, Termination
from licensing.selectors import latest_agreement, live_agreement
from licensing.services.terminations import (
    agreement_terminate_by_customer,
    data_kept_until,
    termination_dates,
    termination_withdraw,
)
from licensing.services.terms import terms_newest_published

from .views import portal_view


class TerminationForm(forms.Form):
    confirm = forms.BooleanField(
        label=gettext_lazy("Ik begrijp wat opzeggen betekent en zeg de licentie op."),
        error_messages={"required": gettext_lazy("Vink aan dat je de licentie wilt opzeggen.")},
    )
    note = forms.CharField(
        label=gettext_lazy("Waarom zeg je op? (niet verplicht)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Je antwoord helpt ons de software te verbeteren."),
    )
    # The last day the customer saw; if it moved (midnight passed, the cutoff
    # passed) before the form was sent, the customer confirms the new day first.
    end_date = forms.DateField(widget=forms.HiddenInput)
    # Set when the customer terminates over a new version of the terms (R20).
    voorwaarden = forms.IntegerField(widget=forms.HiddenInput, required=False)


def _terms_change(request, agreement):
    """The new terms version the customer terminates over, if the request names it.

    Only the newest published version qualifies, and only once: an agreement
    that already keeps its previous terms cannot start a second such period.
    """
    raw = request.POST.get("voorwaarden") or request.GET.get("voorwaarden")
    newest = terms_newest_published()
    if not raw or newest is None or str(newest.pk) != raw:
        return None
    if agreement.previous_terms_version_id or agreement.terms_version_id is None:
        return None
    return newest


@portal_view()
def termination(request, access):
    agreement = live_agreement(organisation=access.organisation)
    can_terminate = access.can("manage_organisation")
    if request.method == "POST" and not can_terminate:
        return render(request, "portal/forbidden.html", {"access": access}, status=403)
    if agreement is None:
        return render(request, "portal/termination/no_agreement.html", {"access": access})

    live = (
        Termination.objects.filter(
            agreement=agreement,
            status__in=[Termination.Status.SCHEDULED, Termination.Status.EFFECTIVE],
        )
        .select_related("requested_by")
        .first()
    )
    if live is not None:
        if request.method == "POST":
            return redirect("portal:termination")
        return _scheduled_page(request, access, agreement, live, can_terminate)

    today = clock.today()
    dates = termination_dates(agreement=agreement, requested_on=today)
    over_terms = _terms_change(request, agreement)
    initial = {"end_date": dates.end_date, "voorwaarden": over_terms.pk if over_terms else None}
    form = TerminationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["end_date"] != dates.end_date:
            messages.warning(
                request,
                _(
                    "De einddatum is veranderd sinds je deze pagina opende: je licentie loopt "
                    "nu tot en met %(date)s. Bevestig opnieuw als je wilt opzeggen."
                )
                % {"date": _long(dates.end_date)},
            )
            form = TerminationForm(initial=initial)
        else:
            try:
                created = agreement_terminate_by_customer(
                    agreement=agreement,
                    user=request.user,
                    note=form.cleaned_data["note"],
                    over_terms_version=over_terms,
                )
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    _(
                        "Je licentie is opgezegd; de laatste dag is %(date)s. "
                        "We hebben je een bevestiging gemaild."
                    )
                    % {"date": _long(created.effective_date)},
                )
                return redirect("portal:termination")
    return render(
        request,
        "portal/termination/form.html",
        {
            "organisation": access.organisation,
            "agreement": agreement,
            "lines": _lines(agreement),
            "dates": dates,
            "data_kept_until": data_kept_until(dates.end_date + timedelta(days=1)),
            "form": form,
            "can_terminate": can_terminate,
            "over_terms": over_terms,
            "previous_terms_until": add_months(today, 2) if over_terms else None,
        },
    )


@require_POST
@portal_view("manage_organisation")
def termination_withdraw_view(request, access):
    agreement = live_agreement(organisation=access.organisation)
    scheduled = (
        Termination.objects.filter(agreement=agreement, status=Termination.Status.SCHEDULED).first()
        if agreement is not None
        else None
    )
    if scheduled is None:
        messages.info(request, _("Er staat geen opzegging open."))
        return redirect("portal:termination")
    try:
        termination_withdraw(termination=scheduled, user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Je opzegging is ingetrokken. Je licentie loopt gewoon door."))
    return redirect("portal:termination")


def terminated_page(request, access):
    """What a customer sees after the licence ended (R16): when, how long data stays, what is left."""
    organisation = access.organisation
    agreement = latest_agreement(organisation=organisation)
    ended_on = agreement.end_date if agreement is not None else None
    if ended_on is None and organisation.retention_starts_on is not None:
        ended_on = organisation.retention_starts_on - timedelta(days=1)
    kept_until = (
        data_kept_until(organisation.retention_starts_on)
        if organisation.retention_starts_on is not None
        else None
    )
    return render(
        request,
        "portal/terminated.html",
        {
            "organisation": organisation,
            "agreement": agreement,
            "ended_on": ended_on,
            "kept_until": kept_until,
        },
    )


def _scheduled_page(request, access, agreement, live, can_terminate):
    today = clock.today()
    return render(
        request,
        "portal/termination/scheduled.html",
        {
            "organisation": access.organisation,
            "agreement": agreement,
            "lines": _lines(agreement),
            "termination": live,
            "days_left": (live.effective_date - today).days,
            "can_withdraw": can_terminate
            and live.status == Termination.Status.SCHEDULED
            and today <= live.effective_date,
            "data_kept_until": data_kept_until(live.effective_date + timedelta(days=1)),
        },
    )


def _lines(agreement):
    return (
        LicenceLine.objects.filter(agreement=agreement, quantity__gt=0)
        .select_related("component")
        .order_by("component__position", "component__name")
    )


def _long(day: date) -> str:
    return date_format(day, "j F Y")
