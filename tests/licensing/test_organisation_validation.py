"""KvK, VAT, postcode, Peppol and country checks: Dutch messages, nothing stored on error."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from licensing.models import Organisation
from tests.factories import FirmFactory, OrganisationFactory


def _org(**overrides) -> Organisation:
    fields = {
        "kind": "entrepreneur",
        "legal_name": "Test B.V.",
        "kvk_number": "12345678",
        "country": "NL",
        "street": "Kerkstraat 1",
        "postcode": "1234ab",
        "city": "Utrecht",
        "billing_email": "f@example.nl",
    }
    return Organisation(**{**fields, **overrides})


def _errors(org) -> dict:
    with pytest.raises(ValidationError) as info:
        org.full_clean()
    return info.value.message_dict


@pytest.mark.django_db
def test_valid_identifiers_are_normalised():
    org = _org(kvk_number="1234 5678", vat_id="nl 0044.95.445.b01", postcode="1234ab")
    org.full_clean()
    assert (org.kvk_number, org.vat_id, org.postcode) == ("12345678", "NL004495445B01", "1234 AB")


@pytest.mark.django_db
@pytest.mark.parametrize("kvk", ["1234567", "123456789", "1234567A", "12 34 56 7"])
def test_bad_kvk_number_gets_a_dutch_message(kvk):
    assert "Een KvK-nummer bestaat uit 8 cijfers" in _errors(_org(kvk_number=kvk))["kvk_number"][0]


@pytest.mark.django_db
@pytest.mark.parametrize("vat", ["NL004495446B01", "NL12345678B01", "123"])
def test_bad_dutch_vat_id_gets_a_dutch_message(vat):
    assert "geen geldig Nederlands btw" in _errors(_org(vat_id=vat))["vat_id"][0]


@pytest.mark.django_db
def test_vat_id_of_another_country_is_refused():
    assert "met NL begint" in _errors(_org(vat_id="BE0403170701"))["vat_id"][0]


@pytest.mark.django_db
def test_belgian_organisation_uses_enterprise_number_and_be_vat():
    org = _org(country="BE", kvk_number="0403.170.701", vat_id="BE 0403 170 701", postcode="2000")
    org.full_clean()
    assert (org.kvk_number, org.vat_id) == ("0403170701", "BE0403170701")
    errors = _errors(_org(country="BE", kvk_number="0403170702", postcode="20000"))
    assert "geen geldig Belgisch ondernemingsnummer" in errors["kvk_number"][0]
    assert "Belgische postcode" in errors["postcode"][0]


@pytest.mark.django_db
def test_country_outside_nl_and_be_is_refused_by_form_and_database():
    assert "country" in _errors(_org(country="DE"))
    with pytest.raises(IntegrityError), transaction.atomic():
        _org(country="DE").save()


@pytest.mark.django_db
def test_peppol_id_must_match_its_scheme_and_come_in_pairs():
    assert (
        "Peppol-schema als het Peppol-id"
        in _errors(_org(peppol_scheme="0106"))["peppol_endpoint_id"][0]
    )
    assert (
        "past niet bij het gekozen schema"
        in _errors(_org(peppol_scheme="0106", peppol_endpoint_id="123"))["peppol_endpoint_id"][0]
    )
    org = _org(
        peppol_scheme="0208",
        peppol_endpoint_id="0403.170.701",
        country="BE",
        kvk_number="0403170701",
        postcode="2000",
    )
    org.full_clean()
    assert org.peppol_participant == "0208:0403170701"


@pytest.mark.django_db
def test_client_is_billed_only_via_its_own_firm():
    firm, other_firm = FirmFactory(), FirmFactory()
    errors = _errors(_org(accountancy_firm=firm, billed_via=other_firm))
    assert "eigen accountantskantoor" in errors["billed_via"][0]
    with pytest.raises(IntegrityError), transaction.atomic():
        OrganisationFactory(accountancy_firm=firm, billed_via=other_firm)


@pytest.mark.django_db
def test_firm_cannot_sit_under_another_firm():
    errors = _errors(_org(kind="accountancy_firm", accountancy_firm=FirmFactory()))
    assert "accountancy_firm" in errors


@pytest.mark.django_db
def test_registration_number_is_unique_per_country():
    OrganisationFactory(kvk_number="11112222")
    with pytest.raises(IntegrityError), transaction.atomic():
        OrganisationFactory(kvk_number="11112222")


def test_admin_add_form_shows_dutch_errors_and_stores_nothing(staff_client):
    data = {
        "kind": "entrepreneur",
        "legal_name": "Fout B.V.",
        "status": "active",
        "country": "NL",
        "kvk_number": "123",
        "vat_id": "NL123",
        "street": "Straat 1",
        "postcode": "1234 AB",
        "city": "Utrecht",
        "billing_email": "f@example.nl",
    }
    response = staff_client.post(reverse("admin:licensing_organisation_add"), data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Een KvK-nummer bestaat uit 8 cijfers" in page
    assert "geen geldig Nederlands btw" in page
    assert not Organisation.objects.filter(legal_name="Fout B.V.").exists()


def test_portal_organisation_form_refuses_bad_vat_and_changes_nothing(org_admin_client, org_admin):
    org = org_admin.organisation
    data = {
        "legal_name": org.legal_name,
        "vat_id": "NL999",
        "street": org.street,
        "postcode": org.postcode,
        "city": org.city,
        "billing_email": org.billing_email,
        "peppol_scheme": "",
        "peppol_endpoint_id": "",
    }
    response = org_admin_client.post(reverse("portal:organisation_edit"), data)

    assert response.status_code == 200
    assert "geen geldig Nederlands btw" in response.content.decode()
    org.refresh_from_db()
    assert org.vat_id == ""


def test_portal_organisation_form_saves_and_audits(org_admin_client, org_admin):
    from afas_sb.audit.models import AuditEvent

    org = org_admin.organisation
    data = {
        "legal_name": org.legal_name,
        "vat_id": "NL004495445B01",
        "street": "Nieuwe Gracht 2",
        "postcode": "3512lz",
        "city": "Utrecht",
        "billing_email": "nieuw@example.nl",
        "peppol_scheme": "0106",
        "peppol_endpoint_id": org.kvk_number,
    }
    response = org_admin_client.post(reverse("portal:organisation_edit"), data)

    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.vat_id, org.postcode, org.billing_email) == (
        "NL004495445B01",
        "3512 LZ",
        "nieuw@example.nl",
    )
    event = AuditEvent.objects.get(action="licensing.organisation_details_updated")
    assert event.data["street"] == {"before": "Kerkstraat 1", "after": "Nieuwe Gracht 2"}
