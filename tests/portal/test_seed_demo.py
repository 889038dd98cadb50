import io

import pytest
from django.apps import apps
from django.core.management import call_command

pytestmark = pytest.mark.django_db(transaction=True)

COUNTED = [
    "users.User",
    "licensing.Organisation",
    "licensing.Agreement",
    "licensing.LicenceLine",
    "licensing.LicenceChange",
    "licensing.Termination",
    "licensing.Administration",
    "licensing.TermsVersion",
    "licensing.PriceList",
    "portal.Membership",
    "billing.Invoice",
    "billing.NumberSeries",
]


def _counts():
    return {label: apps.get_model(label).objects.count() for label in COUNTED}


def test_seed_demo_twice_changes_nothing_the_second_time():
    call_command("seed_demo", stdout=io.StringIO())
    first = _counts()

    out = io.StringIO()
    call_command("seed_demo", stdout=out)

    assert _counts() == first
    assert first["licensing.Organisation"] == 15
    assert first["licensing.Termination"] == 2
    assert "Demo-wachtwoord-2026" in out.getvalue()


def test_seed_demo_refuses_to_run_where_demo_data_is_not_allowed(settings):
    from django.core.management.base import CommandError

    settings.DEMO_DATA_ALLOWED = False

    with pytest.raises(CommandError, match="niet in productie"):
        call_command("seed_demo", stdout=io.StringIO())
    assert _counts()["users.User"] == 0
