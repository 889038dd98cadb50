"""Service tokens of the SB application's environments (R3's counts API).

A token is shown once, when it is created; only its SHA-256 and its first
characters are kept, so a database copy never yields a working credential.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.errors import DomainError

from ..models import ServiceToken

PREFIX_LENGTH = 8
# The longest token worth hashing; ours are 43 characters. Anything far longer
# is garbage and is refused before it costs a hash and a query.
MAX_TOKEN_LENGTH = 200
# last_used_at is a hint for staff ("is this token still in use?"), not a log:
# writing it once a minute per token keeps a busy SB application from turning
# every push into an extra UPDATE.
TOUCH_INTERVAL = timedelta(minutes=1)


def token_hash(raw_token: str) -> str:
    """The stored form of a token. Must never change: stored hashes would stop matching."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def service_token_create(*, name: str, environment: str, actor=None) -> tuple[ServiceToken, str]:
    """A new token for one SB environment. Returns the row and the token, which is not kept."""
    name = (name or "").strip()
    if not name:
        raise DomainError(_("Geef de token een naam, bijv. 'SB productie'."), code="name_required")
    max_name = ServiceToken._meta.get_field("name").max_length
    if len(name) > max_name:
        raise DomainError(
            _("De naam mag hoogstens %(max)d tekens lang zijn.") % {"max": max_name},
            code="name_too_long",
        )
    if environment not in ServiceToken.Environment.values:
        raise DomainError(
            _("Onbekende omgeving '%(environment)s'. Kies uit: %(choices)s.")
            % {"environment": environment, "choices": ", ".join(ServiceToken.Environment.values)},
            code="invalid_environment",
        )
    raw_token = secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ServiceToken.objects.create(
            name=name,
            environment=environment,
            prefix=raw_token[:PREFIX_LENGTH],
            token_hash=token_hash(raw_token),
            created_by=actor,
        )
        audit_record(
            action="licensing.service_token_created",
            actor_kind=ActorKind.STAFF if actor is not None else ActorKind.SYSTEM,
            actor_user=actor,
            target=token,
            data={"name": name, "environment": environment, "prefix": token.prefix},
        )
    return token, raw_token


def service_token_find(*, raw_token: str) -> ServiceToken | None:
    """The token row for a presented token, revoked or not; None when it matches none."""
    if not raw_token or len(raw_token) > MAX_TOKEN_LENGTH:
        return None
    return ServiceToken.objects.filter(token_hash=token_hash(raw_token)).first()


def service_token_touch(*, token: ServiceToken) -> None:
    """Record that the token was used, at most once per TOUCH_INTERVAL.

    One conditional UPDATE outside any transaction: concurrent requests do not
    queue behind each other, and at most one of them writes.
    """
    now = clock.now()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_INTERVAL:
        return
    ServiceToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - TOUCH_INTERVAL)
    ).update(last_used_at=now)
    token.last_used_at = now


def service_token_revoke(*, token: ServiceToken, actor=None) -> bool:
    """Revoke a token at once. Returns False when it was already revoked."""
    with transaction.atomic():
        token = ServiceToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            return False
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            action="licensing.service_token_revoked",
            actor_kind=ActorKind.STAFF if actor is not None else ActorKind.SYSTEM,
            actor_user=actor,
            target=token,
            data={"name": token.name, "environment": token.environment, "prefix": token.prefix},
        )
    return True
