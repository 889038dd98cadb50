from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction

from afas_sb.audit.models import AuditEvent
from afas_sb.errors import Conflict, DomainError
from licensing.models import Agreement, ChangeSource, LicenceChange, PriceList
from licensing.selectors import licence_price
from licensing.services.agreements import (
    agreement_create,
    licence_adjust_quantity,
    licence_set_quantities,
)
from tests.factories import (
    FirmFactory,
    OrganisationFactory,
    give_mandate,
    make_catalogue,
    mandate_if_required,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    return make_catalogue()


def _agreement(catalogue, organisation=None, **quantities):
    organisation = organisation or OrganisationFactory()
    mandate_if_required(organisation)
    return agreement_create(
        organisation=organisation,
        start_date=date(2026, 1, 1),
        quantities={
            catalogue[code]: n for code, n in (quantities or {"base": 1, "users": 3}).items()
        },
    )


def test_r1_agreement_runs_indefinitely_and_renews_every_month(catalogue):
    agreement = _agreement(catalogue)

    assert agreement.end_date is None
    assert agreement.status == Agreement.Status.ACTIVE
    assert agreement.number == f"SB{agreement.pk:07d}"
    # Tacit renewal: every later month is priced like the first, with no new contract.
    for month in (date(2026, 2, 1), date(2027, 6, 1), date(2030, 12, 1)):
        assert licence_price(agreement=agreement, period_start=month).total == Decimal("76.50")


def test_r4_price_is_quantity_times_unit_price_summed(catalogue):
    agreement = _agreement(catalogue, base=1, users=7, administrations=3)

    price = licence_price(agreement=agreement, period_start=date(2026, 3, 1))

    assert [(line.component_code, line.quantity, line.amount) for line in price.lines] == [
        ("base", 1, Decimal("39.00")),
        ("users", 7, Decimal("87.50")),
        ("administrations", 3, Decimal("29.85")),
    ]
    assert price.total == Decimal("156.35")


def test_r4_price_list_valid_on_the_periods_first_day_applies(catalogue):
    make_catalogue(valid_from=date(2027, 1, 1), prices={"users": "13.10"})
    agreement = _agreement(catalogue, users=2)

    december = licence_price(agreement=agreement, period_start=date(2026, 12, 1))
    january = licence_price(agreement=agreement, period_start=date(2027, 1, 1))

    assert december.lines[0].unit_price == Decimal("12.50")
    assert january.lines[0].unit_price == Decimal("13.10")


def test_r4_draft_price_list_is_not_used(catalogue):
    draft = make_catalogue(valid_from=date(2026, 6, 1), prices={"users": "99.00"})
    PriceList.objects.filter(valid_from=date(2026, 6, 1)).update(status=PriceList.Status.DRAFT)
    agreement = _agreement(catalogue, users=1)

    assert draft["users"] == catalogue["users"]
    assert licence_price(agreement=agreement, period_start=date(2026, 7, 1)).total == Decimal(
        "12.50"
    )


def test_r2_client_billed_via_its_firm_has_the_firm_as_invoice_recipient(catalogue):
    firm = FirmFactory()
    client = OrganisationFactory(accountancy_firm=firm, billed_via=firm)
    direct_client = OrganisationFactory(accountancy_firm=firm)

    assert _agreement(catalogue, client).invoice_to == firm
    assert _agreement(catalogue, direct_client).invoice_to == direct_client


def test_r3_every_quantity_change_is_kept_with_source_and_time(catalogue):
    agreement = _agreement(catalogue, users=3)

    with time_machine.travel(date(2026, 11, 15)):
        licence_set_quantities(
            agreement=agreement,
            quantities={catalogue["users"]: 5},
            source=ChangeSource.SB_APPLICATION,
        )
        licence_set_quantities(
            agreement=agreement,
            quantities={catalogue["users"]: 5},
            source=ChangeSource.SB_APPLICATION,
        )

    changes = LicenceChange.objects.filter(
        agreement=agreement, component=catalogue["users"]
    ).order_by("id")
    assert [(c.old_quantity, c.new_quantity, c.source) for c in changes] == [
        (0, 3, ChangeSource.SYSTEM),
        (3, 5, ChangeSource.SB_APPLICATION),
    ]
    assert changes.last().created_at.date() == date(2026, 11, 15)
    assert AuditEvent.objects.filter(action="licensing.quantities_changed").count() == 2


@pytest.mark.parametrize("bad", [-1, 2.5, None])
def test_r3_invalid_quantity_is_refused_and_changes_nothing(catalogue, bad):
    agreement = _agreement(catalogue, users=3)
    before = LicenceChange.objects.count()

    with pytest.raises(DomainError, match="moet 0 of meer zijn"):
        licence_set_quantities(
            agreement=agreement, quantities={catalogue["users"]: bad}, source=ChangeSource.STAFF
        )

    assert LicenceChange.objects.count() == before
    assert agreement.lines.get(component=catalogue["users"]).quantity == 3


def test_quantities_of_a_terminated_agreement_do_not_change(catalogue):
    agreement = _agreement(catalogue, users=3)
    Agreement.objects.filter(pk=agreement.pk).update(status=Agreement.Status.TERMINATED)

    with pytest.raises(Conflict, match="beëindigd"):
        licence_set_quantities(
            agreement=agreement, quantities={catalogue["users"]: 4}, source=ChangeSource.STAFF
        )


def test_adjust_adds_to_the_current_quantity(catalogue):
    agreement = _agreement(catalogue, users=3)

    licence_adjust_quantity(
        agreement=agreement,
        component=catalogue["administrations"],
        delta=1,
        source=ChangeSource.ADMINISTRATION,
    )
    licence_adjust_quantity(
        agreement=agreement,
        component=catalogue["administrations"],
        delta=1,
        source=ChangeSource.ADMINISTRATION,
    )

    assert agreement.lines.get(component=catalogue["administrations"]).quantity == 2


def test_an_organisation_has_one_live_agreement(catalogue):
    organisation = OrganisationFactory()
    _agreement(catalogue, organisation)

    with pytest.raises(Conflict, match="al een lopende overeenkomst"):
        _agreement(catalogue, organisation)
    with pytest.raises(IntegrityError), transaction.atomic():
        Agreement.objects.create(
            number="X",
            organisation=organisation,
            invoice_to=organisation,
            start_date=date(2026, 1, 1),
        )


def test_r1_agreement_with_an_agreed_end_date_ends_after_that_day(catalogue):
    from licensing.services.terminations import agreements_end_at_agreed_date

    organisation = OrganisationFactory()
    give_mandate(organisation)
    agreement = agreement_create(
        organisation=organisation,
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
        quantities={catalogue["base"]: 1},
    )

    assert agreements_end_at_agreed_date(today=date(2026, 12, 31)) == 0
    assert agreements_end_at_agreed_date(today=date(2027, 1, 1)) == 1
    assert agreements_end_at_agreed_date(today=date(2027, 1, 1)) == 0  # a repeat changes nothing

    agreement.refresh_from_db()
    organisation.refresh_from_db()
    assert agreement.status == Agreement.Status.TERMINATED
    assert organisation.status == organisation.Status.TERMINATED
    assert organisation.retention_starts_on == date(2027, 1, 1)


def test_r1_end_date_before_start_is_refused(catalogue):
    with pytest.raises(DomainError, match="einddatum ligt voor de ingangsdatum"):
        agreement_create(
            organisation=OrganisationFactory(),
            start_date=date(2026, 5, 1),
            end_date=date(2026, 4, 30),
            quantities={catalogue["base"]: 1},
        )
    assert not Agreement.objects.exists()
