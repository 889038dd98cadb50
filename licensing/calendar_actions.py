"""The licensing app's calendar actions."""

from datetime import date

from afas_sb.scheduler.registry import register

from .services.terminations import terminations_apply_due


@register(
    "licensing.apply_terminations",
    # Early in the day: on the 1st the monthly invoicing must already see the
    # licences that ended on the last day of the month before.
    order=20,
    description="Opzeggingen laten ingaan na de laatste dag (R14, R16)",
)
def apply_terminations(day: date) -> str:
    """Every scheduled termination whose last day lies before ``day`` takes effect."""
    applied = terminations_apply_due(today=day)
    return f"{applied} opzegging(en) ingegaan"
