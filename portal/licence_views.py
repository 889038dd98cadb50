"""Licentie: what the organisation licenses, what it costs per month, and its history (R1, R4, R8)."""

from django.core.paginator import Paginator
from django.shortcuts import render

from afas_sb import calendars, clock
from licensing.models import Agreement, LicenceChange
from licensing.selectors import latest_agreement, licence_price

from .tenancy import scoped
from .views import portal_view

HISTORY_PAGE_SIZE = 25


@portal_view()
def licence(request, access):
    organisation = access.organisation
    agreement = latest_agreement(organisation=organisation)
    context = {"organisation": organisation, "agreement": agreement}
    if agreement is not None:
        today = clock.today()
        this_period = calendars.month_period(today)
        history = Paginator(
            scoped(request, LicenceChange.objects.select_related("component", "actor_user"))
            .filter(agreement=agreement)
            .order_by("-created_at", "-id"),
            HISTORY_PAGE_SIZE,
        ).get_page(request.GET.get("pagina"))
        context.update(
            price=licence_price(agreement=agreement, period_start=this_period.start),
            next_price=licence_price(agreement=agreement, period_start=this_period.next().start),
            period=this_period,
            history=history,
        )
    if organisation.is_accountancy_firm:
        context["paid_for_clients"] = (
            scoped(request, Agreement, field="invoice_to")
            .exclude(organisation=organisation)
            .select_related("organisation")
            .order_by("organisation__legal_name")
        )
    return render(request, "portal/licence/licence.html", context)
