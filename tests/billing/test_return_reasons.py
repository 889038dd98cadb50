"""Each SEPA return reason's path (R12): re-present, once, never, or invalidate the mandate.

AM04 (insufficient funds) is re-presented up to SEPA_MAX_REPRESENTMENTS times,
SEPA_REPRESENT_AFTER_DAYS after the return, on a TARGET2 day; MS03 at most once;
MD06/MS02 and unknown codes never; AC01/AC04/AC06/AG01/MD01/MD07/SL01 make the
mandate invalid. After the last failed attempt the customer is asked to pay by
transfer, once, however often the sweep runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import override_settings

from afas_sb.audit.models import AuditEvent
from billing.bankfiles.writer import (
    camt053,
    camt054,
    collection,
    debit_return,
    pain002,
    status,
    transfer,
)
from billing.models import CollectionNotice, DirectDebit, Mandate
from billing.services.debits import debit_create, debits_plan
from billing.services.ledger import invoice_lock
from billing.services.mandates import FRST, mandate_sequence_type, mandate_sign
from billing.services.notices import notices_sweep

from .collection_builders import (
    customer_iban,
    customer_with_debit,
    debit_at_bank,
    direct_customer,
    open_invoice,
    read,
    submit,
)

pytestmark = pytest.mark.django_db

INVALIDATING = ["AC01", "AC04", "AC06", "AG01", "MD01", "MD07", "SL01"]


def at(day: date, time_machine) -> date:
    time_machine.move_to(datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC), tick=False)
    return day


def returned(debit, code, day, **kwargs):
    """The bank returns ``debit`` with ``code`` on ``day`` (a camt.054 notification)."""
    return read(
        camt054([debit_return(debit.end_to_end_id, debit.amount, code, booking_date=day)]), **kwargs
    )


def attempts(invoice) -> list[tuple[int, str, str]]:
    return list(
        DirectDebit.objects.filter(invoice=invoice)
        .order_by("attempt")
        .values_list("attempt", "status", "return_reason")
    )


def notices(kind) -> list[str]:
    return list(
        CollectionNotice.objects.filter(kind=kind)
        .order_by("pk")
        .values_list("debit__end_to_end_id", flat=True)
    )


def latest(invoice) -> DirectDebit:
    return DirectDebit.objects.filter(invoice=invoice).order_by("-attempt").first()


# --- AM04: re-presented ------------------------------------------------------------------


def test_r12_am04_is_represented_twice_then_the_customer_is_asked_to_pay_by_transfer(
    time_machine,
):
    at(date(2027, 3, 5), time_machine)
    _org, mandate, invoice, first = customer_with_debit()

    summary = returned(first, "AM04", date(2027, 3, 5)).summary

    assert summary["represented"] == 1
    second = latest(invoice)
    assert (second.attempt, second.status) == (2, DirectDebit.Status.SCHEDULED)
    assert second.mandate == mandate
    assert second.amount == Decimal("92.57")
    # Seven days after the return, on a TARGET2 day.
    assert second.collection_date == date(2027, 3, 12)
    assert second.prenotified_at is not None
    assert notices(CollectionNotice.Kind.RETRY) == [second.end_to_end_id]

    at(date(2027, 3, 12), time_machine)
    submit(second)
    returned(second, "AM04", date(2027, 3, 12))
    third = latest(invoice)
    assert (third.attempt, third.collection_date) == (3, date(2027, 3, 19))

    at(date(2027, 3, 19), time_machine)
    submit(third)
    summary = returned(third, "AM04", date(2027, 3, 19)).summary

    assert summary["represented"] == 0
    assert summary["pay_by_transfer"] == 1
    assert attempts(invoice) == [
        (1, "returned", "AM04"),
        (2, "returned", "AM04"),
        (3, "returned", "AM04"),
    ]
    assert notices(CollectionNotice.Kind.RETRY) == [second.end_to_end_id, third.end_to_end_id]
    assert notices(CollectionNotice.Kind.PAY_BY_TRANSFER) == [third.end_to_end_id]
    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.ACTIVE
    outcomes = list(
        AuditEvent.objects.filter(action="debit.returned")
        .order_by("pk")
        .values_list("data__outcome", flat=True)
    )
    assert outcomes == ["represented", "represented", "pay_by_transfer"]


@pytest.mark.parametrize("maximum, represented", [(0, 0), (1, 1), (3, 3)])
def test_r12_the_number_of_representments_is_configurable(maximum, represented, time_machine):
    at(date(2027, 3, 5), time_machine)
    _org, _mandate, invoice, debit = customer_with_debit()

    with override_settings(SEPA_MAX_REPRESENTMENTS=maximum):
        for _round in range(maximum + 1):
            returned(debit, "AM04", debit.collection_date)
            new = latest(invoice)
            if new.status != DirectDebit.Status.SCHEDULED:
                break
            debit = submit(new)

    assert DirectDebit.objects.filter(invoice=invoice).count() == represented + 1
    assert notices(CollectionNotice.Kind.PAY_BY_TRANSFER) == [latest(invoice).end_to_end_id]


@pytest.mark.parametrize(
    "returned_on, collection_date",
    [
        # +7 is Good Friday 26 March 2027, then Easter Monday: Tuesday 30 March.
        (date(2027, 3, 19), date(2027, 3, 30)),
        # +7 is Christmas Day 2026 (Friday), then Boxing Day and Sunday: Monday 28 December.
        (date(2026, 12, 18), date(2026, 12, 28)),
        # +7 is 1 May 2026 (Friday, Labour Day): Monday 4 May.
        (date(2026, 4, 24), date(2026, 5, 4)),
        # +7 is New Year's Day 2027 (Friday): Monday 4 January.
        (date(2026, 12, 25), date(2027, 1, 4)),
    ],
    ids=["easter", "christmas", "labour_day", "new_year"],
)
def test_r12_representment_avoids_target2_closing_days(returned_on, collection_date, time_machine):
    at(returned_on, time_machine)
    _org, _mandate, invoice, debit = customer_with_debit()

    returned(debit, "AM04", returned_on)

    assert latest(invoice).collection_date == collection_date


def test_r12_representment_collects_only_what_is_still_open(time_machine):
    at(date(2027, 3, 5), time_machine)
    _org, _mandate, invoice, debit = customer_with_debit()
    read(camt053([transfer("50.00", remittance=f"Factuur {invoice.number}")]))

    returned(debit, "AM04", date(2027, 3, 5))

    assert latest(invoice).amount == Decimal("42.57")


def test_r12_no_representment_when_the_invoice_was_paid_meanwhile(time_machine):
    at(date(2027, 3, 5), time_machine)
    _org, _mandate, invoice, debit = customer_with_debit()

    summary = read(
        camt053(
            [
                debit_return(debit.end_to_end_id, debit.amount, "AM04"),
                transfer("92.57", remittance=f"Factuur {invoice.number}"),
            ]
        )
    ).summary

    assert summary["represented"] == 0
    assert summary["pay_by_transfer"] == 0
    assert DirectDebit.objects.filter(invoice=invoice).count() == 1
    assert not CollectionNotice.objects.exists()


def test_r12_rejected_am04_in_a_pain002_is_represented_too(time_machine):
    at(date(2027, 3, 3), time_machine)
    _org, _mandate, invoice, debit = customer_with_debit()

    read(pain002([status(debit.end_to_end_id, "RJCT", reason="AM04")], original_message_id="X"))

    assert attempts(invoice) == [(1, "rejected", "AM04"), (2, "scheduled", "")]


def new_iban(organisation) -> Mandate:
    """The customer signs a mandate for another account: the old one is replaced."""
    return mandate_sign(
        organisation=organisation,
        account_holder=organisation.legal_name[:70],
        iban=customer_iban(),
        accepted=True,
        user=None,
        ip="192.0.2.2",
    )


def test_r12_a_debit_cancelled_before_it_reached_the_bank_does_not_use_up_a_representment(
    time_machine,
):
    """Attempt 1 is cancelled for a new IBAN and re-planned as attempt 2: the two
    re-presentments still follow attempt 2's return, attempt numbers notwithstanding."""
    at(date(2027, 3, 1), time_machine)
    organisation, old_mandate = direct_customer()
    invoice = open_invoice(organisation)
    with transaction.atomic():
        debit_create(
            invoice=invoice_lock(invoice.pk),
            mandate=old_mandate,
            amount=invoice.gross_total,
            collection_date=date(2027, 3, 8),
        )
    new_mandate = new_iban(organisation)
    debits_plan(day=date(2027, 3, 1))
    debit = submit(latest(invoice))
    assert (debit.attempt, debit.mandate) == (2, new_mandate)

    for _round in range(2):
        at(debit.collection_date, time_machine)
        assert returned(debit, "AM04", debit.collection_date).summary["represented"] == 1
        debit = submit(latest(invoice))
    at(debit.collection_date, time_machine)
    summary = returned(debit, "AM04", debit.collection_date).summary

    assert summary["pay_by_transfer"] == 1
    assert attempts(invoice) == [
        (1, "cancelled", ""),
        (2, "returned", "AM04"),
        (3, "returned", "AM04"),
        (4, "returned", "AM04"),
    ]


# AC04/MD01: the customer moved banks and the old account is closed; its mandate was
# already replaced, so nothing is invalidated and the new account is collected from.
@pytest.mark.parametrize("code", ["AM04", "MS03", "AC04", "MD01"])
def test_r12_a_return_after_the_customer_signed_a_new_iban_is_represented_on_the_new_mandate(
    code, time_machine
):
    at(date(2027, 3, 5), time_machine)
    organisation, old_mandate, invoice, debit = customer_with_debit()
    new_mandate = new_iban(organisation)

    summary = returned(debit, code, date(2027, 3, 5)).summary

    assert (summary["represented"], summary["pay_by_transfer"]) == (1, 0)
    second = latest(invoice)
    assert (second.attempt, second.status, second.mandate) == (2, "scheduled", new_mandate)
    # The new mandate's first collection: FRST, as the batch decides for it.
    assert mandate_sequence_type(new_mandate) == FRST
    assert notices(CollectionNotice.Kind.RETRY) == [second.end_to_end_id]
    assert notices(CollectionNotice.Kind.PAY_BY_TRANSFER) == []
    old_mandate.refresh_from_db()
    new_mandate.refresh_from_db()
    assert (old_mandate.status, new_mandate.status) == (
        Mandate.Status.REPLACED,
        Mandate.Status.ACTIVE,
    )


def test_r12_a_return_after_the_mandate_was_revoked_without_a_new_one_asks_to_pay_by_transfer(
    time_machine,
):
    at(date(2027, 3, 5), time_machine)
    _org, mandate, invoice, debit = customer_with_debit()
    Mandate.objects.filter(pk=mandate.pk).update(status=Mandate.Status.REVOKED)

    summary = returned(debit, "AM04", date(2027, 3, 5)).summary

    assert (summary["represented"], summary["pay_by_transfer"]) == (0, 1)
    assert attempts(invoice) == [(1, "returned", "AM04")]


# --- MS03: once ----------------------------------------------------------------------------


def test_r12_ms03_is_represented_once(time_machine):
    at(date(2027, 3, 5), time_machine)
    _org, _mandate, invoice, first = customer_with_debit()

    returned(first, "MS03", date(2027, 3, 5))
    second = submit(latest(invoice))
    summary = returned(second, "MS03", date(2027, 3, 12)).summary

    assert summary["pay_by_transfer"] == 1
    assert attempts(invoice) == [(1, "returned", "MS03"), (2, "returned", "MS03")]
    assert notices(CollectionNotice.Kind.PAY_BY_TRANSFER) == [second.end_to_end_id]


def test_r12_ms03_after_am04_gets_its_one_representment_within_the_maximum(time_machine):
    at(date(2027, 3, 5), time_machine)
    _org, _mandate, invoice, first = customer_with_debit()

    returned(first, "AM04", date(2027, 3, 5))
    second = submit(latest(invoice))
    returned(second, "MS03", date(2027, 3, 12))
    third = submit(latest(invoice))
    returned(third, "MS03", date(2027, 3, 19))

    assert attempts(invoice) == [
        (1, "returned", "AM04"),
        (2, "returned", "MS03"),
        (3, "returned", "MS03"),
    ]


# --- never retried -------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["MD06", "MS02", "AM05", ""])
def test_r12_refunded_refused_or_unknown_returns_are_not_retried(code, time_machine):
    at(date(2027, 3, 5), time_machine)
    _org, mandate, invoice, debit = customer_with_debit()
    read(camt053([collection(debit.end_to_end_id, debit.amount)]))

    summary = returned(debit, code or None, date(2027, 3, 8)).summary

    assert summary["represented"] == 0
    assert DirectDebit.objects.filter(invoice=invoice).count() == 1
    assert notices(CollectionNotice.Kind.PAY_BY_TRANSFER) == [debit.end_to_end_id]
    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.ACTIVE


# --- invalidating --------------------------------------------------------------------------


@pytest.mark.parametrize("code", INVALIDATING)
def test_r12_account_and_mandate_errors_invalidate_the_mandate(code, time_machine):
    at(date(2027, 3, 5), time_machine)
    organisation, mandate, invoice, debit = customer_with_debit()
    later_invoice = open_invoice(organisation, issue_date=date(2027, 3, 1))
    with override_settings(SEPA_MAX_REPRESENTMENTS=5):
        scheduled = DirectDebit.objects.create(
            invoice=later_invoice,
            organisation=organisation,
            mandate=mandate,
            amount=Decimal("92.57"),
            collection_date=date(2027, 3, 15),
            end_to_end_id=f"{later_invoice.number}-1",
            created_at=datetime(2027, 3, 1, tzinfo=UTC),
        )

        summary = returned(debit, code, date(2027, 3, 5)).summary

    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.INVALID
    assert mandate.invalid_reason == code
    scheduled.refresh_from_db()
    assert scheduled.status == DirectDebit.Status.CANCELLED
    assert summary["represented"] == 0
    assert attempts(invoice) == [(1, "returned", code)]
    assert notices(CollectionNotice.Kind.PAY_BY_TRANSFER) == [debit.end_to_end_id]
    assert AuditEvent.objects.filter(action="mandate.invalidated").count() == 1


def test_r12_an_account_error_after_the_last_representment_asks_to_pay_by_transfer(time_machine):
    """A new mandate does not lift the limit on re-presentments."""
    at(date(2027, 3, 5), time_machine)
    organisation, _old, invoice, debit = customer_with_debit()
    for _round in range(2):
        returned(debit, "AM04", debit.collection_date)
        debit = submit(latest(invoice))
        at(debit.collection_date, time_machine)
    new_iban(organisation)

    summary = returned(debit, "AC04", debit.collection_date).summary

    assert (summary["represented"], summary["pay_by_transfer"]) == (0, 1)
    assert [status for _a, status, _r in attempts(invoice)] == ["returned"] * 3


def test_r12_a_debit_at_the_bank_on_an_invalid_mandate_is_not_cancelled(time_machine):
    at(date(2027, 3, 5), time_machine)
    organisation, mandate, _invoice, debit = customer_with_debit()
    other = debit_at_bank(open_invoice(organisation, issue_date=date(2027, 3, 1)), mandate)

    returned(debit, "AC04", date(2027, 3, 5))

    other.refresh_from_db()
    assert other.status == DirectDebit.Status.SUBMITTED  # the bank decides on that one


# --- the e-mails -------------------------------------------------------------------------------


def test_r12_retry_mail_announces_the_new_attempt_once(mailbox, time_machine):
    at(date(2027, 3, 5), time_machine)
    organisation, mandate, invoice, debit = customer_with_debit()
    returned(debit, "AM04", date(2027, 3, 5))
    returned(debit, "AM04", date(2027, 3, 5))  # the same return in another file

    notices_sweep()
    notices_sweep()

    assert len(mailbox) == 1
    mail = mailbox[0]
    assert mail.to == [organisation.billing_email]
    assert (
        f"Incasso factuur {invoice.number} is niet gelukt: we proberen het opnieuw" in mail.subject
    )
    body = mail.body
    assert "€ 92,57" in body
    assert "12 maart 2027" in body
    assert mandate.reference in body
    assert "AM04 – Onvoldoende saldo" in body
    html = mail.alternatives[0][0]
    assert "12 maart 2027" in html and "AM04" in html


def test_r12_pay_by_transfer_mail_has_amount_iban_reference_and_asks_for_a_new_mandate(
    mailbox, time_machine, settings
):
    at(date(2027, 3, 5), time_machine)
    _organisation, _mandate, invoice, debit = customer_with_debit()
    returned(debit, "AC04", date(2027, 3, 5))

    assert notices_sweep().sent == 1
    assert notices_sweep().sent == 0

    assert len(mailbox) == 1
    mail = mailbox[0]
    assert "graag overmaken" in mail.subject
    for text in (mail.body, mail.alternatives[0][0]):
        assert "€ 92,57" in text
        assert settings.VENDOR_IBAN in text
        assert settings.VENDOR_BIC in text
        assert invoice.number in text
        assert "AC04 – Rekening opgeheven" in text
        assert "nieuwe machtiging" in text
    assert "/betaalgegevens" in mail.body.lower() or "betaalgegevens" in mail.body


def test_r12_pay_by_transfer_mail_without_invalid_mandate_does_not_ask_for_one(
    mailbox, time_machine
):
    at(date(2027, 3, 5), time_machine)
    _org, _mandate, _invoice, debit = customer_with_debit()
    returned(debit, "MD06", date(2027, 3, 5))

    notices_sweep()

    assert len(mailbox) == 1
    assert "nieuwe machtiging" not in mailbox[0].body
    assert "MD06" in mailbox[0].body
