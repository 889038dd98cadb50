"""SEPA direct debit mandates: signing, replacing, revoking, invalidating (R12, terms §3.3).

Every change is one transaction under the organisation's row lock (the same
lock order as the other billing services: organisation first, then its
mandates), re-checks the state, saves with update_fields and writes an audit
row. The IBAN is validated with schwifty; the creditor identifier with
python-stdnum (``eu.at_02``). See billing/models/mandates.py for why a new
IBAN makes a new mandate (FRST) rather than an amendment.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.translation import gettext as _
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.eu import at_02

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import actor_kind_for, audit_record
from afas_sb.errors import DomainError
from licensing.models import Agreement, Organisation

from ..models.mandates import Mandate, mask_iban

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

    A returned or rejected FRST does not count as collected, so the next attempt is FRST again.
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
    return _mandate_end(
        mandate=mandate,
        status=Mandate.Status.REVOKED,
        action="mandate.revoked",
        actor_kind=actor_kind_for(actor) if actor is not None else ActorKind.SYSTEM,
        actor=actor,
        reason=reason or _("Incassomachtiging ingetrokken"),
        check=check,
    )


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
    return _mandate_end(
        mandate=mandate,
        status=Mandate.Status.INVALID,
        action="mandate.invalidated",
        actor_kind=actor_kind_for(actor) if actor is not None else ActorKind.SYSTEM,
        actor=actor,
        reason=_("Incassomachtiging ongeldig: %(code)s") % {"code": code},
        invalid_reason=code[:35],
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


def _mandate_end(
    *, mandate, status, action, actor_kind, actor, reason, invalid_reason="", check=None
) -> Mandate:
    """``check(organisation)`` may refuse with a DomainError, seeing the locked state."""
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=mandate.organisation_id)
        mandate = Mandate.objects.select_for_update().get(pk=mandate.pk)
        # Only the active mandate ends; a replaced, revoked or invalid one stays as it is.
        if mandate.status != Mandate.Status.ACTIVE:
            return mandate
        if check is not None:
            check(organisation)
        mandate.status = status
        mandate.ended_at = clock.now()
        fields = ["status", "ended_at"]
        if invalid_reason:
            mandate.invalid_reason = invalid_reason
            fields.append("invalid_reason")
        mandate.save(update_fields=fields)
        audit_record(
            action=action,
            actor_kind=actor_kind,
            actor_user=actor,
            organisation_id=mandate.organisation_id,
            target=mandate,
            reason=reason,
            data={"reference": mandate.reference, "code": invalid_reason or None},
        )
    return mandate
