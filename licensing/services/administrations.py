"""Client administrations an accountancy firm runs for its clients (R2, R17; §3.1, §3.6).

Each administration counts as one unit of a licence component on the agreement
that pays for it (``Administration.agreement``): an "administration" while in
use, an "archive" licence once archived, a "view_only" licence (inkijklicentie)
after the client left. Every change of kind or of paying agreement moves that
one unit through ``licence_adjust_quantity``, so the licence history shows each
step with source "administration" and the person who acted.

Locking order, the same in every function here: the Agreement rows involved
(ascending pk), then the Administration, then its AdministrationTransfer.
``licence_adjust_quantity`` locks the agreement again inside the same
transaction, which costs nothing. The paying agreement is read before it is
locked; when a concurrent change moved the administration meanwhile, the
re-read after the lock notices and the action is refused instead of counting
on the wrong agreement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.services import actor_kind_for, audit_record
from afas_sb.errors import Conflict, DomainError, PermissionDenied
from afas_sb.mail import send_templated_mail

from ..models import (
    Administration,
    AdministrationTransfer,
    Agreement,
    ChangeSource,
    Component,
    Organisation,
)
from ..selectors import live_agreement
from .agreements import licence_adjust_quantity

Kind = Administration.Kind
Status = Administration.Status

# The licence component each kind of administration counts on.
COMPONENT_KIND = {
    Kind.STANDARD: Component.Kind.ADMINISTRATION,
    Kind.ARCHIVE: Component.Kind.ARCHIVE,
    Kind.VIEW_ONLY: Component.Kind.VIEW_ONLY,
}

# Portal roles (portal.models.Role) named by value: licensing sits below the
# portal and does not import it. Accepting or declining a transfer changes what
# the receiving organisation pays, so only its beheerder decides.
ADMIN_ROLE = "admin"


# --- Reads ---------------------------------------------------------------------------


def terminated_client_ids(*, clients: Iterable[Organisation]) -> set[int]:
    """The clients whose licence is ending or has ended: R17's three options apply to them.

    A client has terminated when it is marked terminated, or when it has
    agreements and none of them is active (the last one is terminating or
    terminated). One query for any number of clients.
    """
    clients = list(clients)
    ended = {c.pk for c in clients if c.status == Organisation.Status.TERMINATED}
    statuses: dict[int, set[str]] = defaultdict(set)
    for organisation_id, status in Agreement.objects.filter(
        organisation_id__in=[c.pk for c in clients]
    ).values_list("organisation_id", "status"):
        statuses[organisation_id].add(status)
    ended |= {pk for pk, found in statuses.items() if Agreement.Status.ACTIVE not in found}
    return ended


# --- Firm actions ----------------------------------------------------------------------


def administration_create(
    *, firm: Organisation, client: Organisation, name: str, billed_to_firm: bool, user
) -> Administration:
    """The firm creates an extra SB administration for one of its clients (R2, §3.1).

    It counts as one "administration" on the firm's live agreement or, when it
    is billed to the client, on the client's own live agreement. Not idempotent
    on purpose: two administrations with the same name are two administrations.
    """
    name = (name or "").strip()
    if not name:
        raise DomainError(_("Geef de administratie een naam."), code="name_required")
    if len(name) > Administration._meta.get_field("name").max_length:
        raise DomainError(
            _("De naam van de administratie mag hoogstens 200 tekens lang zijn."),
            code="name_too_long",
        )
    component = _component(Kind.STANDARD)
    with transaction.atomic():
        firm = Organisation.objects.get(pk=firm.pk)
        client = Organisation.objects.get(pk=client.pk)
        _require_member(user, firm)
        if not firm.is_accountancy_firm:
            raise DomainError(
                _("Alleen een accountantskantoor kan administraties voor klanten aanmaken."),
                code="not_a_firm",
            )
        if client.accountancy_firm_id != firm.pk:
            raise DomainError(
                _("%(client)s is geen klant van %(firm)s.")
                % {"client": client.legal_name, "firm": firm.legal_name},
                code="not_a_client",
            )
        firm_agreement = _live_agreement_or_error(
            firm,
            _(
                "%(org)s heeft geen lopende overeenkomst. Zonder licentie kun je geen "
                "administraties voor klanten aanmaken."
            ),
        )
        paying = firm_agreement
        if not billed_to_firm:
            paying = _live_agreement_or_error(
                client,
                _(
                    "%(org)s heeft geen lopende overeenkomst waarop de administratie gefactureerd "
                    "kan worden. Kies 'factuur naar kantoor'."
                ),
            )
        paying = _lock_agreements([paying.pk])[paying.pk]
        if not paying.is_live:
            raise Conflict(
                _("Overeenkomst %(number)s is intussen beëindigd. Probeer het opnieuw.")
                % {"number": paying.number},
                code="agreement_terminated",
            )
        administration = Administration.objects.create(
            firm=firm, client=client, agreement=paying, name=name, kind=Kind.STANDARD
        )
        licence_adjust_quantity(
            agreement=paying,
            component=component,
            delta=1,
            source=ChangeSource.ADMINISTRATION,
            actor=user,
            note=_("Administratie '%(name)s' aangemaakt voor %(client)s")
            % {"name": name, "client": client.legal_name},
        )
        _audit(
            "licensing.administration_created",
            administration,
            user,
            organisation_id=firm.pk,
            data={
                "client_id": client.pk,
                "agreement": paying.number,
                "billed_to": "firm" if paying.organisation_id == firm.pk else "client",
            },
        )
    return administration


def administration_convert_to_archive(*, administration: Administration, user) -> Administration:
    """Standard → archive licence: one administration less, one archive more (R17, §3.6.1)."""
    components = _components(Kind.STANDARD, Kind.ARCHIVE)
    with transaction.atomic():
        administration, agreements = _lock(administration)
        _require_member(user, administration.firm)
        if administration.status == Status.ACTIVE and administration.kind == Kind.ARCHIVE:
            return administration
        _require_active(administration)
        if administration.kind != Kind.STANDARD:
            raise Conflict(
                _("Alleen een gewone administratie kan een archieflicentie worden."),
                code="not_standard",
            )
        _refuse_if_transfer_pending(administration)
        paying = _require_live(agreements[administration.agreement_id])
        note = _("Administratie '%(name)s' omgezet naar archieflicentie") % {
            "name": administration.name
        }
        _adjust(paying, components[Kind.STANDARD], -1, user=user, note=note)
        _adjust(paying, components[Kind.ARCHIVE], 1, user=user, note=note)
        administration.kind = Kind.ARCHIVE
        administration.save(update_fields=["kind"])
        _audit("licensing.administration_archived", administration, user)
    return administration


def administration_delete(*, administration: Administration, user) -> Administration:
    """Delete the administration: it stops counting on its paying agreement (R17, §3.6.1)."""
    with transaction.atomic():
        administration, agreements = _lock(administration)
        _require_member(user, administration.firm)
        if administration.status == Status.DELETED:
            return administration
        _require_active(administration)
        _refuse_if_transfer_pending(administration)
        _end(administration, agreements[administration.agreement_id], user=user)
    return administration


# --- After the client terminated (R17 a–c, §3.6.3) ----------------------------------------


def administration_take_view_only(*, administration: Administration, user) -> Administration:
    """R17a: the firm keeps a view-only licence (inkijklicentie: 1 user, view rights only).

    The unit moves from the administration's current kind to "view_only", and
    from whichever agreement paid (possibly the client's) to the firm's own.
    """
    firm_agreement = live_agreement(organisation=_fresh(administration).firm)
    with transaction.atomic():
        extra = [firm_agreement.pk] if firm_agreement else []
        administration, agreements = _lock(administration, extra_agreement_ids=extra)
        _require_member(user, administration.firm)
        if administration.status == Status.ACTIVE and administration.kind == Kind.VIEW_ONLY:
            return administration
        _require_active(administration)
        _require_client_terminated(administration)
        _refuse_if_transfer_pending(administration)
        if firm_agreement is None or firm_agreement.organisation_id != administration.firm_id:
            raise DomainError(
                _("%(org)s heeft geen lopende overeenkomst om de inkijklicentie op te zetten.")
                % {"org": administration.firm.legal_name},
                code="no_live_agreement",
            )
        target = _require_live(agreements[firm_agreement.pk])
        old = agreements[administration.agreement_id]
        components = _components(administration.kind, Kind.VIEW_ONLY)
        note = _("Administratie '%(name)s' omgezet naar inkijklicentie") % {
            "name": administration.name
        }
        _move_unit(
            old,
            components[administration.kind],
            target,
            components[Kind.VIEW_ONLY],
            user=user,
            note=note,
        )
        previous = {"kind": administration.kind, "agreement": old.number}
        administration.kind = Kind.VIEW_ONLY
        administration.agreement = target
        administration.save(update_fields=["kind", "agreement"])
        _audit(
            "licensing.administration_view_only",
            administration,
            user,
            data={"from": previous, "agreement": target.number},
        )
    return administration


def administration_export_and_delete(*, administration: Administration, user) -> Administration:
    """R17b: export the client's administration, then delete it.

    Deletion is refused while ``exported_at`` is empty, so nothing is deleted
    that was not exported first.
    """
    with transaction.atomic():
        administration, agreements = _lock(administration)
        _require_member(user, administration.firm)
        if administration.status == Status.DELETED:
            return administration
        _require_active(administration)
        _require_client_terminated(administration)
        _refuse_if_transfer_pending(administration)
        if administration.exported_at is None:
            # The export artefact itself (Excel/CSV, attachments as one ZIP, R19)
            # is produced by the export service that comes with the privacy work.
            # Until it exists, this records the moment the firm chose to export;
            # the export service will set exported_at once the file is ready, and
            # this assignment then gives way to a call to it.
            administration.exported_at = clock.now()
            administration.save(update_fields=["exported_at"])
            _audit("licensing.administration_exported", administration, user)
        _end(
            administration,
            agreements[administration.agreement_id],
            user=user,
            require_export=True,
        )
    return administration


def administration_transfer_request(
    *, administration: Administration, to_organisation: Organisation, user
) -> AdministrationTransfer:
    """R17c: offer the administration to the client itself or to another accountancy firm.

    The receiving side accepts or declines. Asking again for the same receiver
    returns the open request; a second receiver waits until it is settled.
    """
    with transaction.atomic():
        administration = Administration.objects.select_for_update().get(pk=administration.pk)
        _require_member(user, administration.firm)
        _require_active(administration)
        to_organisation = Organisation.objects.get(pk=to_organisation.pk)
        to_client = to_organisation.pk == administration.client_id
        to_other_firm = (
            to_organisation.is_accountancy_firm and to_organisation.pk != administration.firm_id
        )
        if not (to_client or to_other_firm):
            raise DomainError(
                _(
                    "Een administratie kan alleen naar de klant zelf of naar een ander "
                    "accountantskantoor worden overgedragen."
                ),
                code="invalid_receiver",
            )
        pending = administration.transfers.filter(
            status=AdministrationTransfer.Status.PENDING
        ).first()
        if pending is not None:
            if pending.to_organisation_id == to_organisation.pk:
                return pending
            raise Conflict(
                _(
                    "Er staat al een overdracht open voor deze administratie. Annuleer die "
                    "eerst of wacht op het antwoord."
                ),
                code="transfer_pending",
            )
        transfer = AdministrationTransfer.objects.create(
            administration=administration, to_organisation=to_organisation, requested_by=user
        )
        _audit(
            "licensing.administration_transfer_requested",
            administration,
            user,
            data={"transfer_id": transfer.pk, "to_organisation_id": to_organisation.pk},
        )
        transaction.on_commit(lambda: _mail_transfer_offered(transfer))
    return transfer


def _mail_transfer_offered(transfer: AdministrationTransfer) -> None:
    """The receiving side's beheerders hear of the offer; it waits for their answer."""
    receiver = transfer.to_organisation
    recipients = sorted(
        {
            membership.user.email
            for membership in receiver.memberships.select_related("user")
            if membership.role == "admin" or membership.is_subscription_contact
        }
    )
    if not recipients:
        return
    send_templated_mail(
        to=recipients,
        subject=_("Administratie aangeboden: %(name)s") % {"name": transfer.administration.name},
        template="licensing/email/administration_transfer_offered",
        context={
            "transfer": transfer,
            "firm": transfer.administration.firm,
            "receiver": receiver,
            "portal_url": settings.SITE_URL + reverse("portal:administrations"),
        },
    )


def administration_transfer_accept(
    *, transfer: AdministrationTransfer, user
) -> AdministrationTransfer:
    """The receiving organisation's beheerder takes the administration over (R17c).

    The unit moves from the old paying agreement to the receiver's live
    agreement. To another firm: the administration becomes that firm's, same
    kind. To the client itself: an Administration always belongs to a firm, so
    the row stays with the old firm as "transferred" (ended there, for the
    record), and the client's own licence counts one "administration" more —
    the client goes on with it as an ordinary administration of its own.
    """
    current = AdministrationTransfer.objects.select_related("administration").get(pk=transfer.pk)
    receiving_agreement = live_agreement(organisation=current.to_organisation)
    with transaction.atomic():
        extra = [receiving_agreement.pk] if receiving_agreement else []
        administration, agreements = _lock(current.administration, extra_agreement_ids=extra)
        transfer = AdministrationTransfer.objects.select_for_update().get(pk=transfer.pk)
        to_organisation = transfer.to_organisation
        _require_member(user, to_organisation, role=ADMIN_ROLE)
        if transfer.status == AdministrationTransfer.Status.ACCEPTED:
            return transfer
        _require_transfer_pending(transfer)
        _require_active(administration)
        if (
            receiving_agreement is None
            or receiving_agreement.organisation_id != to_organisation.pk
            or not agreements[receiving_agreement.pk].is_live
        ):
            raise DomainError(
                _(
                    "%(org)s heeft geen lopende overeenkomst. Sluit eerst een licentie af; "
                    "daarna kun je de administratie overnemen."
                )
                % {"org": to_organisation.legal_name},
                code="no_live_agreement",
            )
        target = agreements[receiving_agreement.pk]
        old = agreements[administration.agreement_id]
        to_client = to_organisation.pk == administration.client_id
        new_kind = Kind.STANDARD if to_client else administration.kind
        components = _components(administration.kind, new_kind)
        note = _("Administratie '%(name)s' overgedragen van %(from)s aan %(to)s") % {
            "name": administration.name,
            "from": administration.firm.legal_name,
            "to": to_organisation.legal_name,
        }
        _move_unit(
            old,
            components[administration.kind],
            target,
            components[new_kind],
            user=user,
            note=note,
        )
        previous = {"firm_id": administration.firm_id, "agreement": old.number}
        if to_client:
            administration.status = Status.TRANSFERRED
            administration.ended_at = clock.now()
            administration.save(update_fields=["status", "ended_at"])
        else:
            administration.firm = to_organisation
            administration.agreement = target
            administration.save(update_fields=["firm", "agreement"])
        transfer.status = AdministrationTransfer.Status.ACCEPTED
        transfer.decided_at = clock.now()
        transfer.decided_by = user
        transfer.save(update_fields=["status", "decided_at", "decided_by"])
        _audit(
            "licensing.administration_transfer_accepted",
            administration,
            user,
            organisation_id=to_organisation.pk,
            data={
                "transfer_id": transfer.pk,
                "from": previous,
                "agreement": target.number,
                "to_client": to_client,
            },
        )
    return transfer


def administration_transfer_decline(
    *, transfer: AdministrationTransfer, user
) -> AdministrationTransfer:
    """The receiving organisation's beheerder says no; the administration stays where it is."""
    with transaction.atomic():
        transfer = AdministrationTransfer.objects.select_for_update().get(pk=transfer.pk)
        _require_member(user, transfer.to_organisation, role=ADMIN_ROLE)
        if transfer.status == AdministrationTransfer.Status.DECLINED:
            return transfer
        _require_transfer_pending(transfer)
        _decide(transfer, AdministrationTransfer.Status.DECLINED, user)
        _audit(
            "licensing.administration_transfer_declined",
            transfer.administration,
            user,
            organisation_id=transfer.to_organisation_id,
            data={"transfer_id": transfer.pk},
        )
    return transfer


def administration_transfer_cancel(
    *, transfer: AdministrationTransfer, user
) -> AdministrationTransfer:
    """The firm that asked withdraws its request before the receiver answered."""
    with transaction.atomic():
        transfer = AdministrationTransfer.objects.select_for_update().get(pk=transfer.pk)
        administration = transfer.administration
        _require_member(user, administration.firm)
        if transfer.status == AdministrationTransfer.Status.CANCELLED:
            return transfer
        _require_transfer_pending(transfer)
        _decide(transfer, AdministrationTransfer.Status.CANCELLED, user)
        _audit(
            "licensing.administration_transfer_cancelled",
            administration,
            user,
            data={"transfer_id": transfer.pk},
        )
    return transfer


# --- Helpers -------------------------------------------------------------------------------


def _fresh(administration: Administration) -> Administration:
    return Administration.objects.select_related("firm").get(pk=administration.pk)


def _lock_agreements(ids: Iterable[int]) -> dict[int, Agreement]:
    return {
        a.pk: a
        for a in Agreement.objects.select_for_update().filter(pk__in=set(ids)).order_by("pk")
    }


def _lock(
    administration: Administration, *, extra_agreement_ids: Iterable[int] = ()
) -> tuple[Administration, dict[int, Agreement]]:
    """Lock the paying agreement (and ``extra_agreement_ids``), then the administration.

    Returns the locked administration and the locked agreements by pk. If the
    administration moved to another agreement before the lock, refuse: the
    caller's plan was made for the old one.
    """
    paying_id = (
        Administration.objects.filter(pk=administration.pk)
        .values_list("agreement_id", flat=True)
        .get()
    )
    agreements = _lock_agreements([paying_id, *extra_agreement_ids])
    locked = (
        Administration.objects.select_for_update(of=("self",))
        .select_related("firm", "client")
        .get(pk=administration.pk)
    )
    if locked.agreement_id not in agreements:
        raise Conflict(
            _(
                "De administratie is intussen gewijzigd. Laad de pagina opnieuw en probeer het nog eens."
            ),
            code="administration_changed",
        )
    return locked, agreements


def _component(kind: str) -> Component:
    """The one active catalogue component an administration of ``kind`` counts on."""
    component_kind = Component.Kind(COMPONENT_KIND[kind])
    found = list(Component.objects.filter(kind=component_kind, is_active=True).order_by("pk")[:2])
    if not found:
        raise DomainError(
            _(
                "Er is geen actief licentieonderdeel '%(kind)s' in de catalogus, dus deze "
                "wijziging kan niet worden gefactureerd. Neem contact op met AFAS SB."
            )
            % {"kind": component_kind.label},
            code="component_missing",
        )
    if len(found) > 1:
        raise DomainError(
            _(
                "Er zijn meerdere actieve licentieonderdelen '%(kind)s' in de catalogus, dus het "
                "is niet duidelijk waarop deze wijziging telt. Neem contact op met AFAS SB."
            )
            % {"kind": component_kind.label},
            code="component_ambiguous",
        )
    return found[0]


def _components(*kinds: str) -> dict[str, Component]:
    return {kind: _component(kind) for kind in kinds}


def _adjust(agreement: Agreement, component: Component, delta: int, *, user, note: str) -> None:
    """Count one unit more or less, through the licence ledger.

    A terminated agreement keeps its final counts: they are what it was billed
    for last, and it bills nothing more. Only a live agreement changes.
    """
    if not agreement.is_live:
        return
    licence_adjust_quantity(
        agreement=agreement,
        component=component,
        delta=delta,
        source=ChangeSource.ADMINISTRATION,
        actor=user,
        note=note,
    )


def _move_unit(
    old: Agreement,
    old_component: Component,
    new: Agreement,
    new_component: Component,
    *,
    user,
    note: str,
) -> None:
    if old.pk == new.pk and old_component.pk == new_component.pk:
        return  # nothing moves: no −1/+1 pair in the history
    _adjust(old, old_component, -1, user=user, note=note)
    _adjust(new, new_component, 1, user=user, note=note)


def _end(
    administration: Administration, paying: Agreement, *, user, require_export: bool = False
) -> None:
    if require_export and administration.exported_at is None:
        raise Conflict(
            _("Exporteer de administratie eerst; pas daarna kan hij worden verwijderd."),
            code="not_exported",
        )
    _adjust(
        paying,
        _component(administration.kind),
        -1,
        user=user,
        note=_("Administratie '%(name)s' verwijderd") % {"name": administration.name},
    )
    administration.status = Status.DELETED
    administration.ended_at = clock.now()
    administration.save(update_fields=["status", "ended_at"])
    _audit(
        "licensing.administration_deleted",
        administration,
        user,
        data={"kind": administration.kind, "agreement": paying.number},
    )


def _decide(transfer: AdministrationTransfer, status: str, user) -> None:
    transfer.status = status
    transfer.decided_at = clock.now()
    transfer.decided_by = user
    transfer.save(update_fields=["status", "decided_at", "decided_by"])


def _live_agreement_or_error(organisation: Organisation, message: str) -> Agreement:
    agreement = live_agreement(organisation=organisation)
    if agreement is None:
        raise DomainError(message % {"org": organisation.legal_name}, code="no_live_agreement")
    return agreement


def _require_live(agreement: Agreement) -> Agreement:
    if not agreement.is_live:
        raise Conflict(
            _("Overeenkomst %(number)s is beëindigd; daarop kan niets meer veranderen.")
            % {"number": agreement.number},
            code="agreement_terminated",
        )
    return agreement


def _require_active(administration: Administration) -> None:
    if administration.status != Status.ACTIVE:
        raise Conflict(
            _("Administratie '%(name)s' is %(status)s; daarmee kan niets meer.")
            % {"name": administration.name, "status": administration.get_status_display().lower()},
            code="administration_ended",
        )


def _require_client_terminated(administration: Administration) -> None:
    client = administration.client
    if client is None or client.pk not in terminated_client_ids(clients=[client]):
        raise Conflict(
            _(
                "Dit kan pas als de klant de licentie heeft opgezegd. Tot dan kun je de "
                "administratie omzetten naar een archieflicentie of verwijderen."
            ),
            code="client_not_terminated",
        )


def _refuse_if_transfer_pending(administration: Administration) -> None:
    if administration.transfers.filter(status=AdministrationTransfer.Status.PENDING).exists():
        raise Conflict(
            _("Er staat een overdracht open voor deze administratie. Annuleer die eerst."),
            code="transfer_pending",
        )


def _require_transfer_pending(transfer: AdministrationTransfer) -> None:
    if transfer.status != AdministrationTransfer.Status.PENDING:
        raise Conflict(
            _("Deze overdracht is al afgehandeld (%(status)s).")
            % {"status": transfer.get_status_display().lower()},
            code="transfer_settled",
        )


def _require_member(user, organisation: Organisation, *, role: str | None = None) -> None:
    """The person acts for ``organisation``: a member (with ``role``, if given), or staff.

    The portal checks roles before it calls; this keeps a service called from
    anywhere else from acting for another organisation. Staff act from the
    back office on the customer's instruction (R27).
    """
    if user is not None and getattr(user, "is_staff", False):
        return
    memberships = user.memberships.filter(organisation_id=organisation.pk) if user else None
    if role is not None and memberships is not None:
        memberships = memberships.filter(role=role)
    if memberships is None or not memberships.exists():
        if role == ADMIN_ROLE:
            message = _("Alleen een beheerder van %(org)s kan dit beslissen.")
        else:
            message = _("Je hebt geen toegang tot de administraties van %(org)s.")
        raise PermissionDenied(message % {"org": organisation.legal_name})


def _audit(
    action: str,
    administration: Administration,
    user,
    *,
    organisation_id: int | None = None,
    data: dict | None = None,
) -> None:
    audit_record(
        action=action,
        actor_kind=actor_kind_for(user),
        actor_user=user,
        organisation_id=organisation_id or administration.firm_id,
        target=administration,
        data={"name": administration.name, "client_id": administration.client_id, **(data or {})},
    )
