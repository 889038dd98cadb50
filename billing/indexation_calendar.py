"""The calendar action that sends the indexation mailing (R6, R33).

§3.2: "Daarnaast wordt er in september ook een mailing verstuurd over de
indexering." Due every day from 1 September to 31 December: on 1 September
when the round for next year is approved by then, else on the first day after
its approval (a late approval still gets its mailing; see
billing.services.indexation.indexation_mailing_window). The service sends once
per round, however often or concurrently the calendar runs.

Nothing is scheduled for the portal page: it reads the round's state and the
date (indexation_announced_on). Nothing is scheduled for 1 January either: the
approved list is valid from that day and prices that month's invoices (R5).

Imported from BillingConfig.ready(), which registers it.
"""

from datetime import date

from afas_sb.scheduler.registry import register

from .services.indexation import indexation_mailing_send

MAILING_FIRST_MONTH = 9


@register(
    "billing.indexation_mailing",
    is_due=lambda day: day.month >= MAILING_FIRST_MONTH,
    # After the month's invoicing (50, 60): a mailing never holds up invoices.
    order=80,
    description="Mailing over de indexatie van volgend jaar, in september (R6)",
)
def indexation_mailing(day: date) -> str:
    year = day.year + 1
    organisations = indexation_mailing_send(year=year, on=day)
    if not organisations:
        return f"geen indexatiemailing {year} te versturen"
    return f"indexatiemailing {year} naar {organisations} organisatie(s)"
