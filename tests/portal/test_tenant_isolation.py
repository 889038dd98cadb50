"""A user of organisation A never sees or touches anything of organisation B."""

from datetime import date

import pytest
from django.urls import URLResolver, reverse
from django.urls.converters import IntConverter

from billing.models import Invoice, InvoiceDocument
from billing.services.issue import invoice_issue_one_off
from licensing.models import Administration, AdministrationTransfer
from licensing.services.administrations import (
    administration_create,
    administration_transfer_request,
)
from licensing.services.agreements import agreement_create
from portal import urls as portal_urls
from portal.models import Invitation, Membership
from portal.services import invitation_create
from tests.factories import (
    FirmFactory,
    MembershipFactory,
    OrganisationFactory,
    give_mandate,
    make_catalogue,
)


def _object_routes() -> set[str]:
    """Every portal route (also in included URL modules) that takes an object id."""

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns)
            elif any(isinstance(c, IntConverter) for c in pattern.pattern.converters.values()):
                yield pattern.name

    return set(walk(portal_urls.urlpatterns))


# Every portal URL that names an object, with the model it names. A new
# object URL without an entry here fails test_every_object_url_is_covered.
OBJECT_ROUTES = {
    "membership_edit": Membership,
    "membership_remove": Membership,
    "invitation_resend": Invitation,
    "invitation_revoke": Invitation,
    "administration_archive": Administration,
    "administration_delete": Administration,
    "administration_view_only": Administration,
    "administration_export_delete": Administration,
    "administration_transfer": Administration,
    "administration_transfer_accept": AdministrationTransfer,
    "administration_transfer_decline": AdministrationTransfer,
    "administration_transfer_cancel": AdministrationTransfer,
    "invoice_pdf": Invoice,
    "invoice_ubl": Invoice,
}
# Object URLs whose objects belong to no tenant, with the reason.
SHARED_ROUTES = {
    "terms_accept": "terms versions are published to every customer alike",
}


@pytest.fixture
def two_tenants(db):
    """Firm A, and firm B with people, an invitation, an administration and a transfer."""
    catalogue = make_catalogue()
    a = MembershipFactory(organisation=FirmFactory(), is_subscription_contact=True)
    b = MembershipFactory(organisation=FirmFactory(), is_subscription_contact=True)
    other_in_b = MembershipFactory(organisation=b.organisation, role="member")
    invitation_b = invitation_create(
        organisation=b.organisation, email="nieuw@b.example.nl", role="member", invited_by=b.user
    )
    client_of_b = OrganisationFactory(accountancy_firm=b.organisation)
    give_mandate(client_of_b)  # a direct customer; the firms may pay by transfer (R12)
    for organisation in (a.organisation, b.organisation, client_of_b):
        agreement_create(
            organisation=organisation,
            start_date=date(2026, 1, 1),
            quantities={catalogue["base"]: 1},
        )
    administration = administration_create(
        firm=b.organisation,
        client=client_of_b,
        name="Boekhouding B",
        billed_to_firm=True,
        user=b.user,
    )
    transfer = administration_transfer_request(
        administration=administration, to_organisation=client_of_b, user=b.user
    )
    invoice_b = invoice_issue_one_off(
        organisation=b.organisation,
        description="Cursus AFAS SB",
        quantity=1,
        unit_price="295.00",
        issue_date=date(2026, 11, 2),
        reference="CURSUS-1",
    )
    return a, {
        Invoice: invoice_b,
        Membership: other_in_b,
        Invitation: invitation_b,
        Administration: administration,
        AdministrationTransfer: transfer,
    }


def _state():
    return (
        list(Membership.objects.values_list("pk", "role")),
        list(Invitation.objects.values_list("token_hash", "revoked_at")),
        list(Administration.objects.values_list("pk", "kind", "status", "firm_id")),
        list(AdministrationTransfer.objects.values_list("pk", "status")),
        list(Invoice.objects.values_list("pk", "status")),
        sorted(InvoiceDocument.objects.values_list("invoice_id", "format")),
    )


def test_every_object_url_is_covered():
    assert _object_routes() == set(OBJECT_ROUTES) | set(SHARED_ROUTES)


@pytest.mark.parametrize("route", sorted(OBJECT_ROUTES))
@pytest.mark.parametrize("method", ["get", "post"])
def test_object_of_other_organisation_is_not_found(client, two_tenants, route, method):
    a, objects_of_b = two_tenants
    target = objects_of_b[OBJECT_ROUTES[route]]
    before = (
        Membership.objects.count(),
        list(Invitation.objects.values_list("token_hash", "revoked_at")),
    )
    client.force_login(a.user)

    response = getattr(client, method)(reverse(f"portal:{route}", args=[target.pk]))

    assert response.status_code in (404, 405)
    if method == "post":
        assert response.status_code == 404
    after = (
        Membership.objects.count(),
        list(Invitation.objects.values_list("token_hash", "revoked_at")),
    )
    assert after == before


def test_pages_list_only_the_active_organisations_people(client, two_tenants):
    a, objects_of_b = two_tenants
    client.force_login(a.user)

    page = client.get(reverse("portal:contacts")).content.decode()

    assert a.user.email in page
    assert objects_of_b[Membership].user.email not in page
    assert "nieuw@b.example.nl" not in page


def test_switching_to_an_organisation_without_access_is_not_found(client, two_tenants):
    a, objects_of_b = two_tenants
    client.force_login(a.user)

    response = client.post(
        reverse("portal:switch_organisation"),
        {"organisation": objects_of_b[Membership].organisation_id},
    )

    assert response.status_code == 404
    assert client.get(reverse("portal:dashboard")).context["organisation"] == a.organisation


def test_user_of_two_organisations_switches_between_them(client, db):
    first = MembershipFactory(is_subscription_contact=True)
    second = MembershipFactory(user=first.user, organisation=OrganisationFactory())
    client.force_login(first.user)

    response = client.post(
        reverse("portal:switch_organisation"), {"organisation": second.organisation_id}
    )

    assert response.status_code == 302
    page = client.get(reverse("portal:dashboard"))
    assert page.context["organisation"] == second.organisation
    assert 'id="org-switch"' in page.content.decode()


def test_switch_ignores_an_offsite_next_url(client, db):
    first = MembershipFactory()
    MembershipFactory(user=first.user)
    client.force_login(first.user)

    response = client.post(
        reverse("portal:switch_organisation"),
        {"organisation": first.organisation_id, "next": "https://evil.example.com/"},
    )

    assert response["Location"] == reverse("portal:dashboard")


def test_accountant_sees_the_firms_clients_read_only(client, db):
    firm = FirmFactory()
    accountant = MembershipFactory(organisation=firm, is_subscription_contact=True)
    client_org = OrganisationFactory(accountancy_firm=firm, billed_via=firm)
    client_admin = MembershipFactory(organisation=client_org, is_subscription_contact=True)
    stranger = OrganisationFactory()
    client.force_login(accountant.user)

    dashboard = client.get(reverse("portal:dashboard")).content.decode()
    assert client_org.legal_name in dashboard
    assert stranger.legal_name not in dashboard

    assert (
        client.post(
            reverse("portal:switch_organisation"), {"organisation": client_org.pk}
        ).status_code
        == 302
    )
    contacts = client.get(reverse("portal:contacts"))
    assert contacts.status_code == 200
    assert client_admin.user.email in contacts.content.decode()
    # Read-only: the firm cannot manage the client's people.
    response = client.get(reverse("portal:membership_edit", args=[client_admin.pk]))
    assert response.status_code == 403
    assert (
        client.post(
            reverse("portal:switch_organisation"), {"organisation": stranger.pk}
        ).status_code
        == 404
    )


def test_user_without_organisation_gets_a_helpful_page(client, db):
    from tests.factories import UserFactory

    client.force_login(UserFactory())

    response = client.get(reverse("portal:dashboard"))

    assert response.status_code == 403
    assert "nog niet aan een organisatie gekoppeld" in response.content.decode()


def test_anonymous_visitor_is_sent_to_login(client, db):
    response = client.get(reverse("portal:contacts"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_api_lists_only_the_active_organisations_people(client, two_tenants):
    a, objects_of_b = two_tenants
    client.force_login(a.user)

    listing = client.get(reverse("api:membership-list"))
    other = client.get(reverse("api:membership-detail", args=[objects_of_b[Membership].pk]))

    assert [row["email"] for row in listing.json()] == [a.user.email]
    assert other.status_code == 404
    assert other.json() == {"message": "Niet gevonden.", "code": "not_found"}
    assert client.get(reverse("api:current-organisation")).json()["id"] == a.organisation_id


def test_api_refuses_anonymous_callers(client, db):
    response = client.get(reverse("api:membership-list"))

    assert response.status_code == 403
    assert response.json()["code"] == "not_authenticated"
