"""Terms and conditions versions (R20, terms §1.2).

Staff publish a version; from its effective date it is the version every live
agreement runs under ("the newest terms always apply"). A major version also
goes out as a newsletter to every contact of every live customer, once per
person. Customers accept a version in the portal (they are never obliged to,
§1.2: acceptance records that the organisation has seen it), send improvement
suggestions, and may terminate over a change: the old terms then apply for two
more months.

Moving agreements to a new version happens in one place, ``terms_apply_versions``:
at publish time for a version whose effective date has come, and daily through
the calendar action ``licensing.apply_terms_versions`` (licensing/terms_calendar.py)
for a version announced ahead of its effective date.

Memberships and roles belong to the portal, which sits above licensing
(DESIGN.md: dependencies point one way). This module therefore reaches people
through the reverse relations ``Organisation.memberships`` / ``User.memberships``
and compares roles by their stored values, without importing the portal.
"""

from __future__ import annotations

import logging
from datetime import date

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from afas_sb import calendars, clock
from afas_sb.audit.models import ActorKind, AuditEvent
from afas_sb.audit.services import actor_kind_for, audit_record
from afas_sb.errors import Conflict, DomainError, PermissionDenied
from afas_sb.mail import send_templated_mail

from ..models import Agreement, Organisation, TermsAcceptance, TermsSuggestion, TermsVersion
from ..selectors import current_terms_version

logger = logging.getLogger(__name__)

LIVE_STATUSES = (Agreement.Status.ACTIVE, Agreement.Status.TERMINATING)

# Stored values of portal.models.Role. portal.tenancy.PERMISSIONS["accept_terms"]
# and ["suggest_terms"] hold the same sets; a test keeps them equal.
TERMS_ACCEPT_ROLES = frozenset({"admin"})
TERMS_SUGGEST_ROLES = frozenset({"admin", "billing", "member"})

SUGGESTION_MAX_LENGTH = 5000
# §1.2: "De oude voorwaarden gelden dan nog twee maanden."
PREVIOUS_TERMS_MONTHS = 2
# R20: "at least twice a year".
MIN_PUBLICATIONS_PER_YEAR = 2

# The newsletter and the mail to support are Dutch, whoever triggers them.
MAIL_LANGUAGE = "nl"
NEWSLETTER_AUDIT_ACTION = "licensing.terms_newsletter_sent"
NEWSLETTER_BATCH_SIZE = 200


# --- Publishing and applying -------------------------------------------------------------


def terms_publish(*, version: TermsVersion, staff_user) -> TermsVersion:
    """Publish a draft version; a repeat (also a concurrent one) does nothing.

    When the effective date has come, live agreements move to it at once;
    otherwise the daily calendar action moves them on that date. A major
    version is mailed to every contact after commit, once per person.
    """
    with transaction.atomic():
        version = TermsVersion.objects.select_for_update().get(pk=version.pk)
        if version.published_at is not None:
            return version
        newest = terms_newest_published()
        if newest is not None and _sort_key(version) < _sort_key(newest):
            raise Conflict(
                _(
                    "Versie %(number)s gaat in op %(date)s, vóór de al gepubliceerde versie "
                    "%(newest)s (%(newest_date)s). De nieuwste voorwaarden gelden altijd: "
                    "kies een latere ingangsdatum."
                )
                % {
                    "number": version.number,
                    "date": version.effective_date.strftime("%d-%m-%Y"),
                    "newest": newest.number,
                    "newest_date": newest.effective_date.strftime("%d-%m-%Y"),
                },
                code="terms_older_than_newest",
            )
        version.published_at = clock.now()
        version.save(update_fields=["published_at"])
        audit_record(
            action="licensing.terms_published",
            actor_kind=ActorKind.STAFF if staff_user is not None else ActorKind.SYSTEM,
            actor_user=staff_user,
            target=version,
            data={
                "number": version.number,
                "effective_date": version.effective_date.isoformat(),
                "is_major": version.is_major,
            },
        )
        today = clock.today()
        if version.effective_date <= today:
            terms_apply_versions(on=today, actor=staff_user)
        if version.is_major:
            published = version
            transaction.on_commit(lambda: terms_newsletter_send(version=published))
    return version


def terms_apply_versions(*, on: date, actor=None) -> int:
    """Move every live agreement on an older version to the version in force on ``on``.

    Idempotent: an agreement already on the newest version is left alone, so
    the daily calendar and a publish on the effective date can both call it.
    Returns the number of agreements moved.
    """
    current = current_terms_version(on=on)
    if current is None:
        return 0
    older_ids = list(_older_than(current).values_list("pk", flat=True))
    moved = 0
    with transaction.atomic():
        # Locked in primary-key order, like every service that locks agreements.
        stale = (
            Agreement.objects.select_for_update()
            .filter(status__in=LIVE_STATUSES)
            .filter(Q(terms_version__isnull=True) | Q(terms_version_id__in=older_ids))
            .order_by("pk")
        )
        for agreement in stale:
            before = agreement.terms_version_id
            agreement.terms_version = current
            agreement.save(update_fields=["terms_version"])
            audit_record(
                action="licensing.terms_version_applied",
                actor_kind=ActorKind.STAFF if actor is not None else ActorKind.CALENDAR,
                actor_user=actor,
                organisation_id=agreement.organisation_id,
                target=agreement,
                data={
                    "from_version_id": before,
                    "to_version": current.number,
                    "on": on.isoformat(),
                },
            )
            moved += 1
    return moved


def terms_newsletter_send(*, version: TermsVersion) -> int:
    """Mail a major version to every contact of every live customer, once per person.

    Each person's mail is recorded first (an audit row) and sent after that
    record commits, under a lock on the version: a second or concurrent call
    finds the record and skips the person. A crash between commit and sending
    therefore loses a mail rather than sending one twice ("never twice").
    Returns the number of mails sent by this call.
    """
    version = TermsVersion.objects.get(pk=version.pk)
    if not version.is_major or version.published_at is None:
        return 0
    recipient_ids = list(
        newsletter_recipients().order_by("pk").values_list("pk", flat=True).distinct()
    )
    sent = 0
    for start in range(0, len(recipient_ids), NEWSLETTER_BATCH_SIZE):
        batch = recipient_ids[start : start + NEWSLETTER_BATCH_SIZE]
        with transaction.atomic():
            TermsVersion.objects.select_for_update().get(pk=version.pk)
            already = set(
                AuditEvent.objects.filter(
                    action=NEWSLETTER_AUDIT_ACTION,
                    object_type=TermsVersion._meta.label_lower,
                    object_id=str(version.pk),
                ).values_list("data__user_id", flat=True)
            )
            users = list(
                get_user_model()
                .objects.filter(pk__in=[pk for pk in batch if pk not in already])
                .order_by("pk")
            )
            for user in users:
                audit_record(
                    action=NEWSLETTER_AUDIT_ACTION,
                    actor_kind=ActorKind.SYSTEM,
                    target=version,
                    data={"version": version.number, "user_id": user.pk},
                )
            transaction.on_commit(lambda users=users: _mail_newsletter(version, users))
        sent += len(users)
    return sent


def newsletter_recipients() -> QuerySet:
    """Every active person with a membership in an organisation with a live agreement."""
    return get_user_model().objects.filter(
        is_active=True,
        memberships__organisation__agreements__status__in=LIVE_STATUSES,
    )


def _mail_newsletter(version: TermsVersion, users) -> None:
    # The portal sits above licensing; its page is reached by URL name, not by import.
    portal_url = settings.SITE_URL + reverse("portal:voorwaarden")
    with translation.override(MAIL_LANGUAGE):
        subject = _("Nieuwe voorwaarden per %(date)s") % {
            "date": date_format(version.effective_date, "j F Y")
        }
    for user in users:
        try:
            send_templated_mail(
                to=[user.email],
                subject=subject,
                template="licensing/email/terms_newsletter",
                context={"version": version, "recipient": user, "portal_url": portal_url},
            )
        except Exception:
            # Recorded as sent already: one failing address must not stop the rest.
            logger.exception(
                "terms newsletter not delivered",
                extra={"version": version.number, "user_id": user.pk},
            )


# --- Acceptance and suggestions -----------------------------------------------------------


def terms_accept(*, organisation: Organisation, version: TermsVersion, user) -> TermsAcceptance:
    """A beheerder of the organisation accepts a published version; a repeat returns the first."""
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if _role_in(organisation, user) not in TERMS_ACCEPT_ROLES:
            raise PermissionDenied(
                _("Alleen een beheerder van %(organisation)s kan de voorwaarden accepteren.")
                % {"organisation": organisation.legal_name},
                code="terms_accept_forbidden",
            )
        version = _published(version)
        existing = TermsAcceptance.objects.filter(
            organisation=organisation, terms_version=version
        ).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                acceptance = TermsAcceptance.objects.create(
                    organisation=organisation, terms_version=version, user=user
                )
        except IntegrityError:
            # The organisation lock makes this unreachable; the constraint stays the backstop.
            return TermsAcceptance.objects.get(organisation=organisation, terms_version=version)
        audit_record(
            action="licensing.terms_accepted",
            actor_kind=actor_kind_for(user),
            actor_user=user,
            organisation_id=organisation.pk,
            target=acceptance,
            data={"version": version.number},
        )
    return acceptance


def terms_suggest(
    *, organisation: Organisation, version: TermsVersion, user, text: str
) -> TermsSuggestion:
    """An improvement suggestion about a version (§1.2); support gets it by e-mail.

    The same text from the same person about the same version is stored once,
    so a double-clicked button sends one mail.
    """
    text = (text or "").strip()
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if _role_in(organisation, user) not in TERMS_SUGGEST_ROLES:
            raise PermissionDenied(
                _(
                    "Je kunt voor %(organisation)s alleen lezen; een verbetervoorstel sturen "
                    "kan een beheerder of medewerker."
                )
                % {"organisation": organisation.legal_name},
                code="terms_suggest_forbidden",
            )
        if not text:
            raise DomainError(
                _("Schrijf eerst je verbetervoorstel; een leeg voorstel kunnen we niet versturen."),
                code="suggestion_empty",
            )
        if len(text) > SUGGESTION_MAX_LENGTH:
            raise DomainError(
                _(
                    "Je verbetervoorstel is te lang: maximaal %(max)s tekens, "
                    "het zijn er nu %(count)s."
                )
                % {"max": SUGGESTION_MAX_LENGTH, "count": len(text)},
                code="suggestion_too_long",
            )
        version = _published(version)
        existing = TermsSuggestion.objects.filter(
            organisation=organisation, terms_version=version, user=user, text=text
        ).first()
        if existing is not None:
            return existing
        suggestion = TermsSuggestion.objects.create(
            organisation=organisation, terms_version=version, user=user, text=text
        )
        audit_record(
            action="licensing.terms_suggestion_sent",
            actor_kind=actor_kind_for(user),
            actor_user=user,
            organisation_id=organisation.pk,
            target=suggestion,
            data={"version": version.number, "length": len(text)},
        )
        transaction.on_commit(lambda: _mail_suggestion(suggestion))
    return suggestion


def _mail_suggestion(suggestion: TermsSuggestion) -> None:
    with translation.override(MAIL_LANGUAGE):
        subject = _("Verbetervoorstel voorwaarden %(number)s van %(organisation)s") % {
            "number": suggestion.terms_version.number,
            "organisation": suggestion.organisation.legal_name,
        }
    send_templated_mail(
        to=[settings.SUPPORT_EMAIL],
        subject=subject,
        template="licensing/email/terms_suggestion",
        context={
            "suggestion": suggestion,
            "admin_url": settings.SITE_URL
            + reverse("admin:licensing_termssuggestion_change", args=[suggestion.pk]),
        },
    )


# --- Terminating over a change ----------------------------------------------------------------


def terms_keep_previous_for_termination(
    *, agreement: Agreement, new_version: TermsVersion, terminated_on: date, actor=None
) -> Agreement:
    """The customer terminates over ``new_version``: the old terms apply two more months.

    The old version is the one the agreement ran under before ``new_version``.
    Boundary: it applies up to and including ``terminated_on`` plus two months,
    clamped to the month's end (31 December → 28/29 February); the new version
    applies from the day after. Called by the termination flow in the same
    transaction as the termination; a repeat with the same input does nothing.
    """
    with transaction.atomic():
        # of=("self",): only the agreement row; its (nullable) version is just read.
        agreement = (
            Agreement.objects.select_for_update(of=("self",))
            .select_related("terms_version")
            .get(pk=agreement.pk)
        )
        if not agreement.is_live:
            raise Conflict(
                _("Overeenkomst %(number)s is al beëindigd.") % {"number": agreement.number},
                code="agreement_terminated",
            )
        new_version = _published(new_version)
        if terminated_on < clock.local(new_version.published_at).date():
            raise DomainError(
                _("Opzeggen om versie %(number)s kan pas nadat die is gepubliceerd.")
                % {"number": new_version.number},
                code="terms_not_yet_announced",
            )
        previous = _version_before(agreement, new_version)
        if previous is None:
            raise Conflict(
                _("Er is geen eerdere versie van de voorwaarden dan %(number)s.")
                % {"number": new_version.number},
                code="terms_no_previous_version",
            )
        until = calendars.add_months(terminated_on, PREVIOUS_TERMS_MONTHS)
        if agreement.previous_terms_version_id == previous.pk and (
            agreement.previous_terms_until == until
        ):
            return agreement
        agreement.previous_terms_version = previous
        agreement.previous_terms_until = until
        agreement.save(update_fields=["previous_terms_version", "previous_terms_until"])
        audit_record(
            action="licensing.terms_previous_kept",
            actor_kind=actor_kind_for(actor) if actor is not None else ActorKind.SYSTEM,
            actor_user=actor,
            organisation_id=agreement.organisation_id,
            target=agreement,
            reason=_("Opgezegd vanwege wijziging voorwaarden (§1.2)"),
            data={
                "new_version": new_version.number,
                "previous_version": previous.number,
                "terminated_on": terminated_on.isoformat(),
                "until": until.isoformat(),
            },
        )
    return agreement


def terms_clear_previous(*, agreement: Agreement, actor=None) -> Agreement:
    """The termination over a change is withdrawn: the newest terms apply again at once."""
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
        if agreement.previous_terms_version_id is None and agreement.previous_terms_until is None:
            return agreement
        agreement.previous_terms_version = None
        agreement.previous_terms_until = None
        agreement.save(update_fields=["previous_terms_version", "previous_terms_until"])
        audit_record(
            action="licensing.terms_previous_cleared",
            actor_kind=actor_kind_for(actor) if actor is not None else ActorKind.SYSTEM,
            actor_user=actor,
            organisation_id=agreement.organisation_id,
            target=agreement,
        )
    return agreement


def terms_previous_version_applies(*, agreement: Agreement, on: date) -> TermsVersion | None:
    """The version that applies to ``agreement`` on ``on``.

    The previous version while ``on`` <= previous_terms_until (terminated over a
    change), else the agreement's current version.
    """
    if (
        agreement.previous_terms_version_id is not None
        and agreement.previous_terms_until is not None
        and on <= agreement.previous_terms_until
    ):
        return agreement.previous_terms_version
    return agreement.terms_version


# --- Reads -------------------------------------------------------------------------------------


def terms_published_versions() -> QuerySet[TermsVersion]:
    """Published versions, newest first (the order in which "newest" is decided)."""
    return TermsVersion.objects.filter(published_at__isnull=False).order_by(
        "-effective_date", "-pk"
    )


def terms_newest_published() -> TermsVersion | None:
    """The newest published version, also when it takes effect later (announced)."""
    return terms_published_versions().first()


def terms_pending_for(*, organisation: Organisation) -> TermsVersion | None:
    """The newest published version this organisation has not accepted yet, if any.

    For the portal's banner and dashboard notice; a terminated customer is not asked.
    """
    if not organisation.is_active:
        return None
    newest = terms_newest_published()
    if newest is None:
        return None
    if TermsAcceptance.objects.filter(organisation=organisation, terms_version=newest).exists():
        return None
    return newest


def terms_versions_published_in_last_12_months(today: date) -> QuerySet[TermsVersion]:
    """Versions published from the same date twelve months ago (00:00 Amsterdam) on."""
    since = clock.start_of_day(calendars.add_months(today, -12))
    return terms_published_versions().filter(published_at__gte=since)


def terms_publication_warning(today: date) -> str | None:
    """A warning for staff when fewer than two versions were published in twelve months (R20)."""
    count = terms_versions_published_in_last_12_months(today).count()
    if count >= MIN_PUBLICATIONS_PER_YEAR:
        return None
    return ngettext(
        "In de afgelopen twaalf maanden is %(count)s versie van de voorwaarden gepubliceerd. "
        "Volgens §1.2 brengen we minstens twee keer per jaar een update uit.",
        "In de afgelopen twaalf maanden zijn %(count)s versies van de voorwaarden gepubliceerd. "
        "Volgens §1.2 brengen we minstens twee keer per jaar een update uit.",
        count,
    ) % {"count": count}


# --- Helpers ---------------------------------------------------------------------------------


def _sort_key(version: TermsVersion) -> tuple:
    """Newest is the latest effective date, then the latest created (as current_terms_version)."""
    return (version.effective_date, version.pk)


def _published(version: TermsVersion) -> TermsVersion:
    version = TermsVersion.objects.get(pk=version.pk)
    if version.published_at is None:
        raise Conflict(
            _("Versie %(number)s van de voorwaarden is nog niet gepubliceerd.")
            % {"number": version.number},
            code="terms_not_published",
        )
    return version


def _role_in(organisation: Organisation, user) -> str | None:
    """The user's stored portal role in the organisation, or None without a membership."""
    if user is None or not getattr(user, "pk", None):
        return None
    return (
        organisation.memberships.filter(user=user, user__is_active=True)
        .values_list("role", flat=True)
        .first()
    )


def _version_before(agreement: Agreement, new_version: TermsVersion) -> TermsVersion | None:
    """What the agreement ran under before ``new_version``."""
    current = agreement.terms_version
    if (
        current is not None
        and current.published_at is not None
        and _sort_key(current) < _sort_key(new_version)
    ):
        return current
    return _older_than(new_version).first()


def _older_than(version: TermsVersion) -> QuerySet[TermsVersion]:
    """Published versions before ``version`` in the order of _sort_key, newest first."""
    return terms_published_versions().filter(
        Q(effective_date__lt=version.effective_date)
        | Q(effective_date=version.effective_date, pk__lt=version.pk)
    )
