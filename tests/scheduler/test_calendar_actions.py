"""The apps' real calendar actions, run through the kernel for an explicit date."""

from datetime import date, timedelta

import pytest
from django.contrib.sessions.models import Session

from afas_sb import clock
from afas_sb.scheduler import services
from afas_sb.scheduler.models import CalendarRun
from afas_sb.scheduler.services import Result
from portal.models import Invitation, Role
from tests.factories import OrganisationFactory

from .conftest import results_for

pytestmark = pytest.mark.django_db

RUN_DATE = date(2026, 4, 15)
# Thirty days before the run date, at midnight in Amsterdam.
CUTOFF = clock.start_of_day(RUN_DATE - timedelta(days=30))
OPEN_UNTIL = clock.start_of_day(RUN_DATE + timedelta(days=7))


def invitation(email: str, *, organisation=None, expires_at=OPEN_UNTIL, **dates) -> Invitation:
    return Invitation.objects.create(
        organisation=organisation or OrganisationFactory(),
        email=email,
        role=Role.MEMBER,
        token_hash=Invitation.hash_token(email),
        expires_at=expires_at,
        **dates,
    )


def test_portal_purge_stale_invitations_deletes_only_invitations_settled_over_30_days_ago():
    organisation = OrganisationFactory()
    stale = [
        invitation("verlopen@example.nl", expires_at=CUTOFF - timedelta(days=10)),
        invitation("net-verlopen@example.nl", expires_at=CUTOFF - timedelta(seconds=1)),
        invitation("ingetrokken@example.nl", revoked_at=CUTOFF - timedelta(hours=1)),
        invitation(
            "geaccepteerd@example.nl",
            organisation=organisation,
            accepted_at=CUTOFF - timedelta(days=9),
        ),
    ]
    fresh = [
        invitation("open@example.nl", organisation=organisation),
        invitation("verloopt-op-grens@example.nl", expires_at=CUTOFF),
        invitation("kort-verlopen@example.nl", expires_at=CUTOFF + timedelta(days=25)),
        invitation("kort-ingetrokken@example.nl", revoked_at=CUTOFF + timedelta(days=1)),
        invitation("kort-geaccepteerd@example.nl", accepted_at=CUTOFF + timedelta(hours=1)),
    ]

    results = services.calendar_run_range(start=RUN_DATE, end=RUN_DATE)

    assert results_for(results, "portal.purge_stale_invitations") == [(RUN_DATE, Result.SUCCEEDED)]
    assert not Invitation.objects.filter(pk__in=[i.pk for i in stale]).exists()
    assert set(Invitation.objects.values_list("pk", flat=True)) == {i.pk for i in fresh}
    run = CalendarRun.objects.get(action="portal.purge_stale_invitations", date=RUN_DATE)
    assert run.outcome == "4 uitnodiging(en) verwijderd"


def test_r33_portal_purge_stale_invitations_is_safe_to_repeat_for_a_date():
    invitation("verlopen@example.nl", expires_at=CUTOFF - timedelta(days=10))
    services.calendar_run_range(start=RUN_DATE, end=RUN_DATE)
    CalendarRun.objects.filter(action="portal.purge_stale_invitations").update(
        status=CalendarRun.Status.PENDING
    )

    results = services.calendar_run_range(start=RUN_DATE, end=RUN_DATE)

    assert results_for(results, "portal.purge_stale_invitations") == [(RUN_DATE, Result.SUCCEEDED)]
    run = CalendarRun.objects.get(action="portal.purge_stale_invitations", date=RUN_DATE)
    assert run.outcome == "0 uitnodiging(en) verwijderd"


def test_kernel_clear_expired_sessions_removes_expired_sessions_only():
    now = clock.now()
    Session.objects.create(session_key="verlopen", session_data="", expire_date=now - timedelta(1))
    Session.objects.create(session_key="geldig", session_data="", expire_date=now + timedelta(1))

    results = services.calendar_run_range(start=RUN_DATE, end=RUN_DATE)

    assert results_for(results, "kernel.clear_expired_sessions") == [(RUN_DATE, Result.SUCCEEDED)]
    assert list(Session.objects.values_list("session_key", flat=True)) == ["geldig"]
    run = CalendarRun.objects.get(action="kernel.clear_expired_sessions", date=RUN_DATE)
    assert run.outcome == "verlopen sessies verwijderd"
