"""Pages cost a fixed number of queries, however many people or clients there are."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.services import invitation_create
from tests.factories import FirmFactory, MembershipFactory, OrganisationFactory


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("page", ["portal:dashboard", "portal:contacts"])
def test_page_queries_do_not_grow_with_members(client, org_admin, page):
    client.force_login(org_admin.user)
    small = _queries(client, reverse(page))

    for n in range(15):
        MembershipFactory(organisation=org_admin.organisation, role="member")
        invitation_create(
            organisation=org_admin.organisation,
            email=f"uitgenodigd{n}@example.nl",
            role="viewer",
            invited_by=org_admin.user,
        )

    assert _queries(client, reverse(page)) == small


@pytest.mark.django_db
def test_firm_dashboard_queries_do_not_grow_with_clients(client):
    firm = FirmFactory()
    accountant = MembershipFactory(organisation=firm, is_subscription_contact=True)
    client.force_login(accountant.user)
    OrganisationFactory(accountancy_firm=firm)
    small = _queries(client, reverse("portal:dashboard"))

    for _ in range(20):
        OrganisationFactory(accountancy_firm=firm, billed_via=firm)

    assert _queries(client, reverse("portal:dashboard")) == small
