"""Incoming transfers: which invoices a credit booking pays, and the staff queue (R12).

A transfer is matched, in this order:

1. by payment reference: invoice numbers (``2027-000123``; also written
   ``2027000123``, ``2027 000123`` or ``2027/000123``) in the structured
   reference or the remittance text. The amount goes to those invoices in the
   order they are named, each up to what it still owes; what is left goes on the
   last one (an over-payment, shown as a negative balance). A reference to an
   invoice that is already paid still counts: paying twice is the customer's
   over-payment, not an unknown transfer.
2. by amount and name: exactly one open invoice that owes exactly the amount and
   whose buyer is the payer, names compared without case, accents,
   punctuation and legal forms (B.V., N.V., V.O.F., ...).
3. otherwise the booking waits in the staff queue (state "unmatched"), where
   ``bank_transaction_match`` books it on an invoice or
   ``bank_transaction_ignore`` puts it aside with a note. Staff may book part of
   it on one invoice and the rest on others: it stays in the queue until all of
   it is booked, so no remainder goes unnoticed.

We do not issue structured (16-digit) Dutch payment references: the invoice
number is the payment reference printed on the invoice.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction as db
from django.db.models import Exists, OuterRef, Sum
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.services import actor_kind_for, audit_record
from afas_sb.errors import DomainError
from afas_sb.money import quantize

from ..bankfiles import CREDIT
from ..models import BankTransaction, DirectDebit, Invoice, Payment
from .bulk import among, batched
from .ledger import ZERO, invoice_balance, invoice_lock, payment_record
from .settlement import (
    AT_BANK,
    Outcome,
    SettlementBook,
    batches_refresh,
    scheduled_debits_follow_balance,
)

# An invoice number "2027-000123" as people type it; not inside a longer number,
# and not the tail of a credit note number ("C2027-000004").
_INVOICE_NUMBER = re.compile(r"(?<![0-9Cc])(20\d{2})[-/. ]?(\d{6})(?!\d)")
_LEGAL_FORMS = frozenset(
    {"bv", "nv", "vof", "cv", "bvba", "vzw", "gmbh", "ltd", "sa", "sarl", "ev", "ug"}
)


def invoice_numbers_in(*texts: str | None) -> list[str]:
    """The invoice numbers named in ``texts``, in order of appearance, each once."""
    found: list[str] = []
    for text in texts:
        for match in _INVOICE_NUMBER.finditer(text or ""):
            number = f"{match.group(1)}-{match.group(2)}"
            if number not in found:
                found.append(number)
    return found


def normalise_name(name: str | None) -> str:
    """'Bakkerij De Gouden Korst B.V.' and 'BAKKERIJ DE GOUDEN KORST BV' are the same payer."""
    text = unicodedata.normalize("NFKD", name or "").casefold()
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    tokens = re.sub(r"[\W_]+", " ", text).split()
    # "b v" (from "B.V.") and "v o f" become "bv" and "vof": join runs of single letters.
    merged: list[str] = []
    run = ""
    for token in tokens:
        if len(token) == 1 and token.isalpha():
            run += token
            continue
        if run:
            merged.append(run)
            run = ""
        merged.append(token)
    if run:
        merged.append(run)
    return " ".join(token for token in merged if token not in _LEGAL_FORMS)


@dataclass(frozen=True)
class TransferLine:
    key: str
    amount: Decimal
    name: str | None
    texts: tuple[str | None, ...]


class TransferMatcher:
    """Finds the invoices a chunk's transfers may pay, in a few queries for the whole chunk."""

    def __init__(self, lines: Iterable[TransferLine]):
        self.lines = {line.key: line for line in lines}
        self.numbers = {key: invoice_numbers_in(*line.texts) for key, line in self.lines.items()}
        self.by_number: dict[str, int] = {}
        self.by_name: dict[str, list[int]] = defaultdict(list)

    def prepare(self, *, reopenable: Iterable[int] = ()) -> set[int]:
        """The invoice ids to lock before ``settle``.

        ``reopenable``: invoices a line before the transfer may reopen (a returned
        debit's), so they count as candidates by amount and name even when they are
        paid now; whether one still owes the amount is decided when the line is.
        """
        wanted = {n for numbers in self.numbers.values() for n in numbers}
        for part in batched(wanted):
            rows = (
                Invoice.objects.filter(among("number", part), kind=Invoice.Kind.INVOICE)
                .exclude(status=Invoice.Status.CREDITED)
                .values_list("pk", "number")
            )
            self.by_number.update({number: pk for pk, number in rows})
        by_name = [
            line
            for key, line in self.lines.items()
            if line.name and not any(n in self.by_number for n in self.numbers[key])
        ]
        if by_name:
            self._candidates(by_name, reopenable=set(reopenable))
        return set(self.by_number.values()) | {pk for ids in self.by_name.values() for pk in ids}

    def _candidates(self, lines: list[TransferLine], *, reopenable: set[int]) -> None:
        """Open invoices of the payers' names that may owe one of the amounts.

        Either the gross total is the amount (nothing paid or credited yet), or
        something was paid or credited (the balance is checked under the lock);
        and the ``reopenable`` ones, open or not.
        """
        names = {normalise_name(line.name) for line in lines} - {""}
        if not names:
            return
        open_invoices = Invoice.objects.filter(
            kind=Invoice.Kind.INVOICE, status=Invoice.Status.OPEN
        )
        amounts = {line.amount for line in lines}
        # EXISTS per open invoice (an index probe each), not IN (all payments): that list
        # outgrows work_mem, and PostgreSQL then rescans it for every open invoice.
        moved = Exists(Payment.objects.filter(invoice_id=OuterRef("pk"))) | Exists(
            Invoice.objects.filter(
                kind=Invoice.Kind.CREDIT_NOTE, credited_invoice_id=OuterRef("pk")
            )
        )
        rows = set()
        for part in batched(amounts):
            rows.update(open_invoices.filter(gross_total__in=part).values_list("pk", "buyer_name"))
        rows.update(open_invoices.filter(moved).values_list("pk", "buyer_name"))
        for part in batched(reopenable):
            rows.update(
                Invoice.objects.filter(among("pk", part), kind=Invoice.Kind.INVOICE)
                .exclude(status=Invoice.Status.CREDITED)
                .values_list("pk", "buyer_name")
            )
        for pk, buyer_name in sorted(rows):
            name = normalise_name(buyer_name)
            if name in names:
                self.by_name[name].append(pk)

    def settle(
        self, book: SettlementBook, *, key: str, on: date, bank_transaction_id: int
    ) -> Outcome:
        """Book the transfer ``key`` on its invoices in ``book``, or leave it unmatched."""
        line = self.lines[key]
        referenced = [self.by_number[n] for n in self.numbers[key] if n in self.by_number]
        if referenced:
            allocations = allocate(line.amount, referenced, book.owed)
            for invoice_id, part in allocations:
                book.record(
                    invoice_id=invoice_id,
                    kind=Payment.Kind.TRANSFER,
                    amount=part,
                    booked_on=on,
                    bank_transaction_id=bank_transaction_id,
                )
            numbers = ", ".join(book.invoices[pk].number for pk, _part in allocations)
            return Outcome(
                "transfers_matched",
                invoice_id=allocations[-1][0],
                note=_("Gekoppeld op betalingskenmerk: %(numbers)s.") % {"numbers": numbers},
            )
        name = normalise_name(line.name)
        matches = [pk for pk in self.by_name.get(name, ()) if book.owed[pk] == line.amount]
        if len(matches) == 1:
            book.record(
                invoice_id=matches[0],
                kind=Payment.Kind.TRANSFER,
                amount=line.amount,
                booked_on=on,
                bank_transaction_id=bank_transaction_id,
            )
            return Outcome(
                "transfers_matched",
                invoice_id=matches[0],
                note=_("Gekoppeld op bedrag en naam: %(number)s.")
                % {"number": book.invoices[matches[0]].number},
            )
        if matches:
            note = _("Meerdere openstaande facturen met dit bedrag en deze naam.")
        else:
            note = _("Geen factuur gevonden op kenmerk, bedrag of naam.")
        return Outcome("unmatched", note=note, unmatched=True)


def allocate(amount: Decimal, invoice_ids: list[int], owed: dict[int, Decimal]) -> list:
    """[(invoice id, part)]: in order, each up to what it owes; the rest on the last one paid.

    When none of them owes anything the whole amount goes on the last one named
    (the customer paid twice: an over-payment, visible as a negative balance).
    """
    remaining = quantize(amount)
    allocations: list[list] = []
    for invoice_id in invoice_ids:
        if remaining <= ZERO:
            break
        if owed[invoice_id] <= ZERO:
            continue
        part = min(remaining, owed[invoice_id])
        allocations.append([invoice_id, part])
        remaining -= part
    if not allocations:
        return [(invoice_ids[-1], remaining)]
    allocations[-1][1] += remaining
    return [(invoice_id, part) for invoice_id, part in allocations]


# --- the staff queue ------------------------------------------------------------------


def _locked_unmatched(transaction: BankTransaction) -> BankTransaction:
    locked = BankTransaction.objects.select_for_update().get(pk=transaction.pk)
    if locked.state != BankTransaction.State.UNMATCHED:
        raise DomainError(
            _("Deze banktransactie is al verwerkt (%(state)s); alleen een niet-gekoppelde kan.")
            % {"state": locked.get_state_display().lower()},
            code="bank_transaction_not_unmatched",
        )
    return locked


def bank_transaction_unbooked(bank_transaction: BankTransaction) -> Decimal:
    """What of an incoming booking is not on an invoice yet (all of it until staff matches)."""
    booked = bank_transaction.payments.aggregate(total=Sum("amount"))["total"] or ZERO
    return bank_transaction.amount - booked


def bank_transaction_match(
    *, transaction: BankTransaction, invoice: Invoice, user, amount: Decimal | None = None
) -> Payment:
    """Staff books an unmatched incoming payment on an invoice: what is left of it, or ``amount``.

    A part leaves the rest in the queue (state "unmatched", with a note), to be
    booked on another invoice or set aside: nothing disappears. A collection
    line that names one of our debits (it waited for another amount than the
    debit's) settles that debit through the settlement, as the import would
    have: the debit is collected, not left "submitted" next to a transfer.
    """
    with db.atomic():
        invoice = invoice_lock(invoice.pk)
        bank_transaction = _locked_unmatched(transaction)
        if bank_transaction.credit_debit != CREDIT:
            raise DomainError(
                _("Alleen een bijschrijving kan aan een factuur worden gekoppeld."),
                code="bank_transaction_not_credit",
            )
        if invoice.kind != Invoice.Kind.INVOICE:
            raise DomainError(
                _("Een betaling hoort bij een factuur, niet bij een creditnota."),
                code="invoice_is_credit_note",
            )
        if invoice.status == Invoice.Status.CREDITED:
            raise DomainError(
                _("Factuur %(number)s is gecrediteerd; boek de betaling niet hierop.")
                % {"number": invoice.number},
                code="invoice_credited",
            )
        remaining = bank_transaction_unbooked(bank_transaction)
        amount = remaining if amount is None else quantize(amount)
        if amount <= ZERO or amount > remaining:
            raise DomainError(
                _(
                    "Het bedrag moet groter zijn dan nul en hooguit %(max)s (wat nog te koppelen is)."
                )
                % {"max": remaining},
                code="amount_invalid",
            )
        debit = _debit_at_bank(bank_transaction)
        if debit is not None:
            payment = _match_collection(
                bank_transaction, debit=debit, invoice=invoice, amount=amount, user=user
            )
        else:
            if bank_transaction.payments.filter(invoice=invoice).exists():
                raise DomainError(
                    _(
                        "Een deel van deze transactie is al op factuur %(number)s geboekt; "
                        "boek de rest op een andere factuur."
                    )
                    % {"number": invoice.number},
                    code="bank_transaction_invoice_twice",
                )
            payment = payment_record(
                invoice=invoice,
                kind=Payment.Kind.TRANSFER,
                amount=amount,
                booked_on=bank_transaction.booking_date or clock.today(),
                bank_transaction=bank_transaction,
                recorded_by=user,
            )
            scheduled_debits_follow_balance(
                owed={invoice.pk: invoice_balance(invoice).owed}, user=user
            )
        remaining -= amount
        bank_transaction.invoice = invoice
        bank_transaction.matched_by = user if user is not None and user.pk else None
        bank_transaction.matched_at = clock.now()
        if remaining <= ZERO:
            bank_transaction.state = BankTransaction.State.MATCHED
        else:
            bank_transaction.note = (
                _("Deels gekoppeld: %(booked)s van %(amount)s; nog te koppelen: %(remaining)s.")
                % {
                    "booked": bank_transaction.amount - remaining,
                    "amount": bank_transaction.amount,
                    "remaining": remaining,
                }
            )[:255]
        bank_transaction.save(
            update_fields=["state", "invoice", "matched_by", "matched_at", "note"]
        )
        audit_record(
            action="bank_transaction.matched",
            actor_kind=actor_kind_for(user),
            actor_user=user,
            organisation_id=invoice.organisation_id,
            target=bank_transaction,
            reason=_("Handmatig gekoppeld aan factuur %(number)s") % {"number": invoice.number},
            data={
                "invoice": invoice.number,
                "amount": str(amount),
                "remaining": str(remaining),
                "debit": debit.end_to_end_id if debit is not None else None,
            },
        )
    return payment


def _debit_at_bank(bank_transaction: BankTransaction) -> DirectDebit | None:
    """The debit a collection line names, while the bank may still settle it; None when the
    line names none, or one that failed (money came in anyway: booked as a transfer)."""
    if bank_transaction.debit_id is None:
        return None
    debit = DirectDebit.objects.select_related("invoice").get(pk=bank_transaction.debit_id)
    if debit.status in (DirectDebit.Status.COLLECTED, DirectDebit.Status.RETURNED):
        # Its collection is in the books already (another file reported it): booking this
        # line too would count the same money twice.
        raise DomainError(
            _(
                "Incasso %(debit)s is al als geïncasseerd verwerkt. Is dit dezelfde boeking, "
                "negeer de transactie dan."
            )
            % {"debit": debit.end_to_end_id},
            code="debit_already_collected",
        )
    return debit if debit.status in AT_BANK else None


def _match_collection(
    bank_transaction: BankTransaction, *, debit: DirectDebit, invoice: Invoice, amount, user
) -> Payment:
    """Staff confirms a collection the import held back: settled as the import settles one."""
    if invoice.pk != debit.invoice_id:
        raise DomainError(
            _(
                "Deze bijschrijving hoort bij incasso %(debit)s van factuur %(number)s; "
                "koppel hem aan die factuur."
            )
            % {"debit": debit.end_to_end_id, "number": debit.invoice.number},
            code="bank_transaction_names_debit",
        )
    if amount != bank_transaction.amount:
        raise DomainError(
            _("Een incasso wordt in zijn geheel geboekt; laat het bedrag leeg."),
            code="amount_invalid",
        )
    book = SettlementBook(user=user)
    book.find_debits(end_to_end_ids=[debit.end_to_end_id], batch_ids=[])
    book.lock()
    outcome = book.collect(
        book.by_end_to_end[debit.end_to_end_id],
        amount=amount,
        on=bank_transaction.booking_date or clock.today(),
        bank_transaction_id=bank_transaction.pk,
        confirmed=True,
    )
    if outcome.counter != "collected":  # cannot happen under the invoice's lock; refuse, not guess
        raise DomainError(outcome.note, code="debit_not_collectable")
    book.flush()
    batches_refresh(batch_ids=book.touched_batches)
    return Payment.objects.get(debit=debit, kind=Payment.Kind.DIRECT_DEBIT)


def bank_transaction_ignore(*, transaction: BankTransaction, user, note: str) -> BankTransaction:
    """Staff puts an unmatched booking aside (not ours, refunded, ...) with a note why."""
    note = " ".join((note or "").split())
    if not note:
        raise DomainError(
            _("Geef een toelichting waarom deze transactie wordt genegeerd."), code="note_missing"
        )
    with db.atomic():
        bank_transaction = _locked_unmatched(transaction)
        bank_transaction.state = BankTransaction.State.IGNORED
        bank_transaction.note = note[:255]
        bank_transaction.matched_by = user if user is not None and user.pk else None
        bank_transaction.matched_at = clock.now()
        bank_transaction.save(update_fields=["state", "note", "matched_by", "matched_at"])
        audit_record(
            action="bank_transaction.ignored",
            actor_kind=actor_kind_for(user),
            actor_user=user,
            target=bank_transaction,
            reason=note,
            data={"amount": str(bank_transaction.amount)},
        )
    return bank_transaction
