"""A bank file's lines are decided in order, against the books as they are (R12).

The import reads and locks what one chunk of lines needs before deciding them:
what a line decides must still be seen by the lines after it in the same
chunk, exactly as when they fall in the next chunk; and what another import
committed while this one waited for the locks must be seen too.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.bankfiles.writer import camt053, collection, debit_return, transfer
from billing.models import BankTransaction, DirectDebit, Invoice, Payment
from billing.services import bank_import
from billing.services.ledger import invoice_balance
from tests.concurrency import Worker, hold_after, signal_before
from tests.factories import OrganisationFactory

from .collection_builders import (
    customer_with_debit,
    debit_at_bank,
    direct_customer,
    open_invoice,
    read,
    submitted_batch,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(datetime(2027, 3, 5, 8, 0, tzinfo=UTC), tick=False)


@pytest.mark.parametrize("chunk_size", [1, bank_import.CHUNK_SIZE])
def test_r12_a_transfer_after_a_return_pays_the_reopened_invoice_by_amount_and_name(
    monkeypatch, chunk_size
):
    monkeypatch.setattr(bank_import, "CHUNK_SIZE", chunk_size)
    _org, _mandate, invoice, debit = customer_with_debit("Bakkerij De Gouden Korst B.V.")
    read(camt053([collection(debit.end_to_end_id, "92.57")]))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID

    # The debtor's bank returns the debit, and the customer pays by transfer the same
    # day without naming the invoice: one statement, the return first.
    result = read(
        camt053(
            [
                debit_return(debit.end_to_end_id, "92.57", "MD06"),
                transfer("92.57", name="BAKKERIJ DE GOUDEN KORST BV", remittance="Betaling"),
            ]
        )
    )

    assert (result.summary["returned"], result.summary["transfers_matched"]) == (1, 1)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert sorted(Payment.objects.filter(invoice=invoice).values_list("kind", flat=True)) == [
        Payment.Kind.DEBIT_REVERSAL,
        Payment.Kind.DIRECT_DEBIT,
        Payment.Kind.TRANSFER,
    ]
    assert "bedrag en naam" in BankTransaction.objects.get(kind="transfer_in").note


@pytest.mark.parametrize("chunk_size", [1, bank_import.CHUNK_SIZE])
def test_r12_a_transfer_before_the_return_in_the_same_file_is_an_over_payment_not_a_match(
    monkeypatch, chunk_size
):
    """In file order the invoice owes nothing when the transfer comes: it waits for staff."""
    monkeypatch.setattr(bank_import, "CHUNK_SIZE", chunk_size)
    _org, _mandate, invoice, debit = customer_with_debit("Bakkerij De Gouden Korst B.V.")

    result = read(
        camt053(
            [
                collection(debit.end_to_end_id, "92.57"),
                transfer("92.57", name="Bakkerij De Gouden Korst", remittance="Betaling"),
                debit_return(debit.end_to_end_id, "92.57", "AM04"),
            ]
        )
    )

    assert result.summary["unmatched"] == 1
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN
    assert DirectDebit.objects.get(invoice=invoice, attempt=2).status == "scheduled"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_an_import_that_waited_for_the_invoice_lock_sees_what_the_first_one_paid():
    """Two statements pay one invoice at once: the second one's balance includes the first's."""
    organisation = OrganisationFactory(legal_name="Kapsalon Knip")
    invoice = open_invoice(organisation)  # 92.57
    first_file = camt053([transfer("92.57", remittance=f"Factuur {invoice.number}")])
    second_file = camt053([transfer("50.00", remittance=f"Factuur {invoice.number}")])
    locked, release, waiting = (threading.Event() for _ in range(3))

    first = Worker(lambda: read(first_file), hold_after("FOR UPDATE", locked, release)).start()
    assert locked.wait(10)
    second = Worker(lambda: read(second_file), signal_before("FOR UPDATE", waiting)).start()
    assert waiting.wait(10)
    release.set()
    first.join()
    second.join()

    # 142.57 received on 92.57: paid, 50.00 too much; not "open" from a stale balance.
    invoice.refresh_from_db()
    assert invoice_balance(invoice).owed == Decimal("-50.00")
    assert invoice.status == Invoice.Status.PAID


def test_r12_queries_for_returns_and_transfers_do_not_grow_with_their_number():
    """Every return path and both kinds of transfer match, a few queries for all of them."""

    def queries(count: int) -> int:
        batch = submitted_batch()  # queries per batch are fine: a statement names a few
        made = []
        for n in range(4 * count):
            organisation, mandate = direct_customer(f"Klant {count}-{n} B.V.")
            invoice = open_invoice(organisation)
            made.append((invoice, debit_at_bank(invoice, mandate, batch=batch)))
        read(camt053([collection(debit.end_to_end_id, debit.amount) for _i, debit in made]))
        returns = [
            debit_return(debit.end_to_end_id, debit.amount, ("AM04", "MS03", "MD06", "AC04")[n % 4])
            for n, (_invoice, debit) in enumerate(made)
        ]
        by_number = [transfer(i.gross_total, remittance=i.number) for i, _d in made[:count]]
        by_name = [transfer(i.gross_total, name=i.buyer_name) for i, _d in made[-count:]]
        data = camt053(returns + by_number + by_name)
        with CaptureQueriesContext(connection) as captured:
            result = read(data)
        assert result.summary["returned"] == 4 * count
        assert result.summary["transfers_matched"] == 2 * count
        return len(captured)

    assert queries(6) == queries(2)
