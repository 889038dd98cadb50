"""Portal (R12): each invoice's payment state on Facturen, and debits and a refused mandate
on Betaalgegevens; only ever the organisation's own."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.formats import date_format

from billing.bankfiles import writer as generate
from billing.models import DirectDebit
from billing.services.bank_import import bank_file_import
from billing.services.mandates import mandate_invalidate
from portal.models import Role
from tests.billing.collection_states import (
    BATCH_DAY,
    COLLECTION,
    bounce,
    collect,
    debited,
    one_off,
    pay_by_transfer,
    represent,
    submit_debits,
    submitted,
)
from tests.billing.debit_builders import NL_IBAN_2, at, customer, sign_mandate
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

FACTUREN = reverse("portal:facturen")
BETAALGEGEVENS = reverse("portal:betaalgegevens")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SEPA_SUBMISSION = "manual"
    settings.VENDOR_IBAN = "NL91ABNA0417164300"


@pytest.fixture
def member():
    """A beheerder of a direct customer with a mandate."""
    return MembershipFactory(organisation=customer(), role=Role.ADMIN)


def get(client, member, url=FACTUREN, **params):
    """Log in at the (travelled) time of the request: a session from before would have expired."""
    client.force_login(member.user)
    return client.get(url, params)


def page(client, member, url=FACTUREN, **params) -> str:
    response = get(client, member, url, **params)
    assert response.status_code == 200
    return response.content.decode()


def row_of(html: str, number: str) -> str:
    """The table row of one invoice."""
    start = html.index(f"<strong>{number}</strong>")
    return html[start : html.index("</tr>", start)]


# --- Facturen ---------------------------------------------------------------------------------


def test_r12_facturen_says_when_an_invoice_will_be_debited(client, member, time_machine):
    invoice, _debit = debited(member.organisation)
    time_machine.move_to(date(2027, 3, 2), tick=False)

    row = row_of(page(client, member), invoice.number)

    assert "Wordt op 15 maart 2027 geïncasseerd" in row
    assert "Openstaand" in row


def test_r12_payment_state_in_english_on_request(client, member, time_machine):
    invoice, debit = submitted(member.organisation)
    bounce(collect(debit), "MD06")
    time_machine.move_to(date(2027, 3, 18), tick=False)
    client.cookies["django_language"] = "en"

    row = row_of(page(client, member), invoice.number)

    assert "Returned: " in row
    assert f"please transfer to NL91 ABNA 0417 1643 00 quoting {invoice.number}" in row


def test_r12_facturen_says_when_an_invoice_was_collected(client, member, time_machine):
    invoice, debit = submitted(member.organisation)
    collect(debit)
    time_machine.move_to(date(2027, 3, 20), tick=False)

    row = row_of(page(client, member), invoice.number)

    assert "Betaald" in row
    assert "Geïncasseerd op 15 maart 2027" in row


def test_r12_facturen_shows_a_return_with_its_reason_and_the_next_attempt(
    client, member, time_machine
):
    invoice, debit = submitted(member.organisation)
    bounce(collect(debit), "AM04", on=date(2027, 3, 17))
    represent(debit, date(2027, 3, 24))
    time_machine.move_to(date(2027, 3, 18), tick=False)

    row = row_of(page(client, member), invoice.number)

    assert "Gestorneerd: Onvoldoende saldo (AM04) – we proberen het opnieuw op 24 maart 2027" in row
    assert "Vervallen" in row  # due on the 15th and still open


def test_r12_facturen_shows_a_return_read_from_the_bank_statement(client, member, time_machine):
    invoice, debit = submitted(member.organisation)
    statement = generate.camt053(
        [
            generate.collection(debit.end_to_end_id, debit.amount, booking_date=COLLECTION),
            generate.debit_return(
                debit.end_to_end_id, debit.amount, "AM04", booking_date=date(2027, 3, 17)
            ),
        ]
    )
    with at(date(2027, 3, 17)):
        bank_file_import(data=statement, filename="afschrift.xml")
    retry = DirectDebit.objects.get(invoice=invoice, status__in=DirectDebit.LIVE_STATUSES)
    time_machine.move_to(date(2027, 3, 18), tick=False)

    row = row_of(page(client, member), invoice.number)

    assert retry.attempt == 2
    assert (
        "Gestorneerd: Onvoldoende saldo (AM04) – we proberen het opnieuw op "
        f"{date_format(retry.collection_date, 'j F Y')}"
    ) in row


def test_r12_facturen_asks_for_a_transfer_after_the_last_failed_attempt(
    client, member, time_machine
):
    invoice, debit = submitted(member.organisation)
    bounce(collect(debit), "MD06")
    time_machine.move_to(date(2027, 3, 18), tick=False)

    row = row_of(page(client, member), invoice.number)

    assert (
        "Gestorneerd: Terugboeking op verzoek van de betaler (MD06) – graag overmaken naar "
        f"NL91 ABNA 0417 1643 00 o.v.v. {invoice.number}"
    ) in row


def test_r12_facturen_shows_a_debit_the_bank_rejected(client, member, time_machine):
    invoice, debit = submitted(member.organisation)
    bounce(debit, "MS02", rejected=True)
    time_machine.move_to(date(2027, 3, 18), tick=False)

    row = row_of(page(client, member), invoice.number)

    assert "Geweigerd door de bank: Geweigerd door de betaler (MS02) – graag overmaken" in row


def test_r12_facturen_shows_paid_partly_paid_and_overpaid(client, member, time_machine):
    organisation = member.organisation
    paid, partly, overpaid = (one_off(organisation) for _ in range(3))
    pay_by_transfer(paid, "121.00", date(2027, 3, 5))
    pay_by_transfer(partly, "100.00", date(2027, 3, 5))
    pay_by_transfer(overpaid, "131.50", date(2027, 3, 5))
    time_machine.move_to(date(2027, 3, 6), tick=False)

    html = page(client, member)

    assert "Betaald" in row_of(html, paid.number)
    assert "pay-state" not in row_of(html, paid.number)
    assert "Deels betaald (nog €\u00a021,00 open)" in row_of(html, partly.number)
    assert "Te veel betaald (€\u00a010,50)" in row_of(html, overpaid.number)


def test_r12_open_amount_counts_partial_payments_on_facturen_and_dashboard(
    client, member, time_machine
):
    partly = one_off(member.organisation)
    one_off(member.organisation)
    pay_by_transfer(partly, "100.00", date(2027, 3, 5))
    time_machine.move_to(date(2027, 3, 6), tick=False)

    facturen = get(client, member)
    dashboard = get(client, member, reverse("portal:dashboard"))

    assert facturen.context["open_amount"] == Decimal("142.00")
    assert dashboard.context["open_amount"] == Decimal("142.00")
    assert "€ 142,00" in dashboard.content.decode()


def test_facturen_status_filters_still_work_with_payment_states(client, member, time_machine):
    collected, debit = submitted(member.organisation)
    collect(debit)
    returned, debit_2 = submitted(member.organisation)
    bounce(collect(debit_2), "MD06")
    time_machine.move_to(date(2027, 3, 20), tick=False)

    open_page = get(client, member, status="open")
    paid_page = get(client, member, status="paid")

    assert [i.number for i in open_page.context["page"]] == [returned.number]
    assert [i.number for i in paid_page.context["page"]] == [collected.number]


def _queries(client, member) -> int:
    client.force_login(member.user)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(FACTUREN).status_code == 200
    return len(captured)


def test_facturen_queries_do_not_grow_with_invoices_debits_and_payments(
    client, member, time_machine
):
    organisation = member.organisation
    _invoice, debit = submitted(organisation)
    collect(debit)
    time_machine.move_to(date(2027, 3, 20), tick=False)
    small = _queries(client, member)

    time_machine.move_to(date(2027, 3, 1), tick=False)
    for _ in range(4):
        debited(organisation)
    submit_debits(BATCH_DAY)
    for _number in range(3):
        pay_by_transfer(one_off(organisation), "50.00", date(2027, 3, 5))
    time_machine.move_to(date(2027, 3, 20), tick=False)

    assert _queries(client, member) == small


# --- Betaalgegevens ------------------------------------------------------------------------------


def test_r12_betaalgegevens_lists_the_next_debits(client, member, time_machine):
    first, _ = debited(member.organisation, "100.00")
    second, _ = debited(member.organisation, "50.00")
    time_machine.move_to(date(2027, 3, 2), tick=False)

    html = page(client, member, BETAALGEGEVENS)

    assert "Geplande incasso" in html
    assert "15 maart 2027" in html
    assert first.number in html and second.number in html
    assert "€ 121,00" in html and "€ 60,50" in html


def test_r12_betaalgegevens_leaves_out_debits_whose_date_has_passed(client, member, time_machine):
    invoice, _debit = submitted(member.organisation)
    time_machine.move_to(date(2027, 3, 16), tick=False)

    html = page(client, member, BETAALGEGEVENS)

    assert invoice.number not in html
    assert "Geplande incasso" not in html


def test_r12_betaalgegevens_marks_a_re_presentment(client, member, time_machine):
    _invoice, debit = submitted(member.organisation)
    bounce(collect(debit), "AM04")
    represent(debit, date(2027, 3, 24))
    time_machine.move_to(date(2027, 3, 18), tick=False)

    html = page(client, member, BETAALGEGEVENS)

    assert "24 maart 2027" in html
    assert "(nieuwe poging)" in html


def test_r12_betaalgegevens_tells_why_the_bank_refused_the_mandate(client, member, time_machine):
    _invoice, debit = submitted(member.organisation)
    bounce(collect(debit), "AC04")
    mandate = mandate_invalidate(mandate=debit.mandate, reason_code="AC04")
    time_machine.move_to(date(2027, 3, 18), tick=False)

    html = page(client, member, BETAALGEGEVENS)

    assert "Je machtiging is niet meer geldig." in html
    assert "Rekening opgeheven (AC04)" in html
    assert mandate.reference in html
    assert "Geef hieronder een nieuwe machtiging af" in html
    assert "Machtiging vereist." not in html  # one clear notice, not two
    assert 'name="iban"' in html  # the form to sign a new one


def test_r12_refused_mandate_notice_goes_once_a_new_mandate_is_signed(client, member):
    _invoice, debit = submitted(member.organisation)
    mandate_invalidate(mandate=debit.mandate, reason_code="MD01")
    sign_mandate(member.organisation, NL_IBAN_2)

    html = page(client, member, BETAALGEGEVENS)

    assert "Je machtiging is niet meer geldig." not in html


def test_r12_a_viewer_sees_the_refused_mandate_but_is_sent_to_a_beheerder(client, member):
    _invoice, debit = submitted(member.organisation)
    mandate_invalidate(mandate=debit.mandate, reason_code="AC01")
    viewer = MembershipFactory(organisation=member.organisation, role=Role.VIEWER)

    html = page(client, viewer, BETAALGEGEVENS)

    assert "Rekeningnummer onjuist (AC01)" in html
    assert "Vraag een beheerder of financieel medewerker" in html


# --- Tenant isolation ----------------------------------------------------------------------------


def test_r12_a_customer_never_sees_another_organisations_debits_or_payments(
    client, member, time_machine
):
    other = customer(legal_name="Concurrent B.V.")
    other_invoice, other_debit = submitted(other, "77.00")
    other_planned, _ = debited(other, "88.00")
    bounce(collect(other_debit), "AC04")
    mandate_invalidate(mandate=other_debit.mandate, reason_code="AC04")
    other_paid = one_off(other, "33.00")
    pay_by_transfer(other_paid, "39.93", date(2027, 3, 5))
    own_invoice, _ = debited(member.organisation, "10.00")
    time_machine.move_to(date(2027, 3, 10), tick=False)

    facturen = page(client, member)
    betaalgegevens = page(client, member, BETAALGEGEVENS)
    dashboard = get(client, member, reverse("portal:dashboard"))

    for html in (facturen, betaalgegevens):
        for number in (other_invoice.number, other_paid.number, other_planned.number):
            assert number not in html
        assert "€ 93,17" not in html and "€ 106,48" not in html  # the other's amounts
        assert "AC04" not in html
    assert own_invoice.number in facturen and own_invoice.number in betaalgegevens
    assert dashboard.context["open_amount"] == Decimal("12.10")
    for route in ("invoice_pdf", "invoice_ubl"):
        assert (
            get(client, member, reverse(f"portal:{route}", args=[other_invoice.pk])).status_code
            == 404
        )
