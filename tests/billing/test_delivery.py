"""Delivery of invoices (R10): e-mail with PDF + UBL, Peppol outbox or access point, retries."""

from __future__ import annotations

import json
import smtplib
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection
from django.urls import reverse

import billing.admin.delivery  # noqa: F401 - registers the admin before the URLconf loads
from afas_sb.audit.models import AuditEvent
from afas_sb.scheduler.registry import actions
from billing.delivery_calendar import invoice_delivery
from billing.models import InvoiceDelivery
from billing.services.delivery import (
    SendResult,
    deliveries_sweep,
    delivery_resend,
    delivery_schedule,
    delivery_schedule_for_invoices,
    delivery_send,
)
from tests.billing.invoice_factories import belgian_organisation, dutch_organisation, make_invoice
from tests.factories import MembershipFactory, OrganisationFactory, UserFactory

NOW = datetime(2027, 1, 1, 6, 0, tzinfo=UTC)
BARRIER_TIMEOUT = 20


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def peppol_customer():
    return belgian_organisation(peppol_scheme="0208", peppol_endpoint_id="0403170701")


class OutageBackend(LocmemBackend):
    """An SMTP server that is down."""

    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


OUTAGE = f"{__name__}.OutageBackend"


# -- e-mail -----------------------------------------------------------------------


@pytest.mark.django_db
def test_r10_email_delivery_sends_pdf_and_ubl_to_invoice_address_and_billing_contacts(
    clock, mailbox
):
    organisation = dutch_organisation(billing_email="facturen@goudenkorst.nl")
    MembershipFactory(
        organisation=organisation, role="billing", user=UserFactory(email="fin@goudenkorst.nl")
    )
    MembershipFactory(
        organisation=organisation, role="member", user=UserFactory(email="jan@goudenkorst.nl")
    )
    invoice = make_invoice(organisation=organisation, number="2027-000101")

    delivery = delivery_schedule(invoice=invoice)
    result = delivery_send(delivery_id=delivery.pk)

    assert result == SendResult.SENT
    [message] = mailbox
    assert message.to == ["facturen@goudenkorst.nl", "fin@goudenkorst.nl"]
    assert message.subject == "[AFAS SB] Factuur 2027-000101"
    assert "factuur 2027-000101" in message.body and "€" in message.body
    assert message.alternatives[0][1] == "text/html"
    attachments = {name: (content, mimetype) for name, content, mimetype in message.attachments}
    assert set(attachments) == {"2027-000101.pdf", "2027-000101.xml"}
    assert attachments["2027-000101.pdf"][0].startswith(b"%PDF-")
    assert attachments["2027-000101.pdf"][1] == "application/pdf"
    assert b"<Invoice" in attachments["2027-000101.xml"][0]
    delivery.refresh_from_db()
    assert delivery.channel == "email" and delivery.status == "sent"
    assert delivery.sent_at == NOW and delivery.attempts == 1 and delivery.last_error == ""
    assert delivery.external_id == message.extra_headers["Message-ID"]
    assert delivery.recipient == "facturen@goudenkorst.nl, fin@goudenkorst.nl"
    assert AuditEvent.objects.filter(action="billing.invoice_delivered").count() == 1


@pytest.mark.django_db
def test_r10_delivery_schedule_is_idempotent_and_picks_peppol_when_the_buyer_has_an_endpoint(
    clock,
):
    email_invoice = make_invoice()
    peppol_invoice = make_invoice(organisation=peppol_customer())

    first = delivery_schedule(invoice=peppol_invoice)
    again = delivery_schedule(invoice=peppol_invoice)
    by_mail = delivery_schedule(invoice=email_invoice)

    assert first.pk == again.pk and InvoiceDelivery.objects.count() == 2
    assert (first.channel, first.recipient, first.status) == (
        "peppol",
        "0208:0403170701",
        "pending",
    )
    assert first.next_attempt_at == NOW and first.attempts == 0
    assert by_mail.channel == "email" and by_mail.recipient == email_invoice.buyer_email


@pytest.mark.django_db
def test_r10_delivery_schedule_for_invoices_in_bulk_with_constant_queries(
    clock, django_assert_max_num_queries
):
    invoices = [make_invoice(organisation=OrganisationFactory()) for _ in range(6)]
    invoices.append(make_invoice(organisation=peppol_customer()))
    delivery_schedule(invoice=invoices[0])
    ids = [invoice.pk for invoice in invoices]

    with django_assert_max_num_queries(5):
        created = delivery_schedule_for_invoices(invoice_ids=ids)
    again = delivery_schedule_for_invoices(invoice_ids=ids)

    assert (created, again) == (6, 0)
    assert InvoiceDelivery.objects.filter(status="pending").count() == 7
    assert InvoiceDelivery.objects.get(invoice=invoices[-1]).channel == "peppol"


# -- Peppol: outbox ------------------------------------------------------------------


@pytest.mark.django_db
def test_r10_peppol_outbox_delivery_writes_the_ubl_file(clock, media_root, mailbox):
    invoice = make_invoice(organisation=peppol_customer(), number="2027-000102")
    delivery = delivery_schedule(invoice=invoice)

    assert delivery_send(delivery_id=delivery.pk) == SendResult.SENT

    outbox = media_root / "peppol-outbox"
    assert [path.name for path in outbox.iterdir()] == ["2027-000102.xml"]
    ubl = invoice.documents.get(format="ubl")
    with ubl.file.open("rb") as handle:
        assert (outbox / "2027-000102.xml").read_bytes() == handle.read()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.external_id) == ("sent", "2027-000102.xml")
    assert mailbox == []


# -- Peppol: HTTP access point -------------------------------------------------------


class AccessPoint:
    """A local access point on an ephemeral port that answers what the test tells it to."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 202
        self.body = b'{"message_id": "ap-msg-1"}'
        access_point = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                access_point.requests.append(
                    {"headers": dict(self.headers), "body": self.rfile.read(length)}
                )
                self.send_response(access_point.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(access_point.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/documents"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def access_point(settings):
    with AccessPoint() as server:
        settings.PEPPOL_TRANSPORT = "http"
        settings.PEPPOL_ACCESS_POINT_URL = server.url
        settings.PEPPOL_ACCESS_POINT_TOKEN = "geheim-token"
        yield server


@pytest.mark.django_db
def test_r10_access_point_2xx_is_sent_with_its_message_id_and_the_idempotency_key(
    clock, access_point
):
    invoice = make_invoice(organisation=peppol_customer(), number="2027-000103")
    delivery = delivery_schedule(invoice=invoice)

    assert delivery_send(delivery_id=delivery.pk) == SendResult.SENT

    [request] = access_point.requests
    assert request["headers"]["Idempotency-Key"] == "2027-000103"
    assert request["headers"]["Authorization"] == "Bearer geheim-token"
    assert request["headers"]["Content-Type"] == "application/xml"
    assert request["headers"]["X-Peppol-Receiver"] == "0208:0403170701"
    assert request["body"].startswith(b"<?xml") and b"2027-000103" in request["body"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.external_id, delivery.attempts) == ("sent", "ap-msg-1", 1)


@pytest.mark.django_db
def test_r10_access_point_503_leaves_it_pending_with_back_off(clock, access_point):
    access_point.status, access_point.body = 503, b'{"error": "onderhoud"}'
    delivery = delivery_schedule(invoice=make_invoice(organisation=peppol_customer()))

    first = delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert first == SendResult.RETRY
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.next_attempt_at == NOW + timedelta(minutes=5)
    assert "HTTP 503" in delivery.last_error

    # Not due yet: the sweep leaves it alone.
    assert deliveries_sweep().results == {}
    clock.move_to(NOW + timedelta(minutes=5), tick=False)
    assert delivery_send(delivery_id=delivery.pk) == SendResult.RETRY
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.next_attempt_at == NOW + timedelta(minutes=5 + 10)

    access_point.status, access_point.body = 200, b'{"id": "ap-msg-2"}'
    clock.move_to(NOW + timedelta(minutes=15), tick=False)
    assert deliveries_sweep().results == {"sent": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.external_id, delivery.last_error) == ("sent", "ap-msg-2", "")
    assert {r["headers"]["Idempotency-Key"] for r in access_point.requests} == {
        delivery.invoice.number
    }


@pytest.mark.django_db
def test_r10_access_point_400_fails_at_once_with_the_reason(clock, access_point):
    access_point.status, access_point.body = 400, b'{"error": "onbekende ontvanger"}'
    delivery = delivery_schedule(invoice=make_invoice(organisation=peppol_customer()))

    assert delivery_send(delivery_id=delivery.pk) == SendResult.FAILED

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert "HTTP 400" in delivery.last_error and "onbekende ontvanger" in delivery.last_error
    assert AuditEvent.objects.filter(action="billing.invoice_delivery_failed").count() == 1
    # A failed delivery waits for staff: the sweep does not retry it.
    clock.move_to(NOW + timedelta(days=1), tick=False)
    assert deliveries_sweep().results == {}
    assert len(access_point.requests) == 1


# -- outages, retries, the sweep -------------------------------------------------------


@pytest.mark.django_db
def test_r10_smtp_outage_delays_delivery_and_the_sweep_sends_it_later(clock, settings, mailbox):
    settings.EMAIL_BACKEND = OUTAGE
    delivery = delivery_schedule(invoice=make_invoice())

    assert deliveries_sweep().results == {"retry": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "Connection unexpectedly closed" in delivery.last_error
    assert mailbox == []

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    clock.move_to(NOW + timedelta(minutes=5), tick=False)
    assert deliveries_sweep().results == {"sent": 1}
    assert deliveries_sweep().results == {}

    assert len(mailbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)


@pytest.mark.django_db
def test_r10_back_off_doubles_up_to_six_hours_then_fails_after_max_attempts(clock, settings):
    settings.EMAIL_BACKEND = OUTAGE
    settings.INVOICE_DELIVERY_MAX_ATTEMPTS = 8
    delivery = delivery_schedule(invoice=make_invoice())
    waits = []
    moment = NOW
    for _attempt in range(7):
        assert delivery_send(delivery_id=delivery.pk) == SendResult.RETRY
        delivery.refresh_from_db()
        waits.append(delivery.next_attempt_at - moment)
        moment = delivery.next_attempt_at
        clock.move_to(moment, tick=False)

    assert waits == [timedelta(minutes=m) for m in (5, 10, 20, 40, 80, 160, 320)]
    assert delivery_send(delivery_id=delivery.pk) == SendResult.FAILED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 8)


@pytest.mark.django_db
def test_r10_repeated_sweeps_send_each_invoice_once(clock, mailbox):
    for _ in range(3):
        delivery_schedule(invoice=make_invoice(organisation=OrganisationFactory()))

    first = deliveries_sweep()
    second = deliveries_sweep()
    delivery_send(delivery_id=InvoiceDelivery.objects.first().pk)

    assert first.results == {"sent": 3} and second.results == {}
    assert len(mailbox) == 3
    assert set(InvoiceDelivery.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_r10_sweep_picks_up_a_delivery_stuck_in_sending(clock, mailbox):
    delivery = delivery_schedule(invoice=make_invoice())
    # A worker marked it SENDING and died before the e-mail left.
    InvoiceDelivery.objects.filter(pk=delivery.pk).update(
        status="sending", next_attempt_at=NOW + timedelta(minutes=15)
    )

    assert deliveries_sweep().results == {}
    clock.move_to(NOW + timedelta(minutes=15), tick=False)
    assert deliveries_sweep().results == {"sent": 1}
    assert len(mailbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r10_two_sweeps_at_once_send_one_email(settings, tmp_path, mailbox):
    settings.MEDIA_ROOT = tmp_path / "media"
    delivery = delivery_schedule(invoice=make_invoice())
    barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT)
    results, errors = [], []

    def sweep():
        try:
            barrier.wait()
            results.append(deliveries_sweep().results)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BARRIER_TIMEOUT * 2)

    assert errors == []
    assert len(mailbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert sum(result.get("sent", 0) for result in results) == 1


# -- staff ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_r10_resend_from_admin_sends_a_sent_invoice_again_and_is_audited(
    clock, staff_client, staff_user, mailbox, django_capture_on_commit_callbacks
):
    delivery = delivery_schedule(invoice=make_invoice(number="2027-000104"))
    delivery_send(delivery_id=delivery.pk)
    assert len(mailbox) == 1
    clock.move_to(NOW + timedelta(minutes=30), tick=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:billing_invoicedelivery_changelist"),
            {"action": "resend", "_selected_action": [delivery.pk]},
            follow=True,
        )

    assert response.status_code == 200
    assert "1 factuur wordt opnieuw verstuurd." in response.content.decode()
    assert len(mailbox) == 2
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.sent_at == NOW + timedelta(minutes=30)
    event = AuditEvent.objects.get(action="billing.invoice_delivery_resent")
    assert event.actor_user == staff_user and event.data["previous_status"] == "sent"


@pytest.mark.django_db
def test_r10_resend_of_a_failed_delivery_makes_it_due_now(clock, settings, staff_user):
    settings.EMAIL_BACKEND = OUTAGE
    settings.INVOICE_DELIVERY_MAX_ATTEMPTS = 1
    delivery = delivery_schedule(invoice=make_invoice())
    delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed"

    delivery_resend(delivery=delivery, staff_user=staff_user, enqueue=False)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("pending", 0, NOW)


@pytest.mark.django_db
def test_r10_resend_while_sending_is_refused_in_dutch_and_changes_nothing(clock, staff_user):
    from afas_sb.errors import Conflict

    delivery = delivery_schedule(invoice=make_invoice(number="2027-000105"))
    InvoiceDelivery.objects.filter(pk=delivery.pk).update(
        status="sending", next_attempt_at=NOW + timedelta(minutes=15)
    )

    with pytest.raises(Conflict, match="2027-000105 wordt op dit moment verstuurd"):
        delivery_resend(delivery=delivery, staff_user=staff_user)

    delivery.refresh_from_db()
    assert delivery.status == "sending"
    assert not AuditEvent.objects.filter(action="billing.invoice_delivery_resent").exists()


@pytest.mark.django_db
def test_r10_delivery_state_is_visible_in_admin(clock, staff_client, settings, access_point):
    access_point.status, access_point.body = 400, b'{"error": "onbekende ontvanger"}'
    delivery = delivery_schedule(
        invoice=make_invoice(organisation=peppol_customer(), number="2027-000106")
    )
    delivery_send(delivery_id=delivery.pk)
    url = reverse("admin:billing_invoicedelivery_changelist")

    listing = staff_client.get(url, {"status__exact": "failed"}).content.decode()
    found = staff_client.get(url, {"q": "2027-000106"}).content.decode()
    detail = staff_client.get(
        reverse("admin:billing_invoicedelivery_change", args=[delivery.pk])
    ).content.decode()

    for page in (listing, found):
        assert "2027-000106" in page and "Mislukt" in page and "0208:0403170701" in page
    assert "onbekende ontvanger" in detail


# -- calendar ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_r10_daily_calendar_action_sweeps_after_commit(
    clock, mailbox, django_capture_on_commit_callbacks
):
    assert "billing.invoice_delivery" in {action.name for action in actions()}
    delivery_schedule(invoice=make_invoice())

    with django_capture_on_commit_callbacks(execute=True):
        outcome = invoice_delivery(NOW.date())

    assert outcome == "1 factuur/facturen klaar om te versturen"
    assert len(mailbox) == 1


def test_access_point_answer_without_json_falls_back_to_header_or_key():
    from billing.delivery.peppol import _message_id

    assert _message_id(b"") == "" and _message_id(b"not json") == ""
    assert _message_id(json.dumps({"message_id": "x"}).encode()) == "x"


@pytest.mark.django_db(transaction=True)
def test_r10_every_issued_invoice_gets_a_pending_delivery():
    from datetime import date as _date

    from billing.models import InvoiceDelivery
    from billing.services.issue import invoice_issue_one_off
    from tests.factories import OrganisationFactory

    organisation = OrganisationFactory(peppol_scheme="0106", peppol_endpoint_id="12345678")
    invoice = invoice_issue_one_off(
        organisation=organisation,
        description="Cursus AFAS SB",
        quantity=1,
        unit_price="295.00",
        issue_date=_date(2026, 11, 2),
        reference="CURSUS-7",
    )

    delivery = InvoiceDelivery.objects.get(invoice=invoice)
    assert delivery.status == InvoiceDelivery.Status.PENDING
    assert delivery.channel == InvoiceDelivery.Channel.PEPPOL
