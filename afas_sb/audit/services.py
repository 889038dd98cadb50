from django.db import models

from .models import ActorKind, AuditEvent


def audit_record(
    *,
    action: str,
    actor_kind: str = ActorKind.SYSTEM,
    actor_user=None,
    organisation_id: int | None = None,
    target: models.Model | None = None,
    reason: str = "",
    data: dict | None = None,
) -> AuditEvent:
    """Append one audit row. Call it inside the transaction of the change it records."""
    return AuditEvent.objects.create(
        action=action,
        actor_kind=actor_kind,
        actor_user=actor_user if actor_user is not None and actor_user.pk else None,
        organisation_id=organisation_id,
        object_type=target._meta.label_lower if target is not None else "",
        object_id=str(target.pk) if target is not None else "",
        reason=reason,
        data=data or {},
    )


def actor_kind_for(user) -> str:
    return ActorKind.STAFF if getattr(user, "is_staff", False) else ActorKind.CUSTOMER
