"""SEPA mandates (R12): signing, replacing, sequence types, references, creditor id."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from afas_sb.audit.models import AuditEvent
from afas_sb.errors import DomainError
from billing.models import Mandate
from billing.models.mandates import SEPA_REFERENCE_RE, mask_iban, validate_sepa_reference
from billing.services.mandates import (
    FRST,
    RCUR,
    creditor_id_is_valid,
    direct_customer_needs_mandate,
    mandate_active_for,
    mandate_invalidate,
    mandate_record_collection,
    mandate_required_but_missing,
    mandate_revoke,
    mandate_sequence_type,
    mandate_sign,
    mandates_invalidate,
    next_mandate_reference,
    sepa_creditor_id,
)
from tests.factories import FirmFactory, OrganisationFactory, UserFactory

from .builders import firm_client

pytestmark = pytest.mark.django_db

NL_IBAN = "NL91ABNA0417164300"
BE_IBAN = "BE71096123456769"
DE_IBAN = "DE89370400440532013000"


def sign(organisation, iban=NL_IBAN, *, accepted=True, user=None, **extra):
    return mandate_sign(
        organisation=organisation,
        account_holder=extra.pop("account_holder", "J. de Vries"),
        iban=iban,
        accepted=accepted,
        user=user or UserFactory(),
        ip=extra.pop("ip", "192.0.2.10"),
        **extra,
    )


def test_r12_sign_valid_dutch_iban_derives_bic_and_records_time_ip_text(time_machine):
    time_machine.move_to(datetime(2027, 3, 4, 9, 30, tzinfo=UTC), tick=False)
    organisation = OrganisationFactory()
    user = UserFactory()

    mandate = sign(organisation, "nl91 abna 0417 1643 00", user=user, ip="2001:db8::1")

    assert mandate.status == Mandate.Status.ACTIVE
    assert mandate.iban == NL_IBAN  # stored compact
    assert mandate.bic == "ABNANL2A"
    assert mandate.reference == f"SB-{organisation.pk}-1"
    assert mandate.signed_at == datetime(2027, 3, 4, 9, 30, tzinfo=UTC)
    assert mandate.signed_by == user
    assert mandate.signed_ip == "2001:db8::1"
    assert "Doorlopende machtiging SEPA" in mandate.mandate_text
    assert mandate.reference in mandate.mandate_text
    assert sepa_creditor_id() in mandate.mandate_text
    assert mandate_sequence_type(mandate) == FRST
    event = AuditEvent.objects.get(action="mandate.signed")
    assert event.organisation_id == organisation.pk
    assert NL_IBAN not in str(event.data)  # only the masked IBAN in the audit trail


def test_r12_sign_valid_belgian_iban_derives_bic():
    mandate = sign(OrganisationFactory(), BE_IBAN)

    assert mandate.iban == BE_IBAN
    assert mandate.bic == "GKCCBEBB"


def test_r12_sign_keeps_entered_bic_when_it_cannot_be_derived():
    mandate = sign(OrganisationFactory(), "BE68539007547034", bic="hbkabe22")

    assert mandate.bic == "HBKABE22"


@pytest.mark.parametrize(
    ("iban", "code", "words"),
    [
        ("NL91ABNA0417164301", "iban_invalid", "Dit IBAN klopt niet"),
        ("NL91", "iban_invalid", "Dit IBAN klopt niet"),
        ("", "iban_invalid", "Dit IBAN klopt niet"),
        ("TR330006100519786457841326", "iban_not_sepa", "SEPA-land"),
        ("BR1800360305000010009795493C1", "iban_not_sepa", "SEPA-land"),
    ],
)
def test_r12_sign_invalid_or_non_sepa_iban_is_refused_in_dutch_and_nothing_stored(
    iban, code, words
):
    organisation = OrganisationFactory()

    with pytest.raises(DomainError) as exc:
        sign(organisation, iban)

    assert exc.value.code == code
    assert words in exc.value.message
    assert not Mandate.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="mandate.").exists()


def test_r12_sign_without_acceptance_is_refused_and_nothing_stored():
    with pytest.raises(DomainError) as exc:
        sign(OrganisationFactory(), accepted=False)

    assert exc.value.code == "mandate_not_accepted"
    assert "Ga akkoord met de machtigingstekst" in exc.value.message
    assert not Mandate.objects.exists()


def test_r12_sign_without_account_holder_is_refused():
    with pytest.raises(DomainError, match="rekeninghouder"):
        sign(OrganisationFactory(), account_holder="   ")

    assert not Mandate.objects.exists()


def test_r12_sign_wrong_entered_bic_is_refused():
    with pytest.raises(DomainError, match="BIC klopt niet"):
        sign(OrganisationFactory(), "BE68539007547034", bic="XX")

    assert not Mandate.objects.exists()


def test_r12_same_iban_again_returns_the_active_mandate_unchanged():
    organisation = OrganisationFactory()
    first = sign(organisation, NL_IBAN)

    again = sign(organisation, "NL91 ABNA 0417 1643 00", account_holder="Iemand Anders")

    assert again.pk == first.pk
    assert Mandate.objects.count() == 1
    first.refresh_from_db()
    assert first.account_holder == "J. de Vries"
    assert AuditEvent.objects.filter(action="mandate.signed").count() == 1


def test_r12_new_iban_makes_new_mandate_with_frst_and_replaces_the_old_one():
    organisation = OrganisationFactory()
    old = sign(organisation, NL_IBAN)
    mandate_record_collection(mandate=old)
    assert mandate_sequence_type(Mandate.objects.get(pk=old.pk)) == RCUR

    new = sign(organisation, DE_IBAN)

    old.refresh_from_db()
    assert old.status == Mandate.Status.REPLACED
    assert old.ended_at is not None
    assert new.status == Mandate.Status.ACTIVE
    assert new.reference == f"SB-{organisation.pk}-2"
    assert new.reference != old.reference
    assert new.amends == old
    assert mandate_sequence_type(new) == FRST
    assert mandate_active_for(organisation=organisation) == new


def test_r12_sequence_is_frst_until_first_collection_then_rcur(time_machine):
    time_machine.move_to(datetime(2027, 2, 1, 8, 0, tzinfo=UTC), tick=False)
    mandate = sign(OrganisationFactory())
    assert mandate_sequence_type(mandate) == FRST

    collected = mandate_record_collection(mandate=mandate)
    again = mandate_record_collection(
        mandate=mandate, collected_at=datetime(2027, 3, 1, tzinfo=UTC)
    )

    assert mandate_sequence_type(collected) == RCUR
    assert again.first_collected_at == datetime(2027, 2, 1, 8, 0, tzinfo=UTC)  # first one kept
    assert AuditEvent.objects.filter(action="mandate.first_collected").count() == 1


def test_r12_revoke_ends_the_active_mandate_once():
    organisation = OrganisationFactory()
    mandate = sign(organisation)

    mandate_revoke(mandate=mandate)
    mandate_revoke(mandate=mandate)

    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.REVOKED
    assert mandate_required_but_missing(organisation=organisation) is True
    assert AuditEvent.objects.filter(action="mandate.revoked").count() == 1


@pytest.mark.parametrize("code", ["AC04", "md07"])
def test_r12_invalidate_keeps_the_return_reason(code):
    organisation = OrganisationFactory()
    mandate = sign(organisation)

    mandate_invalidate(mandate=mandate, reason_code=code)

    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.INVALID
    assert mandate.invalid_reason == code.upper()
    assert mandate_active_for(organisation=organisation) is None
    # A new, valid account can be signed afterwards.
    assert sign(organisation, BE_IBAN).reference == f"SB-{organisation.pk}-2"


def test_r12_invalidating_many_mandates_ends_the_active_ones_with_one_audit_row_each():
    """The bulk service the bank import uses for a statement full of AC04s, and the one
    ``mandate_invalidate`` goes through: the same outcome for one mandate or many."""
    staff = UserFactory(is_staff=True)
    active = [sign(OrganisationFactory()) for _ in range(3)]
    replaced = sign(active[0].organisation, BE_IBAN)  # replaces active[0]
    active[0].refresh_from_db()

    ended = mandates_invalidate(
        codes={active[0].pk: "AC04", active[1].pk: " md07 ", active[2].pk: "AC04"}, actor=staff
    )
    mandate_invalidate(mandate=replaced, reason_code="AC01", actor=staff)

    assert sorted(ended) == [active[1].pk, active[2].pk]
    assert dict(Mandate.objects.values_list("pk", "status")) == {
        active[0].pk: Mandate.Status.REPLACED,
        active[1].pk: Mandate.Status.INVALID,
        active[2].pk: Mandate.Status.INVALID,
        replaced.pk: Mandate.Status.INVALID,
    }
    assert Mandate.objects.get(pk=active[1].pk).invalid_reason == "MD07"
    events = AuditEvent.objects.filter(action="mandate.invalidated").order_by("object_id")
    assert [(e.object_id, e.data["code"], e.actor_user) for e in events] == sorted(
        [
            (str(active[1].pk), "MD07", staff),
            (str(active[2].pk), "AC04", staff),
            (str(replaced.pk), "AC01", staff),
        ]
    )
    assert events[0].reason.startswith("Incassomachtiging ongeldig")


def test_r12_invalidating_many_mandates_takes_the_same_number_of_queries():
    def queries(count: int) -> int:
        mandates = [sign(OrganisationFactory()) for _ in range(count)]
        with CaptureQueriesContext(connection) as captured:
            mandates_invalidate(codes={m.pk: "AC04" for m in mandates})
        return len(captured)

    assert queries(2) == queries(6)


def test_r12_invalidate_needs_a_reason_code():
    mandate = sign(OrganisationFactory())

    with pytest.raises(DomainError):
        mandate_invalidate(mandate=mandate, reason_code=" ")

    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.ACTIVE


def test_r12_terminated_organisation_cannot_sign():
    organisation = OrganisationFactory(status="terminated")

    with pytest.raises(DomainError):
        sign(organisation)

    assert not Mandate.objects.exists()


def test_r12_direct_entrepreneur_needs_a_mandate_firm_and_firm_billed_client_do_not():
    direct = OrganisationFactory()
    firm, billed_client = firm_client(billed_via_firm=True)
    _firm, self_paying_client = firm_client(billed_via_firm=False)

    assert direct_customer_needs_mandate(direct) is True
    assert direct_customer_needs_mandate(self_paying_client) is True
    assert direct_customer_needs_mandate(billed_client) is False
    assert direct_customer_needs_mandate(firm) is False
    assert direct_customer_needs_mandate(FirmFactory()) is False


def test_r12_mandate_required_but_missing_until_signed():
    direct = OrganisationFactory()
    _firm, billed_client = firm_client()

    assert mandate_required_but_missing(organisation=direct) is True
    assert mandate_required_but_missing(organisation=billed_client) is False
    sign(direct)
    assert mandate_required_but_missing(organisation=direct) is False


def test_r12_firm_may_sign_a_mandate_too():
    firm = FirmFactory()

    mandate = sign(firm)

    assert mandate.is_active
    assert mandate_required_but_missing(organisation=firm) is False


def test_mandate_one_active_per_organisation_is_a_database_constraint():
    organisation = OrganisationFactory()
    first = sign(organisation)

    with pytest.raises(IntegrityError), transaction.atomic():
        Mandate.objects.create(
            organisation=organisation,
            reference="SB-X-1",
            account_holder="X",
            iban=DE_IBAN,
            signed_at=first.signed_at,
            mandate_text="x",
        )
    # A replaced one next to the active one is fine.
    Mandate.objects.create(
        organisation=organisation,
        reference="SB-X-2",
        account_holder="X",
        iban=DE_IBAN,
        signed_at=first.signed_at,
        mandate_text="x",
        status=Mandate.Status.REPLACED,
    )


def test_mandate_reference_is_unique_in_the_database():
    first = sign(OrganisationFactory())

    with pytest.raises(IntegrityError), transaction.atomic():
        Mandate.objects.create(
            organisation=OrganisationFactory(),
            reference=first.reference,
            account_holder="X",
            iban=DE_IBAN,
            signed_at=first.signed_at,
            mandate_text="x",
        )


@hypothesis_settings(max_examples=60, deadline=None)
@given(organisation_id=st.integers(min_value=1, max_value=10**15), count=st.integers(0, 10**6))
def test_mandate_reference_uses_only_sepa_characters(organisation_id, count):
    organisation = OrganisationFactory.build(pk=organisation_id)
    reference = next_mandate_reference(organisation=organisation)
    reference_later = f"SB-{organisation_id}-{count + 1}"  # what the n-th mandate gets

    for value in (reference, reference_later):
        assert SEPA_REFERENCE_RE.match(value)
        assert len(value) <= 35
        validate_sepa_reference(value)


@pytest.mark.parametrize("bad", ["SB_1", "SB-1-é", "/SB-1", "SB-1/", "SB//1", "", "x" * 36])
def test_mandate_reference_validator_refuses_non_sepa_references(bad):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        validate_sepa_reference(bad)


def test_creditor_id_validation():
    assert creditor_id_is_valid("NL69ZZZ123456780000")
    assert creditor_id_is_valid("DE98ZZZ09999999999")
    assert not creditor_id_is_valid("NL98ZZZ123456780000")  # wrong check digits
    assert not creditor_id_is_valid("")
    assert not creditor_id_is_valid("NL69ZZZ")


def test_creditor_id_setting_is_read_and_a_wrong_one_refused(settings):
    settings.SEPA_CREDITOR_ID = "nl69 zzz 12345678 0000"
    assert sepa_creditor_id() == "NL69ZZZ123456780000"

    settings.SEPA_CREDITOR_ID = "NL98ZZZ123456780000"
    with pytest.raises(ImproperlyConfigured):
        sepa_creditor_id()


def test_mask_iban_shows_only_the_last_four():
    assert mask_iban(NL_IBAN) == "•••• •••• •••• 4300"
    assert "ABNA" not in mask_iban(NL_IBAN)
    assert mask_iban("") == ""
