"""The billing app's calendar actions (R7, R33)."""

from datetime import date

from afas_sb.audit.models import ActorKind
from afas_sb.scheduler.registry import register

from .services.issue import first_invoices_issue
from .services.non_payment import is_termination_day, non_payment_terminations
from .services.runs import billing_run_start


@register(
    "billing.monthly_invoicing",
    is_due=lambda day: day.day == 1,
    # After licensing.apply_terminations (order 20): licences whose last day was
    # the end of last month have ended before this month is invoiced.
    order=50,
    description="Abonnementsfacturen van de maand, vooraf op de 1e (R7)",
)
def monthly_invoicing(day: date) -> str:
    """Start the month's billing run; workers invoice its chunks once this day commits.

    Safe to repeat: a second start only adds chunks for agreements still
    without an invoice and sends unfinished chunks again.
    """
    run = billing_run_start(period_start=day, actor_kind=ActorKind.CALENDAR)
    return (
        f"facturatierun {run}: {run.agreements_total} overeenkomst(en) "
        f"in {run.chunks_total} deel/delen"
    )


@register(
    "billing.first_invoices",
    # After the monthly run on a 1st; agreements starting on a 1st belong to that run.
    order=60,
    description="Eerste facturen naar rato voor licenties die vandaag ingaan (R7)",
)
def first_invoices(day: date) -> str:
    issued = first_invoices_issue(day=day)
    return f"{issued} eerste factuur/facturen naar rato"


@register(
    "billing.non_payment_termination",
    is_due=is_termination_day,
    # After licensing.apply_terminations (20); a missed 28th is caught up in order.
    order=30,
    description="Op de 28e: licentie beëindigen bij twee openstaande abonnementsfacturen (R13)",
)
def non_payment_termination(day: date) -> str:
    terminated = non_payment_terminations(day=day)
    return f"{terminated} licentie(s) beëindigd wegens twee openstaande facturen"
