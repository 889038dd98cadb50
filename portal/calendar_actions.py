"""The portal's calendar actions."""

from datetime import date, timedelta

from django.db.models import Q

from afas_sb import clock
from afas_sb.scheduler.registry import register

from .models import Invitation

STALE_INVITATION_DAYS = 30


@register(
    "portal.purge_stale_invitations",
    order=800,
    description="Verlopen en afgehandelde uitnodigingen na 30 dagen verwijderen (AVG)",
)
def purge_stale_invitations(day: date) -> str:
    """An invitation holds an e-mail address of someone who may never have joined.

    Thirty days after it expired, was revoked or was accepted (the membership
    and the audit trail keep what matters), the row has no purpose left.
    """
    cutoff = clock.start_of_day(day - timedelta(days=STALE_INVITATION_DAYS))
    deleted, _ = Invitation.objects.filter(
        Q(expires_at__lt=cutoff) | Q(revoked_at__lt=cutoff) | Q(accepted_at__lt=cutoff)
    ).delete()
    return f"{deleted} uitnodiging(en) verwijderd"
