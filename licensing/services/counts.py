"""Licence counts pushed by the SB application (R3, R11, R16; §3.5).

The customer changes users and administrations in the SB application itself;
the application pushes the new counts here, and the next month's invoice is
made on them. Every push carries an event id: the same event twice is one
change with one answer, so the application may retry freely.
"""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from afas_sb import calendars, clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.errors import Conflict, DomainError, NotFound

from ..models import (
    Agreement,
    ChangeSource,
    Component,
    CountEvent,
    LicenceLine,
    Organisation,
    ServiceToken,
    Termination,
)
from .agreements import licence_set_quantities

EVENT_ID_MAX_LENGTH = CountEvent._meta.get_field("event_id").max_length
# LicenceLine.quantity is a PositiveIntegerField: the largest value every
# supported database stores in it.
MAX_COUNT = 2_147_483_647
_REGISTRATION_NUMBER = re.compile(r"^(\d{8}|\d{10})$")


def licence_counts_record(
    *,
    token: ServiceToken,
    event_id: str,
    agreement_number: str | None = None,
    organisation_kvk: str | None = None,
    counts: dict[str, int],
    payload: dict,
) -> tuple[CountEvent, bool]:
    """Record one push of counts; returns the event and whether it is new.

    The customer is named by agreement number or by KvK number (its live
    agreement). ``payload`` is the request in a normalised, JSON-safe form: it
    is stored, and a repeat of ``event_id`` with an equal payload gets the
    stored answer while one with another payload is refused (409). On any
    error nothing is stored.
    """
    event_id = _clean_event_id(event_id)
    agreement_number, organisation_kvk = _clean_identifiers(agreement_number, organisation_kvk)
    _check_counts(counts)

    # A repeat is answered from what was stored, even when the agreement has
    # ended since: the first answer stands.
    stored = _stored_event(event_id, payload)
    if stored is not None:
        return stored, False
    components = _components(counts)
    try:
        return _record(
            token=token,
            event_id=event_id,
            agreement_number=agreement_number,
            organisation_kvk=organisation_kvk,
            counts=counts,
            components=components,
            payload=payload,
        )
    except IntegrityError:
        # Another request with this event id committed between our check and
        # our insert (the unique event_id decided). Its answer is the answer.
        stored = _stored_event(event_id, payload)
        if stored is None:
            raise
        return stored, False


def _record(*, token, event_id, agreement_number, organisation_kvk, counts, components, payload):
    with transaction.atomic():
        agreement = _find_agreement(agreement_number, organisation_kvk)
        # The agreement lock serialises pushes for one customer; the same lock
        # licence_set_quantities takes (again, at no cost) below.
        agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
        # A request with the same event id may have committed while we waited
        # for the lock; its answer stands, whatever happened since.
        stored = _stored_event(event_id, payload)
        if stored is not None:
            return stored, False
        _check_accepts_counts(agreement)

        event = CountEvent.objects.create(
            event_id=event_id, token=token, agreement=agreement, payload=payload, response_body={}
        )
        held = set(
            LicenceLine.objects.filter(agreement=agreement).values_list("component_id", flat=True)
        )
        quantities = {
            component: counts[code]
            for code, component in components.items()
            # A zero for a component the licence does not hold changes nothing;
            # passing it on would write a 0 → 0 history row.
            if counts[code] or component.pk in held
        }
        changes = licence_set_quantities(
            agreement=agreement,
            quantities=quantities,
            source=ChangeSource.SB_APPLICATION,
            count_event=event,
        )
        event.response_body = _response_body(event, agreement, changes)
        event.save(update_fields=["response_body"])
        # Read back what the database stores, so this first answer is byte for
        # byte what a repeat gets (PostgreSQL's jsonb orders keys its own way).
        event.refresh_from_db(fields=["response_body"])
        audit_record(
            action="licensing.counts_received",
            actor_kind=ActorKind.SB_APPLICATION,
            organisation_id=agreement.organisation_id,
            target=agreement,
            data={
                "event_id": event_id,
                "token": token.prefix,
                "environment": token.environment,
                "counts": counts,
                "changed": len(changes),
            },
        )
    return event, True


# --- Checks ---------------------------------------------------------------------------


def _clean_event_id(event_id) -> str:
    event_id = event_id.strip() if isinstance(event_id, str) else ""
    if not event_id or len(event_id) > EVENT_ID_MAX_LENGTH:
        raise DomainError(
            _("Geef een event_id van 1 tot %(max)d tekens mee.") % {"max": EVENT_ID_MAX_LENGTH},
            code="invalid_event_id",
        )
    return event_id


def _clean_identifiers(agreement_number, organisation_kvk) -> tuple[str | None, str | None]:
    agreement_number = (agreement_number or "").strip().upper() or None
    organisation_kvk = clean_kvk(organisation_kvk or "") or None
    if (agreement_number is None) == (organisation_kvk is None):
        raise DomainError(
            _(
                "Geef óf het overeenkomstnummer (agreement) óf het KvK-nummer (organisation_kvk) mee."
            ),
            code="customer_identifier",
        )
    if organisation_kvk is not None and not _REGISTRATION_NUMBER.match(organisation_kvk):
        raise DomainError(
            _(
                "Een KvK-nummer bestaat uit 8 cijfers (een Belgisch ondernemingsnummer uit 10), "
                "bijvoorbeeld 30123456."
            ),
            code="invalid_kvk",
        )
    return agreement_number, organisation_kvk


def clean_kvk(value: str) -> str:
    """KvK or Belgian enterprise number in its stored form: digits only."""
    return re.sub(r"[\s.\-]", "", value).upper().removeprefix("BE")


def _check_counts(counts) -> None:
    if not isinstance(counts, dict) or not counts:
        raise DomainError(
            _('Geef ten minste één aantal mee, bijv. {"users": 5}.'), code="counts_required"
        )
    for code, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int):
            raise DomainError(
                _("Het aantal voor '%(code)s' moet een geheel getal zijn.") % {"code": code},
                code="invalid_count",
            )
        if count < 0:
            raise DomainError(
                _("Het aantal voor '%(code)s' moet 0 of meer zijn.") % {"code": code},
                code="negative_count",
            )
        if count > MAX_COUNT:
            raise DomainError(
                _("Het aantal voor '%(code)s' is te groot.") % {"code": code},
                code="invalid_count",
            )


def _find_agreement(agreement_number, organisation_kvk) -> Agreement:
    if agreement_number is not None:
        agreement = Agreement.objects.filter(number=agreement_number).first()
        if agreement is None:
            raise NotFound(
                _("Er is geen overeenkomst met nummer %(number)s.") % {"number": agreement_number},
                code="unknown_customer",
            )
        return agreement
    organisations = list(Organisation.objects.filter(kvk_number=organisation_kvk)[:2])
    if not organisations:
        raise NotFound(
            _("Er is geen klant met KvK-nummer %(kvk)s.") % {"kvk": organisation_kvk},
            code="unknown_customer",
        )
    if len(organisations) > 1:
        raise Conflict(
            _("KvK-nummer %(kvk)s hoort bij meer dan één klant; geef het overeenkomstnummer mee.")
            % {"kvk": organisation_kvk},
            code="ambiguous_customer",
        )
    organisation = organisations[0]
    agreements = Agreement.objects.filter(organisation=organisation)
    live = agreements.filter(
        status__in=[Agreement.Status.ACTIVE, Agreement.Status.TERMINATING]
    ).first()
    if live is not None:
        return live
    if agreements.exists():
        raise Conflict(
            _(
                "De overeenkomst van %(org)s is beëindigd; de SB-applicatie kan geen aantallen "
                "meer doorgeven."
            )
            % {"org": organisation.legal_name},
            code="agreement_terminated",
        )
    raise Conflict(
        _("%(org)s heeft geen lopende overeenkomst; aantallen doorgeven kan niet.")
        % {"org": organisation.legal_name},
        code="no_live_agreement",
    )


def _check_accepts_counts(agreement: Agreement) -> None:
    """After the end the customer has no access, so its counts are refused (R16).

    The end is the status, or a termination whose last day has passed before
    the nightly run marked the agreement terminated.
    """
    ended = (
        not agreement.is_live
        or Termination.objects.filter(
            agreement=agreement,
            status__in=[Termination.Status.SCHEDULED, Termination.Status.EFFECTIVE],
            effective_date__lt=clock.today(),
        ).exists()
    )
    if ended:
        raise Conflict(
            _(
                "Overeenkomst %(number)s is beëindigd; de SB-applicatie kan geen aantallen meer "
                "doorgeven."
            )
            % {"number": agreement.number},
            code="agreement_terminated",
        )


def _components(counts: dict[str, int]) -> dict[str, Component]:
    """The components named in ``counts``, by code; every unknown code is reported at once."""
    components = {
        c.code: c for c in Component.objects.filter(code__in=list(counts), is_active=True)
    }
    unknown = sorted(set(counts) - set(components))
    if unknown:
        raise DomainError(
            _("Onbekende onderdelen: %(codes)s. Bekend zijn: %(known)s.")
            % {
                "codes": ", ".join(unknown),
                "known": ", ".join(
                    Component.objects.filter(is_active=True)
                    .order_by("code")
                    .values_list("code", flat=True)
                ),
            },
            code="unknown_component",
        )
    return components


def _stored_event(event_id: str, payload: dict) -> CountEvent | None:
    event = CountEvent.objects.filter(event_id=event_id).first()
    if event is None:
        return None
    if event.payload != payload:
        raise Conflict(
            _(
                "Event %(event_id)s is al verwerkt met andere gegevens. Gebruik een nieuw "
                "event_id voor een nieuwe telling."
            )
            % {"event_id": event_id},
            code="event_id_reused",
        )
    return event


def _response_body(event: CountEvent, agreement: Agreement, changes) -> dict:
    lines = LicenceLine.objects.filter(agreement=agreement).select_related("component")
    return {
        "event_id": event.event_id,
        "agreement": agreement.number,
        "quantities": {
            line.component.code: line.quantity
            for line in sorted(
                lines, key=lambda line: (line.component.position, line.component.code)
            )
        },
        # Counts are billed from the next month's invoice on (R11): the invoice
        # for this month is already out, in advance (R7).
        "applies_from": calendars.next_month_start(clock.today()).isoformat(),
        "changes": [
            {
                "component": change.component.code,
                "old_quantity": change.old_quantity,
                "new_quantity": change.new_quantity,
            }
            for change in changes
        ],
    }
