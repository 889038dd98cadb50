"""Indexatie: next year's prices for the organisation's licence (R5, R6; terms §3.2).

From the Monday of the last week of September (indexation_announced_on) the
page shows the approved round for next year: old and new price per component
of this organisation's licence, the monthly total before and after, the CPI
figure with its source, and from when the new prices apply. Before that Monday
it says when the indexation will be announced. Only the active organisation's
licence is read (live_agreement of access.organisation), so another tenant's
prices never show.
"""

from django.shortcuts import render

from afas_sb import clock
from billing.services.indexation import (
    indexation_announced_on,
    indexation_comparison,
    indexation_cpi_month,
    indexation_effective_from,
    indexation_round_for,
)
from licensing.selectors import live_agreement

from .views import portal_view


@portal_view()
def indexation(request, access):
    today = clock.today()
    year = today.year + 1
    announced_on = indexation_announced_on(year)
    context = {
        "organisation": access.organisation,
        "year": year,
        "announced_on": announced_on,
        "effective_from": indexation_effective_from(year),
        "cpi_month": indexation_cpi_month(year),
        "announced": today >= announced_on,
        # The indexation in force since 1 January, shown until next year's is announced.
        "current_round": indexation_round_for(today.year),
    }
    if context["announced"]:
        indexation_round = indexation_round_for(year)
        agreement = live_agreement(organisation=access.organisation)
        context.update(round=indexation_round, agreement=agreement)
        if indexation_round is not None and agreement is not None:
            context["comparison"] = indexation_comparison(
                round=indexation_round, agreement=agreement
            )
    return render(request, "portal/indexation/indexation.html", context)
