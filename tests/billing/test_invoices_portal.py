"""Portal "Facturen" (R9, R16): the organisation's own invoices, filtered, paged, after the end too."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import Invoice
from billing.selectors import open_amount
from billing.services.credit import credit_note_issue
from billing.services.issue import invoice_issue_one_off
from portal import navigation
from tests.factories import MembershipFactory, OrganisationFactory, make_catalogue

from .builders import agreement_for, firm_client, run_month

pytestmark = pytest.mark.django_db

URL = reverse("portal:facturen")


@pytest.fixture
def catalogue():
    return make_catalogue()


def listed(response) -> list[str]:
    return [invoice.number for invoice in response.context["page"].object_list]


def test_facturen_is_a_real_page_not_a_placeholder(org_admin_client):
    response = org_admin_client.get(URL)

    assert response.status_code == 200
    assert response.templates[0].name == "portal/invoices/invoices.html"
    assert navigation.AREAS["facturen"].placeholder is False
    assert "Nog geen facturen" in response.content.decode()


def test_r9_facturen_lists_number_date_period_amount_status_and_due_date(
    client, org_admin, catalogue, time_machine
):
    time_machine.move_to(date(2027, 1, 10), tick=False)
    agreement_for(catalogue, org_admin.organisation, base=1, users=2)
    run_month(date(2027, 1, 1))
    client.force_login(org_admin.user)

    response = client.get(URL)

    html = response.content.decode()
    assert listed(response) == ["2027-000001"]
    assert "2027-000001" in html
    assert "01-01-2027" in html  # invoice date
    assert "januari 2027" in html  # period
    assert "€ 77,44" in html  # amount incl. VAT
    assert "Openstaand" in html
    assert "15-01-2027" in html  # due date
    assert response.context["open_amount"] == Decimal("77.44")


def test_r9_an_open_invoice_past_its_due_date_shows_as_overdue(
    client, org_admin, catalogue, time_machine
):
    agreement_for(catalogue, org_admin.organisation)
    run_month(date(2027, 1, 1))
    time_machine.move_to(date(2027, 1, 16), tick=False)
    client.force_login(org_admin.user)

    assert "Vervallen" in client.get(URL).content.decode()


def test_facturen_never_shows_another_organisations_invoices(client, org_admin, catalogue):
    agreement_for(catalogue, org_admin.organisation)
    other = agreement_for(catalogue, OrganisationFactory(legal_name="Concurrent B.V."))
    run_month(date(2027, 1, 1))
    other_invoice = Invoice.objects.get(agreement=other)
    client.force_login(org_admin.user)

    response = client.get(URL)
    filtered = client.get(URL, {"status": "open", "jaar": 2027})

    assert other_invoice.number not in response.content.decode()
    assert other_invoice.number not in listed(response)
    assert other_invoice.number not in listed(filtered)
    assert len(listed(response)) == 1


def test_r2_a_firm_sees_the_invoices_it_pays_for_and_the_client_does_not(client, catalogue):
    firm, client_org = firm_client(billed_via_firm=True)
    accountant = MembershipFactory(organisation=firm)
    client_admin = MembershipFactory(organisation=client_org)
    agreement = agreement_for(catalogue, client_org)
    run_month(date(2027, 1, 1))
    invoice = Invoice.objects.get(agreement=agreement)

    client.force_login(accountant.user)
    firm_page = client.get(URL)
    client.force_login(client_admin.user)
    client_page = client.get(URL)

    assert listed(firm_page) == [invoice.number]
    assert f"voor {client_org.legal_name}" in firm_page.content.decode()
    assert listed(client_page) == []


def test_r16_invoices_stay_visible_after_the_licence_ended(client, org_admin, catalogue):
    agreement_for(catalogue, org_admin.organisation)
    run_month(date(2027, 1, 1))
    organisation = org_admin.organisation
    organisation.status = "terminated"
    organisation.save(update_fields=["status"])
    client.force_login(org_admin.user)

    response = client.get(URL)

    assert response.status_code == 200
    assert "Je licentie is beëindigd" not in response.content.decode()
    assert listed(response) == ["2027-000001"]


def test_facturen_filters_on_status_and_year(
    client, org_admin, catalogue, staff_user, time_machine
):
    organisation = org_admin.organisation
    agreement_for(catalogue, organisation, start=date(2026, 12, 1))
    run_month(date(2026, 12, 1))
    run_month(date(2027, 1, 1))
    december = Invoice.objects.get(period_start=date(2026, 12, 1))
    time_machine.move_to(date(2027, 1, 5), tick=False)
    credit_note = credit_note_issue(
        invoice=december, lines=None, reason="Fout", staff_user=staff_user
    )
    client.force_login(org_admin.user)

    assert listed(client.get(URL)) == [credit_note.number, "2027-000001", "2026-000001"]
    assert listed(client.get(URL, {"jaar": 2026})) == ["2026-000001"]
    assert listed(client.get(URL, {"status": "open"})) == ["2027-000001"]
    assert listed(client.get(URL, {"status": "credited"})) == ["2026-000001"]
    assert listed(client.get(URL, {"status": "credit_note"})) == [credit_note.number]
    nothing = client.get(URL, {"status": "paid"})
    assert listed(nothing) == []
    assert "Geen facturen gevonden" in nothing.content.decode()
    # A year that does not exist (or garbage) is ignored, not an error.
    assert client.get(URL, {"jaar": "1999"}).status_code == 200
    assert len(listed(client.get(URL, {"jaar": "abc"}))) == 3


def test_facturen_pages_through_many_invoices_with_constant_queries(client, org_admin):
    client.force_login(org_admin.user)
    for number in range(3):
        invoice_issue_one_off(
            organisation=org_admin.organisation,
            description="Cursus",
            quantity=1,
            unit_price="100.00",
            issue_date=date(2027, 1, 1),
            reference=f"INS-{number}",
        )
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for number in range(3, 45):
        invoice_issue_one_off(
            organisation=org_admin.organisation,
            description="Cursus",
            quantity=1,
            unit_price="100.00",
            issue_date=date(2027, 1, 1),
            reference=f"INS-{number}",
        )

    with CaptureQueriesContext(connection) as many:
        first_page = client.get(URL)
    last_page = client.get(URL, {"pagina": 3})

    assert len(many) == len(few)
    assert len(listed(first_page)) == 20
    assert len(listed(last_page)) == 5
    assert "Pagina 3 van 3" in last_page.content.decode()
    assert first_page.context["open_amount"] == open_amount(org_admin.organisation)
