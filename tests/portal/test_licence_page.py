from datetime import date

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licensing.models import ChangeSource
from licensing.services.agreements import agreement_create, licence_set_quantities
from tests.factories import (
    FirmFactory,
    MembershipFactory,
    OrganisationFactory,
    give_mandate,
    make_catalogue,
)

URL = reverse("portal:licentie")


@pytest.fixture
def catalogue(db):
    return make_catalogue()


@time_machine.travel(date(2026, 11, 20))
def test_r8_licence_page_shows_each_component_quantity_price_and_total(
    org_admin_client, org_admin, catalogue
):
    give_mandate(org_admin.organisation)
    agreement_create(
        organisation=org_admin.organisation,
        start_date=date(2026, 1, 1),
        quantities={catalogue["base"]: 1, catalogue["users"]: 4},
    )

    page = org_admin_client.get(URL).content.decode()

    assert "Basislicentie" in page and "Gebruiker" in page
    assert "€ 12,50" in page and "€ 50,00" in page
    assert "€ 89,00" in page  # 39.00 + 4 × 12.50
    assert "november 2026" in page


@time_machine.travel(date(2026, 11, 20))
def test_r11_page_shows_when_new_prices_apply(org_admin_client, org_admin, catalogue):
    make_catalogue(valid_from=date(2026, 12, 1), prices={"users": "15.00"})
    give_mandate(org_admin.organisation)
    agreement_create(
        organisation=org_admin.organisation,
        start_date=date(2026, 1, 1),
        quantities={catalogue["users"]: 2},
    )

    page = org_admin_client.get(URL).content.decode()

    assert "Vanaf december 2026: € 30,00 per maand" in page


def test_licence_history_shows_only_this_organisations_changes(client, catalogue):
    mine = MembershipFactory(is_subscription_contact=True)
    other = OrganisationFactory()
    give_mandate(mine.organisation)
    give_mandate(other)
    my_agreement = agreement_create(
        organisation=mine.organisation,
        start_date=date(2026, 1, 1),
        quantities={catalogue["users"]: 2},
    )
    other_agreement = agreement_create(
        organisation=other, start_date=date(2026, 1, 1), quantities={catalogue["users"]: 2}
    )
    licence_set_quantities(
        agreement=other_agreement,
        quantities={catalogue["users"]: 77},
        source=ChangeSource.SB_APPLICATION,
    )
    client.force_login(mine.user)

    page = client.get(URL).content.decode()

    assert my_agreement.number in page
    assert other_agreement.number not in page
    assert "2 → 77" not in page


def test_licence_page_without_agreement_has_a_helpful_empty_state(org_admin_client, catalogue):
    page = org_admin_client.get(URL).content.decode()

    assert "Nog geen licentie" in page


def test_firm_sees_the_client_agreements_it_pays_for(client, catalogue):
    firm = FirmFactory()
    accountant = MembershipFactory(organisation=firm, is_subscription_contact=True)
    paid = OrganisationFactory(accountancy_firm=firm, billed_via=firm)
    direct = OrganisationFactory(accountancy_firm=firm)
    give_mandate(direct)
    agreement_create(
        organisation=firm, start_date=date(2026, 1, 1), quantities={catalogue["users"]: 3}
    )
    paid_agreement = agreement_create(
        organisation=paid, start_date=date(2026, 1, 1), quantities={catalogue["users"]: 1}
    )
    direct_agreement = agreement_create(
        organisation=direct, start_date=date(2026, 1, 1), quantities={catalogue["users"]: 1}
    )
    client.force_login(accountant.user)

    page = client.get(URL).content.decode()

    assert paid_agreement.number in page
    assert direct_agreement.number not in page


def test_licence_page_queries_do_not_grow_with_history(org_admin_client, org_admin, catalogue):
    give_mandate(org_admin.organisation)
    agreement = agreement_create(
        organisation=org_admin.organisation,
        start_date=date(2026, 1, 1),
        quantities={catalogue["users"]: 1},
    )

    def count():
        with CaptureQueriesContext(connection) as captured:
            org_admin_client.get(URL)
        return len(captured)

    small = count()
    for n in range(2, 30):
        licence_set_quantities(
            agreement=agreement, quantities={catalogue["users"]: n}, source=ChangeSource.STAFF
        )

    assert count() == small
