import os

import pytest
from django.db import connection

# Playwright's sync API runs an event loop in the test thread; Django's ORM
# calls from the same thread are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` need real row locking; SQLite cannot prove them."""
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL row locks (SELECT ... FOR UPDATE SKIP LOCKED); "
        "set DATABASE_URL to run it — CI does"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters live in the cache; one test's failed logins must not leak."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def org_admin(db):
    """An entrepreneur organisation with its beheerder (also the subscription contact)."""
    from tests.factories import MembershipFactory

    return MembershipFactory(is_subscription_contact=True)


@pytest.fixture
def org_admin_client(client, org_admin):
    client.force_login(org_admin.user)
    return client


@pytest.fixture
def mailbox():
    from django.core import mail

    mail.outbox.clear()
    return mail.outbox
