"""SEPA direct debit mandates: signing, replacing, revoking, invalidating (R12, terms §3.3).

Every change is one transaction under the organisation's row lock (the same
lock order as the other billing services: organisation first, then its
mandates), re-checks the state, saves with update_fields and writes an audit
row. The IBAN is validated with schwifty; the creditor identifier with
python-stdnum (``eu.at_02``). See billing/models/mandates.py for why a new
IBAN makes a new mandate (FRST) rather than an amendment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.translation import gettext as _
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.eu import at_02

from afas_sb import clock
from afas_sb.audit.models import ActorKind, AuditEvent
from afas_sb.audit.services import actor_kind_for, audit_record
from afas_sb.errors import DomainError
from licensing.models import Agreement, Organisation

from ..models.mandates import Mandate, mask_iban
from .bulk import among, audit_row, batched, insert_rows

DEFAULT_CREDITOR_ID = "NL69ZZZ123456780000"  # NL + check digits + ZZZ + KvK 12345678 + 0000
FRST = "FRST"
RCUR = "RCUR"
ACCOUNT_HOLDER_MAX = 70  # SEPA name field (AT-14)


# --- Creditor ------------------------------------------------------------------------


def creditor_id_is_valid(value: str) -> bool:
    """A SEPA creditor identifier (e.g. NLccZZZ + KvK + 4-digit suffix), check digits included."""
    return bool(value) and at_02.is_valid(value)


def sepa_creditor_id() -> str:
    """settings.SEPA_CREDITOR_ID, compact; a wrong one stops debits instead of reaching the bank."""
    value = at_02.compact(getattr(settings, "SEPA_CREDITOR_ID", DEFAULT_CREDITOR_ID) or "")
    if not creditor_id_is_valid(value):
        raise ImproperlyConfigured(f"SEPA_CREDITOR_ID {value!r} is not a valid creditor identifier")
    return value


def creditor_name() -> str:
    return settings.VENDOR_NAME


def mandate_text_for(*, organisation: Organisation, reference: str) -> str:
    """The Dutch 'Doorlopende machtiging SEPA' the customer accepts; snapshotted on the mandate."""
    return _(
        "Doorlopende machtiging SEPA\n"
        "\n"
        "Naam incassant: %(creditor)s\n"
        "Adres: %(street)s, %(postcode)s %(city)s\n"
        "Incassant ID: %(creditor_id)s\n"
        "Kenmerk machtiging: %(reference)s\n"
        "Reden betaling: abonnement AFAS SB van %(organisation)s\n"
        "\n"
        "Door ondertekening van deze machtiging geef je toestemming aan %(creditor)s om "
        "doorlopende incasso-opdrachten te sturen naar je bank om een bedrag van je rekening "
        "af te schrijven en aan je bank om doorlopend een bedrag van je rekening af te schrijven "
        "overeenkomstig de opdracht van de incassant.\n"
        "\n"
        "Als je het niet eens bent met een afschrijving kun je deze laten terugboeken. Neem "
        "hiervoor binnen acht weken na afschrijving contact op met je bank. Vraag je bank naar "
        "de voorwaarden.\n"
        "\n"
        "Je ontvangt ten minste %(days)s dagen vooraf een factuur of e-mail met het bedrag, "
        "de incassodatum en dit kenmerk."
    ) % {
        "days": settings.SEPA_PRENOTIFICATION_DAYS,
        "creditor": creditor_name(),
        "street": settings.VENDOR_STREET,
        "postcode": settings.VENDOR_POSTCODE,
        "city": settings.VENDOR_CITY,
        "creditor_id": sepa_creditor_id(),
        "reference": reference,
        "organisation": organisation.legal_name,
    }


# --- Reads ---------------------------------------------------------------------------


def mandate_active_for(*, organisation: Organisation) -> Mandate | None:
    return (
        Mandate.objects.filter(organisation=organisation, status=Mandate.Status.ACTIVE)
        .select_related("signed_by")
        .first()
    )


def next_mandate_reference(*, organisation: Organisation) -> str:
    """'SB-<organisation id>-<n>': SEPA characters only.

    Unique because n counts this organisation's mandates, taken under its row lock.
    """
    count = Mandate.objects.filter(organisation=organisation).count()
    return f"SB-{organisation.pk}-{count + 1}"


def mandate_sequence_type(mandate: Mandate) -> str:
    """FRST until a debit on this mandate was collected, RCUR after (SEPA sequence rules).

    A rejected FRST never counts as collected, and a returned one does not either:
    when the bank books the collection first and the return later, settling the
    return makes the mandate unused again if nothing else was collected on it
    (``billing.services.settlement``). So the next attempt is FRST again, in
    whichever order the bank reports them.
    """
    return RCUR if mandate.first_collected_at is not None else FRST


def direct_customer_needs_mandate(organisation: Organisation) -> bool:
    """R12: an entrepreneur billed directly pays by mandatory direct debit.

    A client billed via its accountancy firm does not pay us itself, and a firm
    may pay by debit or by transfer.
    """
    return (
        organisation.kind == Organisation.Kind.ENTREPRENEUR and organisation.billed_via_id is None
    )


def mandate_required_but_missing(*, organisation: Organisation) -> bool:
    return (
        direct_customer_needs_mandate(organisation)
        and not Mandate.objects.filter(
            organisation=organisation, status=Mandate.Status.ACTIVE
        ).exists()
    )


def require_mandate_for_agreement(*, organisation: Organisation) -> None:
    """R12: a direct customer's agreement starts only with an active mandate.

    Registered with licensing in BillingConfig.ready(); agreement_create calls it
    under the organisation's row lock.
    """
    if mandate_required_but_missing(organisation=organisation):
        raise DomainError(
            _(
                "Een ondernemer die zelf betaalt, betaalt via automatische incasso: geef eerst "
                "een incassomachtiging af (Betaalgegevens) voordat de licentie ingaat."
            ),
            code="mandate_required",
        )


def _has_live_agreement(organisation: Organisation) -> bool:
    return Agreement.objects.filter(
        organisation=organisation,
        status__in=[Agreement.Status.ACTIVE, Agreement.Status.TERMINATING],
    ).exists()


# --- Validation ----------------------------------------------------------------------


def clean_iban(value: str) -> IBAN:
    """A valid IBAN of a SEPA country, or a DomainError in Dutch."""
    try:
        iban = IBAN(value or "")
    except SchwiftyException:
        raise DomainError(
            _("Dit IBAN klopt niet. Controleer het rekeningnummer en probeer het opnieuw."),
            code="iban_invalid",
        ) from None
    if not iban.in_sepa_zone:
        raise DomainError(
            _(
                "Automatische incasso kan alleen van een rekening in een SEPA-land. "
                "Kies een rekening binnen het SEPA-gebied."
            ),
            code="iban_not_sepa",
        )
    return iban


def _bic_for(iban: IBAN, entered: str) -> str:
    """The BIC from the IBAN's bank code where known, else the one entered (optional in SEPA)."""
    derived = iban.bic
    if derived is not None:
        return str(derived)
    entered = (entered or "").replace(" ", "").upper()
    if not entered:
        return ""
    try:
        return str(BIC(entered))
    except SchwiftyException:
        raise DomainError(
            _("Deze BIC klopt niet. Laat het veld leeg als je hem niet weet."), code="bic_invalid"
        ) from None


# --- Writes --------------------------------------------------------------------------


def mandate_sign(
    *,
    organisation: Organisation,
    account_holder: str,
    iban: str,
    accepted: bool,
    user,
    ip: str | None,
    bic: str = "",
) -> Mandate:
    """Record an e-mandate. The same IBAN again returns the active mandate unchanged;
    another IBAN makes a new mandate (FRST) and the previous one becomes "replaced".
    """
    if not accepted:
        raise DomainError(
            _("Ga akkoord met de machtigingstekst om de incassomachtiging af te geven."),
            code="mandate_not_accepted",
        )
    account_holder = " ".join((account_holder or "").split())
    if not account_holder:
        raise DomainError(_("Vul de naam van de rekeninghouder in."), code="holder_missing")
    if len(account_holder) > ACCOUNT_HOLDER_MAX:
        raise DomainError(
            _("De naam van de rekeninghouder is te lang (hooguit %(max)s tekens).")
            % {"max": ACCOUNT_HOLDER_MAX},
            code="holder_too_long",
        )
    parsed = clean_iban(iban)
    compact = parsed.compact
    bic_value = _bic_for(parsed, bic)

    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if not organisation.is_active:
            raise DomainError(
                _("De licentie van deze organisatie is beëindigd; een machtiging is niet nodig."),
                code="organisation_terminated",
            )
        previous = (
            Mandate.objects.select_for_update()
            .filter(organisation=organisation, status=Mandate.Status.ACTIVE)
            .first()
        )
        if previous is not None and previous.iban == compact:
            return previous
        now = clock.now()
        if previous is not None:
            # First free the "one active mandate" slot, then take it.
            previous.status = Mandate.Status.REPLACED
            previous.ended_at = now
            previous.save(update_fields=["status", "ended_at"])
        reference = next_mandate_reference(organisation=organisation)
        mandate = Mandate(
            organisation=organisation,
            reference=reference,
            account_holder=account_holder,
            iban=compact,
            bic=bic_value,
            signed_at=now,
            signed_by=user if user is not None and user.pk else None,
            signed_ip=ip or None,
            mandate_text=mandate_text_for(organisation=organisation, reference=reference),
            amends=previous,
        )
        mandate.full_clean(exclude=["organisation", "signed_by", "amends"])
        mandate.save()
        audit_record(
            action="mandate.signed",
            actor_kind=actor_kind_for(user),
            actor_user=user,
            organisation_id=organisation.pk,
            target=mandate,
            reason=_("Incassomachtiging afgegeven"),
            # Never the full IBAN in the audit trail: the mandate row holds it.
            data={
                "reference": reference,
                "iban": mask_iban(compact),
                "replaces": previous.reference if previous else None,
                "ip": ip or None,
            },
        )
    return mandate


def mandate_revoke(
    *,
    mandate: Mandate,
    actor=None,
    reason: str = "",
    allow_without_replacement: bool = False,
) -> Mandate:
    """The customer (or staff on its behalf) withdraws the mandate; no more debits on it.

    R12: a direct customer with a live agreement pays by direct debit, so its
    active mandate is not withdrawn without a new one; it changes account by
    signing a new mandate, which replaces this one. Staff may still revoke with
    ``allow_without_replacement=True`` (e.g. a legal or fraud case).
    """
    check = None if allow_without_replacement else _refuse_revoke_while_debit_required
    text = reason or _("Incassomachtiging ingetrokken")
    _mandates_end(
        codes={mandate.pk: ""},
        status=Mandate.Status.REVOKED,
        action="mandate.revoked",
        actor=actor,
        reason=lambda _code: text,
        check=check,
    )
    return Mandate.objects.get(pk=mandate.pk)


def _refuse_revoke_while_debit_required(organisation: Organisation) -> None:
    if direct_customer_needs_mandate(organisation) and _has_live_agreement(organisation):
        raise DomainError(
            _(
                "Een ondernemer die zelf betaalt, betaalt via automatische incasso zolang de "
                "licentie loopt. Wil je een andere rekening gebruiken? Geef dan een nieuwe "
                "machtiging af; die vervangt deze."
            ),
            code="mandate_needed",
        )


def mandate_invalidate(*, mandate: Mandate, reason_code: str, actor=None) -> Mandate:
    """The bank says the mandate cannot be used (e.g. AC04 closed account, MD07 debtor deceased)."""
    code = (reason_code or "").strip().upper()
    if not code:
        raise DomainError(_("Geef de reden op waarom de machtiging ongeldig is."), code="no_reason")
    mandates_invalidate(codes={mandate.pk: code}, actor=actor)
    return Mandate.objects.get(pk=mandate.pk)


def mandates_invalidate(*, codes: Mapping[int, str], actor=None, at=None) -> list[int]:
    """``mandate_invalidate`` for many mandates at once (key -> the bank's reason code), as
    a bank statement with thousands of returns needs: the same locks and checks, a few
    queries for all. Returns the keys of the mandates that ended (those still active)."""
    return _mandates_end(
        codes={pk: ((code or "").strip().upper() or "?")[:35] for pk, code in codes.items()},
        status=Mandate.Status.INVALID,
        action="mandate.invalidated",
        actor=actor,
        reason=lambda code: _("Incassomachtiging ongeldig: %(code)s") % {"code": code},
        at=at,
    )


def mandate_record_collection(*, mandate: Mandate, collected_at=None) -> Mandate:
    """A debit on this mandate was collected: from now on its sequence type is RCUR. Repeats are harmless."""
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=mandate.organisation_id)
        mandate = Mandate.objects.select_for_update().get(pk=mandate.pk)
        if mandate.first_collected_at is not None:
            return mandate
        mandate.first_collected_at = collected_at or clock.now()
        mandate.save(update_fields=["first_collected_at"])
        audit_record(
            action="mandate.first_collected",
            organisation_id=mandate.organisation_id,
            target=mandate,
            data={"reference": mandate.reference},
        )
    return mandate


def _mandates_end(
    *,
    codes: Mapping[int, str],
    status: str,
    action: str,
    actor,
    reason: Callable[[str], str],
    check: Callable[[Organisation], None] | None = None,
    at=None,
) -> list[int]:
    """End the mandates of ``codes`` (key -> reason code for ``invalid_reason``, or "")
    that are still active; a replaced, revoked or invalid one stays as it is.

    One transaction: the organisations are locked, then the mandates, each in key
    order (the order of every mandate service); ``check(organisation)`` may refuse
    with a DomainError, seeing the locked state. One audit row per mandate ended.
    """
    ids = sorted(codes)
    if not ids:
        return []
    at = at or clock.now()
    user_id = actor.pk if actor is not None and actor.pk else None
    actor_kind = actor_kind_for(actor) if actor is not None else ActorKind.SYSTEM
    ending: dict[str, list[int]] = defaultdict(list)
    with transaction.atomic():
        organisation_ids: set[int] = set()
        for part in batched(ids):
            organisation_ids.update(
                Mandate.objects.filter(among("pk", part)).values_list("organisation_id", flat=True)
            )
        organisations: dict[int, Organisation] = {}
        for part in batched(sorted(organisation_ids)):
            locked = (
                Organisation.objects.select_for_update().filter(among("pk", part)).order_by("pk")
            )
            if check is None:
                list(locked.values_list("pk", flat=True))
            else:
                organisations.update((organisation.pk, organisation) for organisation in locked)
        audits = []
        for part in batched(ids):
            active = (
                Mandate.objects.select_for_update()
                .filter(among("pk", part), status=Mandate.Status.ACTIVE)
                .order_by("pk")
                .values_list("pk", "organisation_id", "reference")
            )
            for pk, organisation_id, reference in active:
                if check is not None:
                    check(organisations[organisation_id])
                code = codes[pk]
                ending[code].append(pk)
                audits.append(
                    audit_row(
                        action,
                        Mandate,
                        pk,
                        organisation_id=organisation_id,
                        actor_kind=actor_kind,
                        user_id=user_id,
                        reason=reason(code),
                        data={"reference": reference, "code": code or None},
                        at=at,
                    )
                )
        for code, pks in ending.items():
            fields = {"status": status, "ended_at": at}
            if code:
                fields["invalid_reason"] = code
            for part in batched(pks):
                Mandate.objects.filter(among("pk", part)).update(**fields)
        insert_rows(AuditEvent, audits)
    return [pk for pks in ending.values() for pk in pks]
