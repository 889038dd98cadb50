"""The calendar's registry of actions.

Apps register what must happen on which dates from their ``AppConfig.ready()``
(invoicing on the 1st, the 28th rule, retention, ...). The kernel never imports
the apps; it only asks each registered action whether it is due on a date and,
if so, runs it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

EVERY_DAY: Callable[[date], bool] = lambda day: True  # noqa: E731


@dataclass(frozen=True)
class CalendarAction:
    """One job of the calendar.

    ``run(day)`` does the work for ``day`` inside the transaction that marks it
    done, and returns a one-line outcome for the admin ("12 invoices"). It must
    be idempotent: a failed run is retried on a later tick.
    """

    name: str
    run: Callable[[date], str | None]
    is_due: Callable[[date], bool] = EVERY_DAY
    order: int = 100
    description: str = ""


_actions: dict[str, CalendarAction] = {}


def register(
    name: str,
    *,
    is_due: Callable[[date], bool] = EVERY_DAY,
    order: int = 100,
    description: str = "",
):
    """Decorator: ``@register("billing.monthly_invoicing", is_due=lambda d: d.day == 1)``."""

    def decorator(func: Callable[[date], str | None]):
        existing = _actions.get(name)
        if existing is not None and existing.run is not func:
            raise ValueError(f"calendar action {name!r} is registered twice")
        _actions[name] = CalendarAction(
            name=name, run=func, is_due=is_due, order=order, description=description
        )
        return func

    return decorator


def actions() -> list[CalendarAction]:
    """Registered actions in the order they run on a day (order, then name)."""
    return sorted(_actions.values(), key=lambda action: (action.order, action.name))


def unregister(name: str) -> None:
    """For tests that register throwaway actions."""
    _actions.pop(name, None)
