"""Back office for collections (R12): debits, batches, bank files, the unmatched queue,
payments, collection e-mails and the monthly overview. Staff only; money rows read-only."""

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from afas_sb.audit.models import AuditEvent
from billing.bankfiles import writer as generate
from billing.models import (
    BankFileImport,
    BankTransaction,
    CollectionNotice,
    DebitBatch,
    DirectDebit,
    Invoice,
    Payment,
)
from billing.services.notices import notice_queue
from tests.conftest import login_with_mfa
from tests.factories import MembershipFactory

from .collection_states import (
    BATCH_DAY,
    bounce,
    collect,
    debited,
    one_off,
    pay_by_transfer,
    represent,
    submitted,
)
from .debit_builders import at, customer

pytestmark = pytest.mark.django_db

_numbers = count(1)

NOW = datetime(2027, 3, 20, 10, 0, tzinfo=UTC)  # a Saturday, after the March collections


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SEPA_SUBMISSION = "manual"


@pytest.fixture
def staff(client, staff_user, time_machine):
    """Staff logged in (password + TOTP) on ``NOW``; the clock stays there."""
    time_machine.move_to(NOW, tick=False)
    return login_with_mfa(client, staff_user)


def batched(organisation, amount="100.00") -> DebitBatch:
    """A batch "created" (not yet handed to the bank) with one debit."""
    debited(organisation, amount)
    with at(BATCH_DAY):
        from billing.services.debit_batches import debit_batches_create

        (batch,) = debit_batches_create(day=BATCH_DAY)
    return batch


def unmatched(
    amount="121.00", *, name="Bakkerij De Gouden Korst", text="Betaling"
) -> BankTransaction:
    """A transfer the import could not place, as it stores one."""
    n = next(_numbers)
    bank_file = BankFileImport.objects.create(
        kind="camt.053",
        version="camt.053.001.02",
        message_id=f"STMT-{n}",
        filename=f"afschrift-{n}.xml",
        sha256=f"{n:064d}",
        size=1000,
        imported_at=NOW,
    )
    return BankTransaction.objects.create(
        import_file=bank_file,
        unique_key=f"STMT-{n}/1",
        kind=BankTransaction.Kind.TRANSFER_IN,
        state=BankTransaction.State.UNMATCHED,
        booking_date=date(2027, 3, 18),
        amount=Decimal(amount),
        credit_debit="CRDT",
        description=text,
        counterparty_name=name,
        counterparty_iban="NL44RABO0123456788",
        created_at=NOW,
    )


def changelist(client, model, **params):
    return client.get(reverse(f"admin:billing_{model}_changelist"), params)


def results(response) -> list:
    return list(response.context["cl"].result_list)


# --- Access ----------------------------------------------------------------------------------

MODELS = ["directdebit", "debitbatch", "bankfileimport", "banktransaction", "payment"]
MODELS += ["collectionnotice"]


@pytest.fixture
def some_of_everything(staff):
    """A collected debit, a returned one with a retry, a failed e-mail, a queue entry."""
    collected_invoice, collected_debit = submitted(customer(legal_name="Bakkerij De Gouden Korst"))
    collect(collected_debit)
    returned_invoice, returned_debit = submitted(customer(legal_name="Slagerij Het Hoekje"))
    bounce(collect(returned_debit), "AM04", on=date(2027, 3, 17))
    retry = represent(returned_debit, date(2027, 3, 24))
    notice = notice_queue(debit=retry, kind=CollectionNotice.Kind.PRENOTIFICATION)
    CollectionNotice.objects.filter(pk=notice.pk).update(
        status=CollectionNotice.Status.FAILED, attempts=8, last_error="SMTPException: down"
    )
    transaction = unmatched()
    return {
        "collected": (collected_invoice, collected_debit),
        "returned": (returned_invoice, returned_debit),
        "retry": retry,
        "notice": notice,
        "transaction": transaction,
    }


@pytest.mark.parametrize("model", MODELS)
def test_collection_admin_lists_and_details_render_for_staff(staff, some_of_everything, model):
    params = {"stand": "all"} if model == "banktransaction" else {}
    response = changelist(staff, model, **params)

    assert response.status_code == 200
    objects = results(response)
    assert objects
    detail = staff.get(reverse(f"admin:billing_{model}_change", args=[objects[0].pk]))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()


@pytest.mark.parametrize("model", MODELS)
def test_collection_admin_never_adds_or_deletes_money_rows(staff, some_of_everything, model):
    params = {"stand": "all"} if model == "banktransaction" else {}
    obj = results(changelist(staff, model, **params))[0]

    assert staff.get(reverse(f"admin:billing_{model}_add")).status_code == 403
    assert staff.get(reverse(f"admin:billing_{model}_delete", args=[obj.pk])).status_code == 403


def _custom_urls(everything) -> list[str]:
    batch = DebitBatch.objects.first()
    return [
        reverse("admin:billing_debitbatch_overview"),
        reverse("admin:billing_debitbatch_download", args=[batch.pk]),
        reverse("admin:billing_bankfileimport_upload"),
        reverse("admin:billing_banktransaction_match", args=[everything["transaction"].pk]),
    ]


def test_collection_admin_views_render_for_staff(staff, some_of_everything):
    for url in _custom_urls(some_of_everything):
        assert staff.get(url).status_code == 200, url


def test_collection_admin_refuses_customers_and_anonymous(some_of_everything):
    client = Client()  # the staff fixture's client is logged in
    customer_user = MembershipFactory().user
    urls = _custom_urls(some_of_everything) + [
        reverse(f"admin:billing_{model}_changelist") for model in MODELS
    ]

    for url in urls:
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and "login" in anonymous["Location"], url
    client.force_login(customer_user)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"], url
    assert client.post(urls[3], {"invoice_number": "2027-000001"}).status_code == 302
    assert Payment.objects.filter(bank_transaction__isnull=False).count() == 0


def test_collection_admin_actions_need_their_permission(client, time_machine, some_of_everything):
    """Staff who may only look see the overview but cannot upload, match or hand over a batch."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.utils import encrypt
    from django.contrib.auth.models import Permission

    from tests.conftest import STAFF_TOTP_SECRET
    from tests.factories import UserFactory

    reader = UserFactory(email="lezer@sb.example.nl", is_staff=True)
    reader.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="billing",
            codename__in=["view_debitbatch", "view_banktransaction", "view_bankfileimport"],
        )
    )
    Authenticator.objects.create(
        user=reader, type=Authenticator.Type.TOTP, data={"secret": encrypt(STAFF_TOTP_SECRET)}
    )
    time_machine.move_to(NOW.replace(minute=5), tick=False)  # a fresh TOTP window
    reader_client = login_with_mfa(Client(), reader)
    transaction = some_of_everything["transaction"]

    overview = reader_client.get(reverse("admin:billing_debitbatch_overview"))
    upload_page = reader_client.get(reverse("admin:billing_bankfileimport_upload"))
    match = reader_client.post(
        reverse("admin:billing_banktransaction_match", args=[transaction.pk]),
        {"invoice_number": some_of_everything["collected"][0].number},
    )
    imports = reader_client.get(reverse("admin:billing_bankfileimport_changelist"))
    batches = reader_client.get(reverse("admin:billing_debitbatch_changelist"))

    assert overview.status_code == 200
    assert upload_page.status_code == 403
    assert match.status_code == 403
    assert "Bankbestand inlezen" not in imports.content.decode()
    assert batches.status_code == 200 and "mark_submitted" not in batches.content.decode()
    assert Payment.objects.filter(bank_transaction=transaction).count() == 0


# --- Direct debits ----------------------------------------------------------------------------


def test_debit_admin_shows_reason_and_filters_and_searches(staff, some_of_everything):
    collected_invoice, collected_debit = some_of_everything["collected"]
    _returned_invoice, returned_debit = some_of_everything["returned"]

    page = changelist(staff, "directdebit")
    html = page.content.decode()
    by_status = results(changelist(staff, "directdebit", status="returned"))
    by_reason = results(changelist(staff, "directdebit", reden="AM04"))
    by_number = results(changelist(staff, "directdebit", q=collected_invoice.number))
    by_org = results(changelist(staff, "directdebit", q="Hoekje"))
    by_mandate = results(changelist(staff, "directdebit", q=collected_debit.mandate.reference))
    by_sequence = results(changelist(staff, "directdebit", sequence_type__exact="FRST"))

    assert "AM04 – Onvoldoende saldo" in html
    assert "€ 121,00" in html
    assert by_status == [returned_debit]
    assert by_reason == [returned_debit]
    assert by_number == [collected_debit]
    assert {d.pk for d in by_org} == {returned_debit.pk, some_of_everything["retry"].pk}
    assert by_mandate == [collected_debit]
    assert {d.pk for d in by_sequence} == {collected_debit.pk, returned_debit.pk}


def test_debit_admin_list_queries_do_not_grow(staff):
    submitted(customer())

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert changelist(staff, "directdebit").status_code == 200
        return len(captured)

    small = queries()
    for _ in range(6):
        submitted(customer())

    assert queries() == small


# --- Batches -----------------------------------------------------------------------------------


def test_batch_admin_lists_state_count_total_and_links_its_debits(staff):
    organisation = customer()
    batch = batched(organisation)

    html = changelist(staff, "debitbatch").content.decode()
    debits = results(
        staff.get(reverse("admin:billing_directdebit_changelist"), {"batch__id__exact": batch.pk})
    )

    assert batch.message_id in html
    assert "Aangemaakt" in html
    assert "€ 121,00" in html
    assert reverse("admin:billing_debitbatch_download", args=[batch.pk]) in html
    assert reverse("admin:billing_debitbatch_overview") in html
    assert [d.invoice.organisation_id for d in debits] == [organisation.pk]


def test_batch_admin_downloads_the_stored_pain008(staff):
    batch = batched(customer())

    response = staff.get(reverse("admin:billing_debitbatch_download", args=[batch.pk]))

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{batch.message_id}.xml"'
    with batch.file.open("rb") as handle:
        assert response.content == handle.read()
    assert b"pain.008" in response.content


def test_batch_admin_refuses_a_tampered_file(staff):
    batch = batched(customer())
    with open(batch.file.path, "ab") as handle:
        handle.write(b"<!-- changed -->")

    response = staff.get(reverse("admin:billing_debitbatch_download", args=[batch.pk]), follow=True)

    assert "klopt niet met zijn controlegetal" in response.content.decode()


def test_r12_batch_admin_marks_a_batch_submitted_once(staff, staff_user):
    batch = batched(customer())
    url = reverse("admin:billing_debitbatch_changelist")
    action = {"action": "mark_submitted", "_selected_action": [batch.pk]}

    first = staff.post(url, action, follow=True)
    second = staff.post(url, action, follow=True)

    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.SUBMITTED
    assert batch.submitted_by == staff_user
    assert DirectDebit.objects.get(batch=batch).status == DirectDebit.Status.SUBMITTED
    assert "is gemarkeerd als aangeboden" in first.content.decode()
    assert "was al aangeboden" in second.content.decode()
    assert AuditEvent.objects.filter(action="debit_batch.submitted").count() == 1


# --- Overview ---------------------------------------------------------------------------------


def test_r12_collections_overview_page(staff, some_of_everything):
    url = reverse("admin:billing_debitbatch_overview")

    response = staff.get(url)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Incasso-overzicht" in html
    assert "Maart 2027" in html
    assert "€ 121,00" in html  # collected in March
    assert "AM04 – Onvoldoende saldo (1×)" in html
    assert "1 banktransactie niet gekoppeld" in html


def test_collections_overview_page_queries_do_not_grow(staff):
    submitted(customer())

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff.get(reverse("admin:billing_debitbatch_overview")).status_code == 200
        return len(captured)

    small = queries()
    for _ in range(4):
        _invoice, debit = submitted(customer())
        bounce(collect(debit), "AM04")

    assert queries() == small


def test_admin_index_counts_the_unmatched_queue(staff):
    unmatched()
    unmatched("50.00")

    html = staff.get(reverse("admin:index")).content.decode()

    assert "2 banktransacties wachten op koppeling." in html
    assert reverse("admin:billing_debitbatch_overview") in html


# --- Bank files ----------------------------------------------------------------------------------


def upload(client, data: bytes, name="afschrift.xml", **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        reverse("admin:billing_bankfileimport_upload"),
        {"file": SimpleUploadedFile(name, data, content_type="application/xml")},
        follow=True,
        **extra,
    )


def _stored() -> tuple:
    return (
        BankFileImport.objects.count(),
        BankTransaction.objects.count(),
        Payment.objects.count(),
        list(DirectDebit.objects.order_by("pk").values_list("status", flat=True)),
    )


def test_bank_file_changelist_links_to_the_upload(staff):
    html = changelist(staff, "bankfileimport").content.decode()

    assert "Bankbestand inlezen" in html
    assert reverse("admin:billing_bankfileimport_upload") in html


def test_r12_upload_a_statement_settles_debits_and_says_what_it_did(staff, staff_user):
    invoice, debit = submitted(customer())
    data = generate.camt053([generate.collection(debit.end_to_end_id, debit.amount)])

    response = upload(staff, data, "maart.xml")

    html = response.content.decode()
    imported = BankFileImport.objects.get()
    assert response.redirect_chain[-1][0] == reverse(
        "admin:billing_bankfileimport_change", args=[imported.pk]
    )
    assert "aart.xml ingelezen (camt.053" in html  # the admin capitalises messages
    assert "1 geïncasseerd" in html
    assert imported.imported_by == staff_user
    debit.refresh_from_db()
    invoice.refresh_from_db()
    assert debit.status == DirectDebit.Status.COLLECTED
    assert invoice.status == Invoice.Status.PAID


def test_r12_upload_the_same_file_twice_changes_nothing(staff):
    _invoice, debit = submitted(customer())
    data = generate.camt053([generate.collection(debit.end_to_end_id, debit.amount)])
    upload(staff, data)
    before = _stored()

    response = upload(staff, data, "nogmaals.xml")

    assert "al eerder ingelezen" in response.content.decode()
    assert _stored() == before


HOSTILE = {
    "external entity": (
        b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&x;</Document>'
    ),
    "billion laughs": (
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
        b"<Document>&lol2;</Document>"
    ),
    "not xml": b"this is not a bank file",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_r12_upload_refuses_a_hostile_file_and_stores_nothing(staff, kind):
    submitted(customer())
    before = _stored()

    response = upload(staff, HOSTILE[kind], "kwaadaardig.xml")

    html = response.content.decode()
    assert response.status_code == 200
    assert response.redirect_chain == []
    assert "Het bestand is niet ingelezen; er is niets opgeslagen." in html
    assert response.context["form"].errors["file"]
    assert _stored() == before


def test_r12_upload_refuses_an_oversized_file_before_reading_it(staff, settings):
    settings.BANK_FILE_MAX_BYTES = 1024 * 1024
    data = generate.camt053([generate.transfer("1.00")] * 1) + b" " * (1024 * 1024)

    response = upload(staff, data)

    assert "groter dan 1 MB" in response.content.decode()
    assert BankFileImport.objects.count() == 0


# --- The unmatched queue -----------------------------------------------------------------------


def test_r12_queue_opens_on_unmatched_transactions(staff):
    waiting = unmatched()
    done = unmatched("10.00")
    BankTransaction.objects.filter(pk=done.pk).update(state=BankTransaction.State.IGNORED)

    queue = changelist(staff, "banktransaction")
    everything = changelist(staff, "banktransaction", stand="all")

    assert results(queue) == [waiting]
    assert {t.pk for t in results(everything)} == {waiting.pk, done.pk}
    html = queue.content.decode()
    assert "Bakkerij De Gouden Korst" in html
    assert "NL44RABO0123456788" in html
    assert reverse("admin:billing_banktransaction_match", args=[waiting.pk]) in html


def test_r12_an_unknown_transfer_goes_from_upload_through_the_queue_to_its_invoice(staff):
    invoice = one_off(customer(mandate=False, legal_name="Bakkerij De Gouden Korst"))
    data = generate.camt053(
        [generate.transfer("121.00", name="J. JANSEN", remittance="betaling cursus")]
    )

    upload(staff, data)
    (waiting,) = results(changelist(staff, "banktransaction"))
    match_page = staff.get(reverse("admin:billing_banktransaction_match", args=[waiting.pk]))
    staff.post(
        reverse("admin:billing_banktransaction_match", args=[waiting.pk]),
        {"invoice_number": invoice.number},
    )

    assert invoice.number in match_page.content.decode()  # suggested: same open amount
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert results(changelist(staff, "banktransaction")) == []


def test_r12_match_page_suggests_open_invoices_with_buyer_and_open_amount(staff):
    organisation = customer(mandate=False, legal_name="Bakkerij De Gouden Korst")
    invoice = one_off(organisation)
    pay_by_transfer(invoice, "21.00", date(2027, 3, 10))
    transaction = unmatched("100.00", text="zie factuur")

    response = staff.get(reverse("admin:billing_banktransaction_match", args=[transaction.pk]))

    html = response.content.decode()
    assert invoice.number in html
    assert "Bakkerij De Gouden Korst" in html
    assert "€ 100,00" in html  # still open


def test_r12_match_refuses_an_unknown_invoice_number(staff):
    transaction = unmatched()

    response = staff.post(
        reverse("admin:billing_banktransaction_match", args=[transaction.pk]),
        {"invoice_number": "2099-999999"},
    )

    assert response.status_code == 200
    assert "Er is geen factuur met dit nummer." in response.content.decode()
    transaction.refresh_from_db()
    assert transaction.state == BankTransaction.State.UNMATCHED
    assert Payment.objects.count() == 0


def test_r12_match_settles_the_invoice(staff, staff_user):
    invoice = one_off(customer(mandate=False))
    transaction = unmatched("121.00")

    response = staff.post(
        reverse("admin:billing_banktransaction_match", args=[transaction.pk]),
        {"invoice_number": invoice.number},
        follow=True,
    )

    assert f"gekoppeld aan factuur {invoice.number}" in response.content.decode()
    payment = Payment.objects.get(bank_transaction=transaction)
    assert (payment.invoice, payment.amount, payment.recorded_by) == (
        invoice,
        Decimal("121.00"),
        staff_user,
    )
    invoice.refresh_from_db()
    transaction.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert transaction.state == BankTransaction.State.MATCHED
    assert results(changelist(staff, "banktransaction")) == []


def test_r12_match_part_of_a_transfer_with_a_dutch_amount(staff):
    invoice = one_off(customer(mandate=False))
    transaction = unmatched("200.00")

    staff.post(
        reverse("admin:billing_banktransaction_match", args=[transaction.pk]),
        {"invoice_number": invoice.number, "amount": "60,50"},
    )

    assert Payment.objects.get(bank_transaction=transaction).amount == Decimal("60.50")


def test_r12_match_part_says_the_rest_stays_in_the_queue(staff):
    invoice = one_off(customer(mandate=False))
    transaction = unmatched("200.00")
    url = reverse("admin:billing_banktransaction_match", args=[transaction.pk])

    response = staff.post(url, {"invoice_number": invoice.number, "amount": "60,50"}, follow=True)

    html = response.content.decode()
    assert (
        f"€ 60,50 van de transactie van Bakkerij De Gouden Korst geboekt op factuur {invoice.number}"
        in html
    )
    assert "€ 139,50 staat nog in de wachtrij om te koppelen" in html
    assert results(changelist(staff, "banktransaction")) == [transaction]
    assert "Al geboekt: € 60,50" in staff.get(url).content.decode()


def test_r12_match_of_more_than_is_owed_says_it_was_over_paid(staff):
    invoice = one_off(customer(mandate=False))  # 121.00
    transaction = unmatched("150.00")

    response = staff.post(
        reverse("admin:billing_banktransaction_match", args=[transaction.pk]),
        {"invoice_number": invoice.number},
        follow=True,
    )

    html = response.content.decode()
    assert f"gekoppeld aan factuur {invoice.number} (€ 150,00)" in html
    assert "Er is € 29,00 te veel betaald" in html


def test_r12_match_of_a_collection_line_says_the_debit_was_collected(staff):
    invoice, debit = submitted(customer(legal_name="Slagerij Het Hoekje"))  # 121.00
    upload(staff, generate.camt053([generate.collection(debit.end_to_end_id, "121.10")]))
    (waiting,) = results(changelist(staff, "banktransaction"))

    response = staff.post(
        reverse("admin:billing_banktransaction_match", args=[waiting.pk]),
        {"invoice_number": invoice.number},
        follow=True,
    )

    assert (
        f"Incasso {debit.end_to_end_id} van Klant verwerkt als geïncasseerd: € 121,10 op "
        f"factuur {invoice.number}." in response.content.decode()
    )
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.COLLECTED


def test_r12_match_shows_the_services_refusal_as_a_form_error(staff):
    invoice = one_off(customer(mandate=False))
    transaction = unmatched("121.00")

    response = staff.post(
        reverse("admin:billing_banktransaction_match", args=[transaction.pk]),
        {"invoice_number": invoice.number, "amount": "500,00"},  # more than was transferred
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert Payment.objects.count() == 0


def test_r12_ignore_asks_for_a_note_then_sets_transactions_aside(staff):
    transaction = unmatched()
    url = reverse("admin:billing_banktransaction_changelist")
    action = {"action": "ignore_transactions", "_selected_action": [transaction.pk]}

    confirm = staff.post(url, action)
    without_note = staff.post(url, {**action, "apply": "yes", "note": ""})
    done = staff.post(
        url, {**action, "apply": "yes", "note": "Terugbetaling leverancier"}, follow=True
    )

    assert "Vul een notitie in." in without_note.content.decode()
    assert confirm.status_code == 200 and "Ja, negeren" in confirm.content.decode()
    assert "1 transactie genegeerd." in done.content.decode()
    transaction.refresh_from_db()
    assert transaction.state == BankTransaction.State.IGNORED
    assert transaction.note == "Terugbetaling leverancier"
    assert Payment.objects.count() == 0


# --- Payments and e-mails -------------------------------------------------------------------------


def test_payment_admin_lists_kind_amount_invoice_and_source(staff, some_of_everything):
    collected_invoice, collected_debit = some_of_everything["collected"]

    html = changelist(staff, "payment").content.decode()
    reversals = results(changelist(staff, "payment", kind__exact="debit_reversal"))

    assert collected_invoice.number in html
    assert collected_debit.end_to_end_id in html
    assert "Storno" in html and "€ -121,00" in html
    assert [p.amount for p in reversals] == [Decimal("-121.00")]


def test_notice_admin_sends_a_failed_email_again(
    staff, some_of_everything, mailbox, django_capture_on_commit_callbacks
):
    notice = some_of_everything["notice"]
    url = reverse("admin:billing_collectionnotice_changelist")
    action = {"action": "resend", "_selected_action": [notice.pk]}

    failed_only = results(changelist(staff, "collectionnotice", status__exact="failed"))
    with django_capture_on_commit_callbacks(execute=True):
        first = staff.post(url, action, follow=True)
    second = staff.post(url, action, follow=True)

    assert failed_only == [notice]
    assert "1 bericht wordt opnieuw verstuurd." in first.content.decode()
    assert "was niet mislukt" in second.content.decode()
    notice.refresh_from_db()
    assert notice.status == CollectionNotice.Status.SENT
    assert len(mailbox) == 1
    assert AuditEvent.objects.filter(action="collection_notice.retried").count() == 1
