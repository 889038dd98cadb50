"""Agreements and their licence quantities (R1–R3)."""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.errors import Conflict, DomainError

from ..hooks import run_agreement_start_checks
from ..models import Agreement, ChangeSource, Component, LicenceChange, LicenceLine, Organisation
from ..selectors import current_terms_version

SOURCE_ACTOR = {
    ChangeSource.SB_APPLICATION: ActorKind.SB_APPLICATION,
    ChangeSource.CUSTOMER: ActorKind.CUSTOMER,
    ChangeSource.ADMINISTRATION: ActorKind.CUSTOMER,
    ChangeSource.STAFF: ActorKind.STAFF,
    ChangeSource.SYSTEM: ActorKind.SYSTEM,
}


def agreement_create(
    *,
    organisation: Organisation,
    start_date: date,
    quantities: dict[Component, int],
    end_date: date | None = None,
    actor=None,
    terms_version=None,
) -> Agreement:
    """A new agreement for an organisation, billed to it or to the firm it is billed via.

    Without ``end_date`` it runs indefinitely and renews every month (R1).
    """
    if end_date is not None and end_date < start_date:
        raise DomainError(_("De einddatum ligt voor de ingangsdatum."), code="end_before_start")
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if organisation.agreements.filter(
            status__in=[Agreement.Status.ACTIVE, Agreement.Status.TERMINATING]
        ).exists():
            raise Conflict(
                _("%(org)s heeft al een lopende overeenkomst.") % {"org": organisation.legal_name},
                code="agreement_exists",
            )
        # E.g. R12: a direct customer first gives a direct debit mandate (billing registers that).
        run_agreement_start_checks(organisation=organisation)
        if terms_version is None:
            # The newest published terms always apply (§1.2), also to a back-dated start.
            terms_version = current_terms_version(on=max(start_date, clock.today()))
        agreement = Agreement.objects.create(
            number="",
            organisation=organisation,
            invoice_to=organisation.billed_via or organisation,
            start_date=start_date,
            end_date=end_date,
            terms_version=terms_version,
        )
        agreement.number = f"SB{agreement.pk:07d}"
        agreement.save(update_fields=["number"])
        audit_record(
            action="licensing.agreement_created",
            actor_kind=ActorKind.STAFF if actor is not None else ActorKind.SYSTEM,
            actor_user=actor,
            organisation_id=organisation.pk,
            target=agreement,
            data={"start_date": start_date.isoformat()},
        )
        _apply_quantities(
            agreement,
            quantities,
            source=ChangeSource.STAFF if actor else ChangeSource.SYSTEM,
            actor=actor,
        )
    return agreement


def licence_set_quantities(
    *,
    agreement: Agreement,
    quantities: dict[Component, int],
    source: str,
    actor=None,
    count_event=None,
    note: str = "",
) -> list[LicenceChange]:
    """Set the quantity per component; every real change is kept as history (R3).

    Locks the agreement, so two changes to one agreement never interleave.
    The new quantities count from the next invoice (R11): the billing run reads
    what is in force when it runs.
    """
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
        if not agreement.is_live:
            raise Conflict(
                _("Overeenkomst %(number)s is beëindigd; aantallen wijzigen kan niet meer.")
                % {"number": agreement.number},
                code="agreement_terminated",
            )
        return _apply_quantities(
            agreement, quantities, source=source, actor=actor, count_event=count_event, note=note
        )


def licence_adjust_quantity(
    *,
    agreement: Agreement,
    component: Component,
    delta: int,
    source: str,
    actor=None,
    note: str = "",
) -> LicenceChange | None:
    """Add ``delta`` (may be negative) to one component, e.g. one administration more."""
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
        line = LicenceLine.objects.filter(agreement=agreement, component=component).first()
        current = line.quantity if line else 0
        changes = _apply_quantities(
            agreement, {component: current + delta}, source=source, actor=actor, note=note
        )
    return changes[0] if changes else None


def _apply_quantities(
    agreement, quantities, *, source, actor=None, count_event=None, note=""
) -> list:
    for component, quantity in quantities.items():
        if quantity is None or int(quantity) != quantity or quantity < 0:
            raise DomainError(
                _("Het aantal voor %(component)s moet 0 of meer zijn.")
                % {"component": component.name},
                code="invalid_quantity",
            )
    lines = {
        line.component_id: line
        for line in LicenceLine.objects.filter(agreement=agreement, component__in=list(quantities))
    }
    changes = []
    for component, quantity in sorted(quantities.items(), key=lambda item: item[0].pk):
        line = lines.get(component.pk)
        old = line.quantity if line else 0
        if line is None:
            LicenceLine.objects.create(agreement=agreement, component=component, quantity=quantity)
        elif old != quantity:
            line.quantity = quantity
            line.save(update_fields=["quantity", "updated_at"])
        if old == quantity:
            continue  # nothing changed: no history row (a new line at 0 included)
        changes.append(
            LicenceChange(
                agreement=agreement,
                component=component,
                old_quantity=old,
                new_quantity=quantity,
                source=source,
                count_event=count_event,
                actor_user=actor,
                note=note[:255],
            )
        )
    LicenceChange.objects.bulk_create(changes)
    if changes:
        audit_record(
            action="licensing.quantities_changed",
            actor_kind=SOURCE_ACTOR.get(source, ActorKind.SYSTEM),
            actor_user=actor,
            organisation_id=agreement.organisation_id,
            target=agreement,
            data={c.component.code: [c.old_quantity, c.new_quantity] for c in changes},
        )
    return changes
