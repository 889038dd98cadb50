"""Calendar actions owned by the kernel itself."""

from datetime import date
from importlib import import_module

from django.conf import settings

from .registry import register


@register("kernel.clear_expired_sessions", order=900, description="Verlopen sessies opruimen")
def clear_expired_sessions(day: date) -> str:
    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()
    return "verlopen sessies verwijderd"
