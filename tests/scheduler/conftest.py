"""Fixtures for the calendar kernel: throwaway actions, controlled time, a staff client."""

import threading
from collections.abc import Callable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from afas_sb.scheduler import registry
from afas_sb.scheduler.services import ActionResult
from tests.factories import UserFactory

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

# Every wait on another thread or process is bounded: a broken lock fails the
# test instead of hanging the suite.
WAIT_SECONDS = 10


def amsterdam(day: date, hour: int = 12, minute: int = 0) -> datetime:
    """A moment on ``day`` in Amsterdam, for time_machine.move_to(..., tick=False)."""
    return datetime.combine(day, time(hour, minute), tzinfo=AMSTERDAM)


def results_for(results: list[ActionResult], name: str) -> list[tuple[date, str]]:
    """The (day, result) pairs of one action, leaving out the apps' real actions."""
    return [(item.day, item.result) for item in results if item.action == name]


class RecordingAction:
    """A calendar action that remembers every call; ``behaviour`` may raise or block."""

    def __init__(self, name: str, behaviour: Callable[[date], str | None] | None = None):
        self.name = name
        self.behaviour = behaviour
        self.calls: list[date] = []
        self._lock = threading.Lock()

    def __call__(self, day: date) -> str | None:
        with self._lock:
            self.calls.append(day)
        if self.behaviour is not None:
            return self.behaviour(day)
        return f"gedaan voor {day.isoformat()}"


@pytest.fixture
def register_action():
    """Register throwaway actions through the real registry; unregister them afterwards."""
    names: list[str] = []

    def register(
        name: str,
        behaviour: Callable[[date], str | None] | None = None,
        *,
        is_due: Callable[[date], bool] = registry.EVERY_DAY,
        order: int = 100,
    ) -> RecordingAction:
        action = RecordingAction(name, behaviour)
        registry.register(name, is_due=is_due, order=order)(action)
        names.append(name)
        return action

    yield register
    for name in names:
        registry.unregister(name)


@pytest.fixture
def staff_user(db):
    """A superuser with a TOTP authenticator, as the back office requires."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.utils import encrypt

    user = UserFactory(email="medewerker@example.nl", is_staff=True, is_superuser=True)
    Authenticator.objects.create(
        user=user, type=Authenticator.Type.TOTP, data={"secret": encrypt("JBSWY3DPEHPK3PXP")}
    )
    return user


def record_mfa_login(client, user) -> None:
    """Log ``user`` in and store the records allauth writes after password + TOTP."""
    from allauth.account.internal.flows.login import (
        _AUTHENTICATION_METHODS_USER_SESSION_KEY,
        AUTHENTICATION_METHODS_SESSION_KEY,
    )

    client.force_login(user)
    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "password", "at": 0, "email": user.email},
        {"method": "mfa", "at": 0, "type": "totp"},
    ]
    # allauth only returns the records for the user they were written for.
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)
    session.save()


@pytest.fixture
def staff_client(client, staff_user):
    """A test client logged in as staff whose session passed the second factor."""
    record_mfa_login(client, staff_user)
    return client
