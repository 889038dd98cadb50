"""Portal "Betaalgegevens" (R12): the mandate with a masked IBAN, signing and changing it."""

import pytest
from django.urls import URLResolver, include, path, reverse

import afas_sb.urls as root_urls
import portal.urls as portal_urls
from billing.models import Mandate
from billing.services.mandates import mandate_sign, sepa_creditor_id
from portal import urls_payments
from portal.models import Role
from tests.factories import MembershipFactory, OrganisationFactory, UserFactory

from .builders import firm_client

# Until portal/urls.py includes portal.urls_payments (and the placeholder goes), this
# module is the URLconf: the real one with "betaalgegevens" taken over by the real page.
_portal_patterns = [
    p for p in portal_urls.urlpatterns if getattr(p, "name", None) != "betaalgegevens"
] + urls_payments.urlpatterns
urlpatterns = [
    p
    for p in root_urls.urlpatterns
    if not (isinstance(p, URLResolver) and p.urlconf_name is portal_urls)
] + [path("", include((_portal_patterns, "portal")))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

NL_IBAN = "NL91ABNA0417164300"
BE_IBAN = "BE71096123456769"


def url():
    return reverse("portal:betaalgegevens")


def signed(organisation, iban=NL_IBAN):
    return mandate_sign(
        organisation=organisation,
        account_holder="Bakkerij De Gouden Korst",
        iban=iban,
        accepted=True,
        user=UserFactory(full_name="Anna Jansen"),
        ip="192.0.2.1",
    )


def member_client(client, organisation, role):
    membership = MembershipFactory(organisation=organisation, role=role)
    client.force_login(membership.user)
    return client


def post(client, **data):
    payload = {"account_holder": "J. de Vries", "iban": BE_IBAN, "bic": "", "accepted": "on"}
    payload.update(data)
    return client.post(url(), {k: v for k, v in payload.items() if v is not None})


def test_r12_betaalgegevens_shows_mandate_with_masked_iban(client, org_admin):
    mandate = signed(org_admin.organisation)
    client.force_login(org_admin.user)

    response = client.get(url())

    html = response.content.decode()
    assert response.status_code == 200
    assert NL_IBAN not in html
    assert "ABNA0417" not in html and "ABNA 0417" not in html
    assert "ABNANL2A" in html  # the BIC names the bank, not the account
    assert "•••• •••• •••• 4300" in html
    assert mandate.reference in html
    assert "Bakkerij De Gouden Korst" in html
    assert "Anna Jansen" in html
    assert sepa_creditor_id() in html
    assert "AFAS Software B.V." in html
    assert "Eerste incasso (FRST)" in html


def test_r12_direct_customer_without_mandate_sees_the_warning_and_the_form(org_admin_client):
    response = org_admin_client.get(url())

    html = response.content.decode()
    assert "Machtiging vereist." in html
    assert "Doorlopende machtiging SEPA" in html
    assert 'name="iban"' in html
    assert response.context["next_reference"].startswith("SB-")


def test_r12_firm_billed_client_sees_that_the_firm_pays(client):
    firm, client_org = firm_client(billed_via_firm=True)
    member_client(client, client_org, Role.ADMIN)

    html = client.get(url()).content.decode()

    assert "Machtiging vereist." not in html
    assert "Het kantoor betaalt" in html
    assert firm.legal_name in html


@pytest.mark.parametrize("role", [Role.ADMIN, Role.BILLING])
def test_r12_manage_billing_roles_sign_a_mandate(client, role):
    organisation = OrganisationFactory()
    member_client(client, organisation, role)

    response = post(client)

    assert response.status_code == 302
    mandate = Mandate.objects.get(organisation=organisation)
    assert mandate.iban == BE_IBAN
    assert mandate.bic == "GKCCBEBB"
    assert mandate.signed_ip == "127.0.0.1"
    follow = client.get(url()).content.decode()
    assert "is vastgelegd" in follow
    assert "Machtiging vereist." not in follow


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_r12_other_roles_read_only(client, role):
    organisation = OrganisationFactory()
    signed(organisation)
    member_client(client, organisation, role)

    page = client.get(url())
    response = post(client, iban="DE89370400440532013000")

    assert page.status_code == 200
    assert 'name="iban"' not in page.content.decode()
    assert response.status_code == 403
    assert Mandate.objects.filter(organisation=organisation).count() == 1


def test_r12_portal_invalid_iban_shows_dutch_error_and_stores_nothing(org_admin_client):
    response = post(org_admin_client, iban="NL91ABNA0417164301")

    assert response.status_code == 200
    assert "Dit IBAN klopt niet" in response.content.decode()
    assert not Mandate.objects.exists()


def test_r12_portal_without_acceptance_shows_dutch_error_and_stores_nothing(org_admin_client):
    response = post(org_admin_client, accepted=None)

    assert response.status_code == 200
    assert "Ga akkoord met de machtigingstekst" in response.content.decode()
    assert not Mandate.objects.exists()


def test_r12_portal_change_iban_replaces_the_mandate(client, org_admin):
    old = signed(org_admin.organisation)
    client.force_login(org_admin.user)

    page = client.get(url()).content.decode()
    response = post(client, iban="BE71 0961 2345 6769")

    assert "Wijzigen" in page
    assert "data-confirm" in page
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.status == Mandate.Status.REPLACED
    new = Mandate.objects.get(organisation=org_admin.organisation, status="active")
    assert new.amends == old
    assert new.signed_by == org_admin.user


def test_r12_portal_same_iban_changes_nothing(client, org_admin):
    old = signed(org_admin.organisation)
    client.force_login(org_admin.user)

    post(client, iban=NL_IBAN)

    assert list(Mandate.objects.all()) == [old]
    assert "niets gewijzigd" in client.get(url()).content.decode()


def test_betaalgegevens_never_shows_another_organisations_mandate(client, org_admin):
    other = signed(OrganisationFactory(), iban="DE89370400440532013000")
    client.force_login(org_admin.user)

    response = client.get(url())

    html = response.content.decode()
    assert response.context["mandate"] is None
    assert other.reference not in html
    assert "3000" not in html
    assert "Machtiging vereist." in html


def test_betaalgegevens_needs_login(client):
    response = client.get(url())

    assert response.status_code == 302
