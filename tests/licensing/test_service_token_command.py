"""create_service_token: the SB application's credential, shown once and stored as a hash (R3)."""

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from afas_sb.audit.models import ActorKind, AuditEvent
from licensing.models import ServiceToken

from .test_counts_api import body, make_agreement, make_catalogue, push

ROOT = Path(__file__).resolve().parents[2]


def create_token(**options) -> tuple[str, str]:
    out = io.StringIO()
    call_command("create_service_token", stdout=out, **options)
    output = out.getvalue()
    return output.strip().splitlines()[-1], output


def test_create_service_token_prints_a_token_that_then_authenticates(client, db):
    agreement = make_agreement(make_catalogue())

    raw_token, output = create_token(name="SB productie", environment="production")
    response = push(client, raw_token, body(agreement=agreement.number))

    assert response.status_code == 201, response.content
    token = ServiceToken.objects.get()
    assert (token.name, token.environment) == ("SB productie", "production")
    assert token.revoked_at is None
    assert response.json()["event_id"] == "ev-1"
    assert output.count(raw_token) == 1
    assert "niet nog eens getoond" in output


def test_create_service_token_stores_only_the_hash_and_a_prefix(db):
    raw_token, output = create_token(name="SB acceptatie", environment="acceptance")

    token = ServiceToken.objects.get()
    assert token.token_hash == hashlib.sha256(raw_token.encode()).hexdigest()
    assert token.prefix == raw_token[:8]
    assert len(raw_token) >= 40
    assert f"begint met {token.prefix}" in output
    stored = [str(getattr(token, field.attname)) for field in ServiceToken._meta.concrete_fields]
    assert not any(raw_token in value for value in stored)
    audit = AuditEvent.objects.get(action="licensing.service_token_created")
    assert audit.actor_kind == ActorKind.SYSTEM
    assert raw_token not in str(audit.data)


def test_create_service_token_makes_a_new_token_each_time(db):
    first, _output = create_token(name="SB test", environment="test")
    second, _output = create_token(name="SB test", environment="test")

    assert first != second
    assert ServiceToken.objects.count() == 2


def test_create_service_token_refuses_an_unknown_environment_in_one_line(db):
    with pytest.raises(CommandError) as error:
        create_token(name="SB productie", environment="prod")

    assert str(error.value) == (
        "Onbekende omgeving 'prod'. Kies uit: production, acceptance, test."
    )
    assert not ServiceToken.objects.exists()


def test_create_service_token_refuses_an_empty_name(db):
    with pytest.raises(CommandError, match="Geef de token een naam"):
        create_token(name="  ", environment="test")

    assert not ServiceToken.objects.exists()


def test_create_service_token_bad_environment_exits_non_zero_with_one_line():
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    environment["DJANGO_SETTINGS_MODULE"] = "afas_sb.settings.test"

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "create_service_token",
            "--name",
            "SB productie",
            "--environment",
            "staging",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "CommandError: Onbekende omgeving 'staging'. Kies uit: production, acceptance, test."
    ]
