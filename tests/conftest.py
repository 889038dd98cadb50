import pytest
from django.db import OperationalError, connection


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


STAFF_TOTP_SECRET = "JBSWY3DPEHPK3PXP"
STAFF_PASSWORD = "Sterk-wachtwoord-2026"


def totp_code(secret: str, at: float | None = None) -> str:
    """RFC 6238 code, computed here rather than with allauth's internals."""
    import base64
    import hashlib
    import hmac
    import struct
    import time

    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def login_with_mfa(client, user, secret: str = STAFF_TOTP_SECRET):
    """Log in through allauth's real flow: password, then the TOTP code."""
    from django.urls import reverse

    first = client.post(reverse("account_login"), {"login": user.email, "password": STAFF_PASSWORD})
    assert first.status_code == 302 and first["Location"] == reverse("mfa_authenticate"), first
    second = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert second.status_code == 302, second
    return client


@pytest.fixture
def staff_user(db):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.utils import encrypt

    from tests.factories import UserFactory

    user = UserFactory(email="medewerker@sb.example.nl", is_staff=True, is_superuser=True)
    Authenticator.objects.create(
        user=user, type=Authenticator.Type.TOTP, data={"secret": encrypt(STAFF_TOTP_SECRET)}
    )
    return user


@pytest.fixture
def staff_client(client, staff_user):
    return login_with_mfa(client, staff_user)


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections_before_dropping_the_test_database(django_db_setup, django_db_blocker):
    """Threads of the concurrency tests, the in-process Celery worker and the live server
    each open their own connection; one that outlives its thread would keep PostgreSQL
    from dropping the test database. Torn down before ``django_db_setup`` drops it."""
    yield
    if connection.vendor != "postgresql" or not connection.settings_dict["NAME"].startswith(
        "test_"
    ):
        return
    try:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    except OperationalError:
        pass  # best effort: pytest-django reports a database it could not drop


@pytest.fixture
def sepa_outbox(settings, tmp_path):
    """Debit batches (pain.008) written to this test's own outbox and media folders; the outbox."""
    settings.SEPA_OUTBOX_DIR = str(tmp_path / "sepa-outbox")
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "sepa-outbox"
