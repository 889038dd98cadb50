"""Back office: billing runs with progress and retry, invoices read-only with a credit action."""

from datetime import date

import pytest
from django.urls import reverse

from afas_sb.money import format_eur
from billing.bankfiles import writer
from billing.models import BillingRun, Invoice, NumberSeries
from billing.services.credit import credit_note_issue
from licensing.models import Price
from tests.factories import OrganisationFactory, make_catalogue

from .builders import agreement_for, belgian_business, run_month
from .collection_builders import read

pytestmark = pytest.mark.django_db

JANUARY = date(2027, 1, 1)


@pytest.fixture
def invoices(db):
    catalogue = make_catalogue()
    dutch = agreement_for(catalogue, OrganisationFactory(legal_name="Bakkerij De Gouden Korst"))
    belgian = agreement_for(catalogue, belgian_business(legal_name="Brasserie Het Anker"))
    run_month(JANUARY)
    return Invoice.objects.get(agreement=dutch), Invoice.objects.get(agreement=belgian)


def changelist(client, model, **params):
    return client.get(reverse(f"admin:billing_{model}_changelist"), params)


# --- Invoices -----------------------------------------------------------------------------------


def test_invoice_admin_lists_searches_and_filters(staff_client, invoices):
    dutch, belgian = invoices

    page = changelist(staff_client, "invoice")
    by_name = changelist(staff_client, "invoice", q="Gouden Korst")
    by_agreement = changelist(staff_client, "invoice", q=belgian.agreement.number)
    by_kvk = changelist(staff_client, "invoice", q=dutch.buyer_kvk)
    belgian_only = changelist(staff_client, "invoice", land="BE")
    open_subscriptions = changelist(
        staff_client, "invoice", status="open", purpose="subscription", kind="invoice"
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert dutch.number in html and belgian.number in html
    assert "€ 77,44" in html  # gross total, Dutch notation
    assert [i.number for i in by_name.context["cl"].result_list] == [dutch.number]
    assert [i.number for i in by_agreement.context["cl"].result_list] == [belgian.number]
    assert [i.number for i in by_kvk.context["cl"].result_list] == [dutch.number]
    assert [i.number for i in belgian_only.context["cl"].result_list] == [belgian.number]
    assert len(open_subscriptions.context["cl"].result_list) == 2


def test_r12_invoice_admin_shows_balances_and_filters_partly_paid_and_overpaid(
    staff_client, staff_user, invoices
):
    dutch, belgian = invoices
    read(writer.camt053([writer.transfer("20.00", remittance=f"Factuur {dutch.number}")]))
    read(writer.camt053([writer.transfer(belgian.gross_total, remittance=belgian.number)]))
    # Paid in full, then credited in full: the money is owed back.
    credit_note_issue(invoice=belgian, lines=None, reason="Dubbel", staff_user=staff_user)

    partly = changelist(staff_client, "invoice", saldo="partly")
    overpaid = changelist(staff_client, "invoice", saldo="overpaid")
    still_open = changelist(staff_client, "invoice", saldo="open")
    detail = staff_client.get(reverse("admin:billing_invoice_change", args=[dutch.pk]))

    assert [i.number for i in partly.context["cl"].result_list] == [dutch.number]
    assert [i.number for i in overpaid.context["cl"].result_list] == [belgian.number]
    assert [i.number for i in still_open.context["cl"].result_list] == [dutch.number]
    assert format_eur(-belgian.gross_total) in overpaid.content.decode()
    html = detail.content.decode()
    assert "€ 20,00" in html and format_eur(dutch.gross_total - 20) in html


def test_invoice_admin_detail_is_read_only_with_lines_and_vat(staff_client, invoices):
    dutch, _belgian = invoices

    response = staff_client.get(reverse("admin:billing_invoice_change", args=[dutch.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Basislicentie januari 2027" in html
    assert "btw per categorie" in html.lower()
    assert 'name="_save"' not in html
    assert "deletelink" not in html


def test_invoice_admin_cannot_add_change_or_delete(staff_client, invoices):
    dutch, _belgian = invoices

    assert staff_client.get(reverse("admin:billing_invoice_add")).status_code == 403
    assert (
        staff_client.get(reverse("admin:billing_invoice_delete", args=[dutch.pk])).status_code
        == 403
    )
    response = staff_client.post(
        reverse("admin:billing_invoice_change", args=[dutch.pk]), {"buyer_name": "Anders"}
    )
    assert response.status_code == 403
    dutch.refresh_from_db()
    assert dutch.buyer_name == "Bakkerij De Gouden Korst"


def test_r9_credit_note_action_asks_for_a_reason_then_credits_the_whole_invoice(
    staff_client, staff_user, invoices
):
    dutch, _belgian = invoices
    url = reverse("admin:billing_invoice_changelist")
    selection = {"action": "create_credit_note", "_selected_action": [dutch.pk]}

    confirm = staff_client.post(url, selection)
    missing_reason = staff_client.post(url, {**selection, "apply": "yes", "reason": " "})

    assert confirm.status_code == 200
    assert "Creditnota maken" in confirm.content.decode()
    assert dutch.number in confirm.content.decode()
    assert missing_reason.status_code == 200
    assert "Vul de reden in." in missing_reason.content.decode()
    assert not Invoice.objects.filter(kind="credit_note").exists()

    done = staff_client.post(
        url, {**selection, "apply": "yes", "reason": "Dubbel gefactureerd"}, follow=True
    )

    credit_note = Invoice.objects.get(kind="credit_note")
    dutch.refresh_from_db()
    assert (credit_note.credited_invoice, credit_note.reason) == (dutch, "Dubbel gefactureerd")
    assert credit_note.gross_total == dutch.gross_total
    assert dutch.status == "credited"
    messages = [str(m) for m in done.context["messages"]]
    assert any(credit_note.number in m and dutch.number in m for m in messages)

    again = staff_client.post(url, {**selection, "apply": "yes", "reason": "Nog eens"}, follow=True)
    assert any("al volledig gecrediteerd" in str(m) for m in again.context["messages"])
    assert Invoice.objects.filter(kind="credit_note").count() == 1


def test_number_series_admin_shows_the_counters_read_only(staff_client, invoices):
    response = changelist(staff_client, "numberseries")

    html = response.content.decode()
    assert "invoice-2027" in html and "2027-000002" in html
    assert staff_client.get(reverse("admin:billing_numberseries_add")).status_code == 403
    series = NumberSeries.objects.get()
    response = staff_client.post(
        reverse("admin:billing_numberseries_change", args=[series.pk]), {"last_number": 0}
    )
    assert response.status_code == 403
    series.refresh_from_db()
    assert series.last_number == 2


# --- Billing runs -------------------------------------------------------------------------------


def test_billing_run_admin_shows_progress_and_failed_chunks_and_retries_them(
    staff_client, django_capture_on_commit_callbacks
):
    catalogue = make_catalogue()
    agreement_for(catalogue, base=1, view_only=1)
    prices = list(Price.objects.filter(component=catalogue["view_only"]).values())
    Price.objects.filter(component=catalogue["view_only"]).delete()
    run = run_month(JANUARY)

    listing = changelist(staff_client, "billingrun").content.decode()
    detail = staff_client.get(reverse("admin:billing_billingrun_change", args=[run.pk]))

    assert "0/1 delen klaar (0%)" in listing
    assert "Met fouten" in listing
    assert "geen prijs voor onderdeel" in detail.content.decode()

    Price.objects.bulk_create(Price(**values) for values in prices)  # staff fix the price list
    with django_capture_on_commit_callbacks(execute=True):  # the workers, in-process
        staff_client.post(
            reverse("admin:billing_billingrun_changelist"),
            {"action": "retry_failed_chunks", "_selected_action": [run.pk]},
        )
    response = changelist(staff_client, "billingrun")

    run.refresh_from_db()
    assert (run.status, run.chunks_done, run.chunks_failed, run.invoices_created) == (
        "done",
        1,
        0,
        1,
    )
    assert "1/1 delen klaar (100%)" in response.content.decode()
    assert Invoice.objects.count() == 1


def test_billing_run_admin_cannot_add_or_delete(staff_client):
    run = run_month(JANUARY)

    assert staff_client.get(reverse("admin:billing_billingrun_add")).status_code == 403
    assert (
        staff_client.get(reverse("admin:billing_billingrun_delete", args=[run.pk])).status_code
        == 403
    )
    assert BillingRun.objects.count() == 1
