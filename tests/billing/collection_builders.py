"""Direct customers with a mandate, open invoices and debits at the bank, for the bank-file tests.

Debits are made with ``debit_create`` and put into a submitted batch straight
through the ORM, so these tests do not depend on batch planning and pain.008.
Bank files come from ``billing/bankfiles/writer.py``.
"""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest
from django.db import transaction
from schwifty import IBAN

from billing.models import DebitBatch, DirectDebit, Invoice, Mandate, SequenceType
from billing.services.bank_import import ImportResult, bank_file_import
from billing.services.debits import debit_create
from billing.services.ledger import invoice_balance, invoice_lock
from billing.services.mandates import mandate_sign
from tests.billing.invoice_factories import STANDARD_LINES, make_invoice
from tests.factories import OrganisationFactory

_accounts = itertools.count(1)
_batches = itertools.count(1)


def customer_iban() -> str:
    return IBAN.generate("NL", bank_code="RABO", account_code=f"{next(_accounts):010d}").compact


def direct_customer(name: str = "Bakkerij De Gouden Korst B.V.", **fields):
    """(organisation, active mandate): an entrepreneur billed directly, paying by debit."""
    organisation = OrganisationFactory(legal_name=name, **fields)
    mandate = mandate_sign(
        organisation=organisation,
        account_holder=name[:70],
        iban=customer_iban(),
        accepted=True,
        user=None,
        ip="192.0.2.1",
    )
    return organisation, mandate


def open_invoice(organisation, *, lines=STANDARD_LINES, issue_date=date(2027, 2, 1), **fields):
    """An issued subscription invoice; STANDARD_LINES make it 92.57 gross."""
    return make_invoice(
        organisation=organisation,
        lines=lines,
        issue_date=issue_date,
        period=(issue_date, issue_date.replace(day=28)),
        **fields,
    )


def submitted_batch(
    *, collection_date: date = date(2027, 3, 4), sequence_type: str = SequenceType.FRST, **fields
) -> DebitBatch:
    return DebitBatch.objects.create(
        message_id=fields.pop("message_id", f"SB-DD-TEST-{next(_batches):06d}"),
        collection_date=collection_date,
        sequence_type=sequence_type,
        status=DebitBatch.Status.SUBMITTED,
        creditor_id="NL69ZZZ123456780000",
        created_at=fields.pop("created_at", None) or _now(),
        **fields,
    )


def debit_at_bank(
    invoice: Invoice,
    mandate: Mandate,
    *,
    batch: DebitBatch | None = None,
    attempt: int = 1,
    amount: Decimal | None = None,
    collection_date: date = date(2027, 3, 4),
) -> DirectDebit:
    """A debit for the invoice's open amount, submitted to the bank in ``batch``."""
    batch = batch or submitted_batch(collection_date=collection_date)
    with transaction.atomic():
        invoice = invoice_lock(invoice.pk)
        debit = debit_create(
            invoice=invoice,
            mandate=mandate,
            amount=amount if amount is not None else invoice_balance(invoice).open_amount,
            collection_date=collection_date,
            attempt=attempt,
        )
        debit.status = DirectDebit.Status.SUBMITTED
        debit.batch = batch
        debit.sequence_type = batch.sequence_type
        debit.save(update_fields=["status", "batch", "sequence_type"])
    return debit


def submit(debit: DirectDebit, *, batch: DebitBatch | None = None) -> DirectDebit:
    """A scheduled debit (e.g. a re-presentment) goes to the bank."""
    batch = batch or submitted_batch(
        collection_date=debit.collection_date, sequence_type=SequenceType.RCUR
    )
    debit.status = DirectDebit.Status.SUBMITTED
    debit.batch = batch
    debit.sequence_type = batch.sequence_type
    debit.save(update_fields=["status", "batch", "sequence_type"])
    return debit


def customer_with_debit(name: str = "Bakkerij De Gouden Korst B.V.", **invoice_fields):
    """(organisation, mandate, invoice, debit at the bank) in one go."""
    organisation, mandate = direct_customer(name)
    invoice = open_invoice(organisation, **invoice_fields)
    return organisation, mandate, invoice, debit_at_bank(invoice, mandate)


def read(data: bytes, name: str = "bank.xml", **kwargs) -> ImportResult:
    return bank_file_import(data=data, filename=name, **kwargs)


def _now():
    from afas_sb import clock

    return clock.now()


@pytest.fixture
def media_root(settings, tmp_path):
    """Stored bank files go to a folder of the test's own, so a test can see what was written."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def stored_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
