"""R12: a direct customer has no active agreement without a valid mandate; firms choose.

The rule sits in billing (billing/services/mandates.py) and reaches licensing's
agreement_create through licensing/hooks.py, so licensing never imports billing.
"""

import io
import threading
from datetime import date

import pytest
from django.core.management import call_command

from afas_sb.audit.models import AuditEvent
from afas_sb.errors import DomainError
from billing.models import Mandate
from billing.services.mandates import (
    direct_customer_needs_mandate,
    mandate_active_for,
    mandate_invalidate,
    mandate_revoke,
    mandate_sign,
)
from licensing.models import Agreement, LicenceLine, Organisation, Termination
from licensing.services.agreements import agreement_create
from licensing.services.terminations import (
    agreement_terminate_by_customer,
    agreement_terminate_by_vendor,
    agreements_end_at_agreed_date,
)
from tests.concurrency import Worker, hold_after, signal_before
from tests.factories import (
    FirmFactory,
    MembershipFactory,
    OrganisationFactory,
    give_mandate,
    make_catalogue,
)

from .builders import firm_client

NEW_IBAN = "NL20INGB0001234567"
REFUSED_START = (
    "Een ondernemer die zelf betaalt, betaalt via automatische incasso: geef eerst een "
    "incassomachtiging af (Betaalgegevens) voordat de licentie ingaat."
)


@pytest.fixture
def catalogue(db):
    return make_catalogue()


def start(catalogue, organisation, *, end=None):
    return agreement_create(
        organisation=organisation,
        start_date=date(2026, 1, 1),
        end_date=end,
        quantities={catalogue["base"]: 1, catalogue["users"]: 2},
    )


def live_direct_customer(catalogue):
    organisation = OrganisationFactory()
    mandate = give_mandate(organisation)
    return organisation, mandate, start(catalogue, organisation)


# --- Starting an agreement ------------------------------------------------------------------


def test_r12_direct_entrepreneur_cannot_start_an_agreement_without_a_mandate(catalogue):
    organisation = OrganisationFactory()

    with pytest.raises(DomainError) as refused:
        start(catalogue, organisation)

    assert refused.value.code == "mandate_required"
    assert refused.value.message == REFUSED_START
    assert not Agreement.objects.exists()
    assert not LicenceLine.objects.exists()
    assert not AuditEvent.objects.filter(action="licensing.agreement_created").exists()


def test_r12_direct_entrepreneur_with_a_mandate_starts_its_agreement(catalogue):
    organisation = OrganisationFactory()
    give_mandate(organisation)

    agreement = start(catalogue, organisation)

    assert agreement.status == Agreement.Status.ACTIVE
    assert agreement.invoice_to == organisation


@pytest.mark.parametrize("ended", ["invalid", "revoked", "replaced_then_invalid"])
def test_r12_an_ended_mandate_does_not_let_an_agreement_start(catalogue, ended):
    organisation = OrganisationFactory()
    mandate = give_mandate(organisation)
    if ended == "invalid":
        mandate_invalidate(mandate=mandate, reason_code="AC04")
    elif ended == "revoked":
        mandate_revoke(mandate=mandate)  # no agreement yet: nothing to protect
    else:
        newer = give_mandate(organisation, iban=NEW_IBAN)
        mandate_invalidate(mandate=newer, reason_code="MD07")

    with pytest.raises(DomainError, match="geef eerst een incassomachtiging af"):
        start(catalogue, organisation)
    assert not Agreement.objects.exists()


def test_r12_belgian_direct_customer_needs_a_mandate_too(catalogue):
    organisation = OrganisationFactory(
        country="BE", kvk_number="0403170701", postcode="1000", city="Brussel"
    )
    with pytest.raises(DomainError, match="incassomachtiging"):
        start(catalogue, organisation)

    give_mandate(organisation, iban="BE71096123456769")
    assert start(catalogue, organisation).status == Agreement.Status.ACTIVE


def test_r12_accountancy_firm_starts_without_a_mandate(catalogue):
    firm = FirmFactory()

    agreement = start(catalogue, firm)

    assert agreement.status == Agreement.Status.ACTIVE
    assert not Mandate.objects.exists()


def test_r12_client_billed_via_its_firm_starts_without_a_mandate(catalogue):
    firm, client = firm_client()

    agreement = start(catalogue, client)

    assert agreement.invoice_to == firm
    assert not Mandate.objects.exists()


def test_r12_client_of_a_firm_that_pays_itself_needs_its_own_mandate(catalogue):
    firm, client = firm_client(billed_via_firm=False)
    give_mandate(firm)  # the firm's mandate is the firm's, not the client's

    with pytest.raises(DomainError, match="incassomachtiging"):
        start(catalogue, client)

    give_mandate(client)
    assert start(catalogue, client).invoice_to == client


def test_r12_the_check_comes_after_the_one_live_agreement_check(catalogue):
    organisation, mandate, _agreement = live_direct_customer(catalogue)
    mandate_invalidate(mandate=mandate, reason_code="AC04")

    with pytest.raises(DomainError) as refused:
        start(catalogue, organisation)

    assert refused.value.code == "agreement_exists"


# --- Revoking -------------------------------------------------------------------------------


def test_r12_revoking_the_mandate_of_a_direct_customer_with_a_live_agreement_is_refused(catalogue):
    _organisation, mandate, _agreement = live_direct_customer(catalogue)

    with pytest.raises(DomainError) as refused:
        mandate_revoke(mandate=mandate)

    assert refused.value.code == "mandate_needed"
    assert "Geef dan een nieuwe machtiging af" in refused.value.message
    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.ACTIVE
    assert not AuditEvent.objects.filter(action="mandate.revoked").exists()


def test_r12_revoking_is_refused_while_the_agreement_is_terminating(catalogue):
    organisation, mandate, agreement = live_direct_customer(catalogue)
    admin = MembershipFactory(organisation=organisation, role="admin").user
    agreement_terminate_by_customer(agreement=agreement, user=admin)
    agreement.refresh_from_db()
    assert agreement.status == Agreement.Status.TERMINATING

    with pytest.raises(DomainError, match="zolang de licentie loopt"):
        mandate_revoke(mandate=mandate)

    assert mandate_active_for(organisation=organisation) == mandate


def test_r12_staff_may_revoke_without_a_replacement(catalogue, staff_user):
    _organisation, mandate, _agreement = live_direct_customer(catalogue)

    revoked = mandate_revoke(
        mandate=mandate,
        actor=staff_user,
        reason="Fraudemelding van de bank",
        allow_without_replacement=True,
    )

    assert revoked.status == Mandate.Status.REVOKED
    event = AuditEvent.objects.get(action="mandate.revoked")
    assert (event.actor_user, event.reason) == (staff_user, "Fraudemelding van de bank")


@pytest.mark.parametrize("how", ["vendor", "agreed_end_date"])
def test_r12_revoking_is_allowed_once_the_agreement_ended(catalogue, how):
    organisation = OrganisationFactory()
    mandate = give_mandate(organisation)
    if how == "vendor":
        agreement = start(catalogue, organisation)
        agreement_terminate_by_vendor(
            agreement=agreement,
            reason=Termination.Reason.BANKRUPTCY,
            note="Faillissement",
            staff_user=None,
        )
    else:
        agreement = start(catalogue, organisation, end=date(2026, 12, 31))
        assert agreements_end_at_agreed_date(today=date(2027, 1, 1)) == 1
    agreement.refresh_from_db()
    assert agreement.status == Agreement.Status.TERMINATED

    assert mandate_revoke(mandate=mandate).status == Mandate.Status.REVOKED


def test_r12_a_firm_may_revoke_and_pay_by_transfer(catalogue):
    firm = FirmFactory()
    mandate = give_mandate(firm)
    start(catalogue, firm)

    assert mandate_revoke(mandate=mandate).status == Mandate.Status.REVOKED


def test_r12_a_new_iban_always_replaces_the_mandate_of_a_live_customer(catalogue):
    organisation, old, _agreement = live_direct_customer(catalogue)

    new = mandate_sign(
        organisation=organisation,
        account_holder=organisation.legal_name,
        iban=NEW_IBAN,
        accepted=True,
        user=None,
        ip="192.0.2.7",
    )

    old.refresh_from_db()
    assert old.status == Mandate.Status.REPLACED
    assert new.status == Mandate.Status.ACTIVE and new.amends == old
    assert mandate_active_for(organisation=organisation) == new


def test_r12_the_bank_invalidating_a_live_customers_mandate_is_never_refused(catalogue):
    _organisation, mandate, agreement = live_direct_customer(catalogue)

    invalid = mandate_invalidate(mandate=mandate, reason_code="AC04")

    assert invalid.status == Mandate.Status.INVALID
    agreement.refresh_from_db()
    assert agreement.status == Agreement.Status.ACTIVE  # the portal asks for a new mandate


# --- Demo data ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_r12_seed_demo_gives_every_direct_customer_a_mandate_and_one_firm_debit():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())

    direct = [o for o in Organisation.objects.all() if direct_customer_needs_mandate(o)]
    assert len(direct) == 8
    for organisation in direct:
        assert Mandate.objects.filter(organisation=organisation).count() == 1
        assert mandate_active_for(organisation=organisation) is not None
    firms = Organisation.objects.filter(kind=Organisation.Kind.ACCOUNTANCY_FIRM)
    with_debit = [firm.legal_name for firm in firms if mandate_active_for(organisation=firm)]
    assert with_debit == ["Boekhoudkantoor Jansen & De Vries"]
    assert not Mandate.objects.filter(organisation__billed_via__isnull=False).exists()


# --- Racing -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_revoke_racing_a_new_agreement_waits_and_is_then_refused():
    """Both lock the organisation first: the revoke sees the agreement and refuses."""
    catalogue = make_catalogue()
    organisation = OrganisationFactory()
    mandate = give_mandate(organisation)
    locked, release, revoking = threading.Event(), threading.Event(), threading.Event()

    creating = Worker(
        lambda: start(catalogue, organisation), hold_after("FOR UPDATE", locked, release)
    ).start()
    assert locked.wait(10)
    revoke = Worker(
        lambda: mandate_revoke(mandate=mandate), signal_before("FOR UPDATE", revoking)
    ).start()
    assert revoking.wait(10)
    release.set()

    assert creating.join().status == Agreement.Status.ACTIVE
    with pytest.raises(DomainError, match="zolang de licentie loopt"):
        revoke.join()
    assert mandate_active_for(organisation=organisation) == mandate


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_new_agreement_racing_a_revoke_waits_and_is_then_refused():
    catalogue = make_catalogue()
    organisation = OrganisationFactory()
    mandate = give_mandate(organisation)
    locked, release, creating_reached = threading.Event(), threading.Event(), threading.Event()

    revoke = Worker(
        lambda: mandate_revoke(mandate=mandate), hold_after("FOR UPDATE", locked, release)
    ).start()
    assert locked.wait(10)
    creating = Worker(
        lambda: start(catalogue, organisation), signal_before("FOR UPDATE", creating_reached)
    ).start()
    assert creating_reached.wait(10)
    release.set()

    assert revoke.join().status == Mandate.Status.REVOKED
    with pytest.raises(DomainError, match="geef eerst een incassomachtiging af"):
        creating.join()
    assert not Agreement.objects.exists()
