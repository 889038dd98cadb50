"""The licensing app's calendar actions."""

from datetime import date

from afas_sb.scheduler.registry import register

from .services.terminations import agreements_end_at_agreed_date, terminations_apply_due


@register(
    "licensing.apply_terminations",
    # Early in the day: on the 1st the monthly invoicing must already see the
    # licences that ended on the last day of the month before.
    order=20,
    description="Opzeggingen laten ingaan na de laatste dag (R14, R16)",
)
def apply_terminations(day: date) -> str:
    """Every termination whose last day lies before ``day`` takes effect, and every
    agreement whose agreed end date passed ends (R1)."""
    applied = terminations_apply_due(today=day)
    ended = agreements_end_at_agreed_date(today=day)
    return f"{applied} opzegging(en) ingegaan, {ended} overeenkomst(en) op einddatum beëindigd"
