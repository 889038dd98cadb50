"""Voorwaarden: which terms apply to this customer, what changed, accepting and suggesting (R20)."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from afas_sb import clock
from afas_sb.errors import DomainError
from licensing.models import Agreement, TermsAcceptance, TermsSuggestion, TermsVersion
from licensing.selectors import current_terms_version, live_agreement
from licensing.services import terms as terms_services

from .navigation import AREAS
from .tenancy import Access, scoped
from .views import portal_view

SUGGESTIONS_SHOWN = 25


class SuggestionForm(forms.Form):
    """The text is checked by the service, so the customer reads one Dutch message for it."""

    version = forms.ModelChoiceField(
        queryset=TermsVersion.objects.filter(published_at__isnull=False),
        widget=forms.HiddenInput,
        error_messages={
            "required": gettext_lazy("Kies de versie waar je voorstel over gaat."),
            "invalid_choice": gettext_lazy("Deze versie van de voorwaarden bestaat niet (meer)."),
        },
    )
    text = forms.CharField(
        label=gettext_lazy("Je verbetervoorstel"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "maxlength": terms_services.SUGGESTION_MAX_LENGTH}),
        help_text=gettext_lazy(
            "Wat zou je anders willen zien? We onderzoeken of een aanvullende aanpassing nodig is."
        ),
    )


def terms_notice_context(access: Access | None) -> dict:
    """Context for templates/portal/includes/terms_notice.html (the dashboard notice)."""
    if access is None:
        return {"terms_pending": None, "terms_can_accept": False}
    return {
        "terms_pending": terms_services.terms_pending_for(organisation=access.organisation),
        "terms_can_accept": access.can("accept_terms"),
    }


@portal_view(after_end=True)
def terms(request, access):
    return _terms_page(request, access)


@require_POST
@portal_view("accept_terms")
def terms_accept(request, access, version_id):
    # Versions are shared by all customers (no tenant); drafts are never reachable.
    version = get_object_or_404(TermsVersion, pk=version_id, published_at__isnull=False)
    try:
        terms_services.terms_accept(
            organisation=access.organisation, version=version, user=request.user
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Je hebt versie %(number)s van de voorwaarden geaccepteerd namens %(organisation)s.")
            % {"number": version.number, "organisation": access.organisation.legal_name},
        )
    return redirect("portal:voorwaarden")


@require_POST
@portal_view("suggest_terms")
def terms_suggest(request, access):
    form = SuggestionForm(request.POST)
    if form.is_valid():
        try:
            terms_services.terms_suggest(
                organisation=access.organisation,
                version=form.cleaned_data["version"],
                user=request.user,
                text=form.cleaned_data["text"],
            )
        except DomainError as exc:
            form.add_error("text", exc.message)
        else:
            messages.success(
                request,
                _(
                    "Bedankt voor je verbetervoorstel. We onderzoeken of een aanvullende "
                    "aanpassing nodig is en nemen contact met je op."
                ),
            )
            return redirect("portal:voorwaarden")
    return _terms_page(request, access, suggestion_form=form)


def _terms_page(request, access, suggestion_form=None):
    organisation = access.organisation
    today = clock.today()
    versions = list(terms_services.terms_published_versions())
    newest = versions[0] if versions else None
    agreement = live_agreement(organisation=organisation)
    applicable = None
    keeps_previous_until = None
    if agreement is not None:
        applicable = terms_services.terms_previous_version_applies(agreement=agreement, on=today)
        if applicable is not None and applicable.pk == agreement.previous_terms_version_id:
            keeps_previous_until = agreement.previous_terms_until
    if applicable is None:
        applicable = current_terms_version(on=today)
    accepted = dict(scoped(request, TermsAcceptance).values_list("terms_version_id", "accepted_at"))
    pending = newest if newest and organisation.is_active and newest.pk not in accepted else None
    suggestions = scoped(
        request, TermsSuggestion.objects.select_related("terms_version", "user")
    ).order_by("-created_at", "-pk")[:SUGGESTIONS_SHOWN]
    if suggestion_form is None and newest is not None:
        suggestion_form = SuggestionForm(initial={"version": newest.pk})
    return render(
        request,
        "portal/terms/terms.html",
        {
            "area": AREAS["voorwaarden"],
            "organisation": organisation,
            "newest": newest,
            "newest_is_announced": newest is not None and newest.effective_date > today,
            "newest_accepted_at": accepted.get(newest.pk) if newest else None,
            "applicable": applicable,
            "applicable_accepted_at": accepted.get(applicable.pk) if applicable else None,
            "agreement": agreement,
            "keeps_previous_until": keeps_previous_until,
            "pending": pending,
            "history": [(version, accepted.get(version.pk)) for version in versions],
            "suggestions": suggestions,
            "suggestion_form": suggestion_form,
            "can_accept": access.can("accept_terms"),
            # R20: a customer may terminate over a change it has not accepted.
            "can_object": access.can("accept_terms")
            and agreement is not None
            and agreement.status == Agreement.Status.ACTIVE
            and not keeps_previous_until
            and pending is not None
            and pending == newest,
            "can_suggest": access.can("suggest_terms"),
            "suggestions_shown": SUGGESTIONS_SHOWN,
            "today": today,
        },
    )
