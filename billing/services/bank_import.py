"""Importing bank files: camt.053 statements, camt.054 notifications, pain.002 reports (R12).

``bank_file_import`` parses the file first (a refused file stores nothing),
then stores it and every booking in it in ONE database transaction, with the
``BankFileImport`` row as its first write. So:

- the same file twice: the second call finds the checksum and changes nothing;
- the same file twice at once: the second insert waits on the unique checksum
  until the first commits, then fails and reports "already imported";
- a crash half-way rolls everything back, and importing the file again does
  the whole job, once.

Within that transaction the lines are handled in chunks with a constant number
of queries each (see ``SettlementBook``), so a 100 000-line statement imports
in under a minute (``bench/collections.py``), not hours. Holding the invoices'
row locks until the end is the price: a nightly statement of a few hundred
lines holds them for a moment; the 100 000-line benchmark for as long as it runs.

What each line becomes:

- an entry that is not booked (``Sts`` PDNG, INFO, ...) is stored as ignored,
  with its status in the note: only booked money settles invoices, and the
  booked line arrives later with its own key;
- a credit naming one of our debits (end-to-end id), or a batch booking without
  details naming one of our batches (``Btch/PmtInfId`` or ``MsgId`` =
  ``DebitBatch.message_id``): collected;
- a debit with a return reason or bank code UPDD for one of our debits:
  returned; a pain.002 RJCT: rejected; ACCP/ACSC/...: accepted, no change;
- any other credit: a transfer (see ``transfers``), matched or left for staff;
  the same transfer in another file (a camt.054 during the day, then the
  camt.053 statement: each file's keys start with its own message id) is
  recognised by its meaning (``booking_key``: own IBAN, the bank's reference,
  booking date, amount, direction) and stored as a duplicate, not booked again;
- any other debit (fees, our own payments): ignored with a note.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import actor_kind_for, audit_record

from ..bankfiles import (
    CREDIT,
    DEBIT,
    BankFile,
    BankFileError,
    BankFileKind,
    BankTransactionCode,
    parse_bank_file,
)
from ..models import BankFileImport, BankTransaction
from .bulk import among, batched, insert_rows, reserve_ids
from .settlement import Outcome, SettlementBook, batches_refresh, notices_send_after_commit
from .transfers import TransferLine, TransferMatcher

CHUNK_SIZE = 2000  # lines per chunk: a few queries each, whatever the chunk's size
Kind = BankTransaction.Kind
State = BankTransaction.State

SUMMARY_KEYS = (
    "entries",
    "transactions",
    "new",
    "duplicates",
    "collected",
    "returned",
    "rejected",
    "accepted",
    "transfers_matched",
    "already",
    "unmatched",
    "ignored",
    "represented",
    "pay_by_transfer",
    "settled",
)
# pain.002 statuses that say "received, not (yet) refused": nothing to do.
ACCEPTED_STATUSES = frozenset(
    {"ACCP", "ACSC", "ACSP", "ACTC", "ACWC", "ACCC", "PDNG", "RCVD", "PART"}
)


@dataclass
class ImportResult:
    import_file: BankFileImport
    created: bool
    summary: dict


@dataclass(slots=True)
class Line:
    """One booking (an entry's transaction, or an entry without details) or one status line."""

    key: str
    amount: Decimal
    currency: str = "EUR"
    credit_debit: str = ""
    booked: bool = True
    status: str = "BOOK"
    status_report: bool = False
    reversal: bool = False
    booking_date: date | None = None
    end_to_end_id: str | None = None
    mandate_id: str | None = None
    batch_ids: tuple[str, ...] = ()
    reference: str | None = None
    description: str | None = None
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    return_reason: str | None = None
    return_info: str | None = None
    code: BankTransactionCode | None = None
    own_iban: str | None = None
    # The bank's own reference of the booking (AcctSvcrRef, else NtryRef): the same in
    # the camt.054 and the camt.053 that report it, unlike ``key``.
    bank_reference: str | None = None

    @property
    def is_return(self) -> bool:
        return bool(self.return_reason) or bool(self.code and self.code.is_return)

    @property
    def is_direct_debit(self) -> bool:
        return bool(self.code and self.code.is_direct_debit)


def bank_file_import(
    *, data: bytes, filename: str, user=None, max_bytes: int | None = None
) -> ImportResult:
    """Import one bank file; ``BankFileError`` (nothing stored) when it is refused."""
    data = bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    existing = BankFileImport.objects.filter(sha256=digest).first()
    if existing is not None:
        return ImportResult(import_file=existing, created=False, summary=existing.summary)
    limit = settings.BANK_FILE_MAX_BYTES if max_bytes is None else max_bytes
    user = user if user is not None and getattr(user, "pk", None) else None
    with _cyclic_gc_paused():
        bank_file = parse_bank_file(data, max_bytes=limit)
        lines = _lines_checked(bank_file)
        result = _import_with_retry(
            data=data, digest=digest, bank_file=bank_file, lines=lines, filename=filename, user=user
        )
        del bank_file, lines  # freed by reference counting, before the collector looks at them
    return result


def _lines_checked(bank_file: BankFile) -> list[Line]:
    """The file's lines; a file in which two lines share a key is refused (the parser keeps
    keys unique per statement; two statements with the same id and account would not be)."""
    lines = lines_of(bank_file)
    keys = {_key(line) for line in lines}
    if len(keys) != len(lines):
        raise BankFileError(
            _("Dubbele boekingsreferentie in het bestand."), code="bank_file_inconsistent"
        )
    return lines


@contextlib.contextmanager
def _cyclic_gc_paused():
    """A large file becomes millions of small objects, none in a reference cycle; the
    cyclic collector would scan them again and again (some 15 % of a 100 000-line
    import), and a collection of only the young generations between chunks would
    still scan them all once (seconds). Reference counting frees them (the caller
    drops them before the collector resumes); the few cycles the ORM leaves per
    chunk wait for it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import_with_retry(
    *, data: bytes, digest: str, bank_file: BankFile, lines: list[Line], filename: str, user
):
    for attempt in (1, 2):
        try:
            return _store_and_import(
                data=data,
                digest=digest,
                bank_file=bank_file,
                lines=lines,
                filename=filename,
                user=user,
            )
        except IntegrityError:
            existing = BankFileImport.objects.filter(sha256=digest).first()
            if existing is not None:
                # The same file, imported at the same moment by someone else.
                return ImportResult(import_file=existing, created=False, summary=existing.summary)
            if attempt == 2:
                raise
            # Another file committed the same lines first (the bank sent the statement
            # twice under the same message id, or the same transfer came in a camt.054
            # and a camt.053 at once): again, now they are known.
    raise AssertionError("unreachable")


def _store_and_import(
    *, data: bytes, digest: str, bank_file: BankFile, lines: list[Line], filename: str, user
):
    stored = None
    try:
        with transaction.atomic():
            import_file = BankFileImport(
                kind=str(bank_file.kind),
                version=bank_file.version[:20],
                message_id=bank_file.message_id[:35],
                filename=(filename or "")[:255],
                sha256=digest,
                size=len(data),
                imported_at=clock.now(),
                imported_by=user,
            )
            import_file.file.save(_storage_name(filename), ContentFile(data), save=False)
            stored = import_file.file
            # The first write: a concurrent import of the same file waits here.
            import_file.save()
            _no_jit()
            summary = _import(import_file, bank_file, lines, user=user)
            import_file.summary = summary
            import_file.save(update_fields=["summary"])
            audit_record(
                action="bank_file.imported",
                actor_kind=actor_kind_for(user) if user is not None else ActorKind.SYSTEM,
                actor_user=user,
                target=import_file,
                reason=_("Bankbestand %(name)s ingelezen") % {"name": import_file.filename},
                data={"kind": import_file.kind, "message_id": import_file.message_id, **summary},
            )
    except BaseException:
        _discard(stored)
        raise
    return ImportResult(import_file=import_file, created=True, summary=summary)


def _no_jit() -> None:
    """PostgreSQL would JIT-compile the chunk queries (IN lists of 2 000 ids with balance
    subqueries look expensive to its planner): half a second each, for queries that
    run in milliseconds. Off for this transaction only."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _storage_name(filename: str) -> str:
    try:
        name = get_valid_filename(os.path.basename(filename or ""))
    except Exception:  # SuspiciousFileOperation on names like ".."
        name = ""
    return name or "bankbestand.xml"


def _discard(stored) -> None:
    """A file written for an import that did not commit is removed again (best effort)."""
    if stored:
        with contextlib.suppress(OSError):
            stored.storage.delete(stored.name)


# --- from parsed file to lines ------------------------------------------------------


def lines_of(bank_file: BankFile) -> list[Line]:
    """The lines of a parsed file."""
    if bank_file.kind is BankFileKind.PAIN002:
        return _status_lines(bank_file)
    lines = []
    for entry in bank_file.entries:
        entry_reference = entry.account_servicer_reference or entry.entry_reference
        common = {
            "booked": entry.is_booked,
            "status": entry.status,
            "reversal": entry.reversal,
            "booking_date": entry.booking_date or entry.value_date,
            "own_iban": entry.account_iban,
        }
        if not entry.transactions:
            lines.append(
                Line(
                    key=entry.unique_key,
                    amount=entry.amount,
                    currency=entry.currency,
                    credit_debit=entry.credit_debit,
                    batch_ids=tuple(
                        b for b in (entry.batch_payment_information_id, entry.batch_message_id) if b
                    ),
                    description=entry.additional_info,
                    code=entry.bank_transaction_code,
                    bank_reference=entry_reference,
                    **common,
                )
            )
            continue
        several = len(entry.transactions) > 1
        for n, tx in enumerate(entry.transactions, start=1):
            if entry_reference:
                # The entry's reference, and the position for a booking of several transfers.
                bank_reference = f"{entry_reference}#{n}" if several else entry_reference
            else:
                bank_reference = tx.account_servicer_reference
            lines.append(
                Line(
                    key=tx.unique_key,
                    amount=tx.amount,
                    currency=tx.currency,
                    credit_debit=tx.credit_debit,
                    end_to_end_id=tx.end_to_end_id,
                    mandate_id=tx.mandate_id,
                    reference=tx.structured_reference,
                    description=tx.remittance_unstructured or entry.additional_info,
                    counterparty_name=tx.counterparty_name,
                    counterparty_iban=tx.counterparty_iban,
                    return_reason=tx.return_reason,
                    return_info=tx.return_additional_info,
                    code=tx.bank_transaction_code,
                    bank_reference=bank_reference,
                    **common,
                )
            )
    return lines


def _status_lines(bank_file: BankFile) -> list[Line]:
    report = bank_file.status_report
    day = clock.local(bank_file.created_at).date() if bank_file.created_at else None
    lines = [
        Line(
            key=item.unique_key,
            amount=item.amount or Decimal("0.00"),
            currency=item.currency or "EUR",
            status=(item.status or "").upper(),
            status_report=True,
            booking_date=day,
            end_to_end_id=item.original_end_to_end_id,
            mandate_id=item.mandate_id,
            counterparty_name=item.debtor_name,
            counterparty_iban=item.debtor_iban,
            return_reason=item.reason_code,
            return_info=item.reason_additional_info,
        )
        for item in report.items
    ]
    if not lines and (report.group_status or "").upper() == "RJCT":
        # The whole pain.008 was refused (e.g. FF01): every debit of that batch.
        lines.append(
            Line(
                key="|".join((bank_file.message_id, report.original_message_id, "-", "group")),
                amount=Decimal("0.00"),
                status="RJCT",
                status_report=True,
                booking_date=day,
                batch_ids=(report.original_message_id,),
                return_reason=report.group_reason_code,
            )
        )
    else:
        # A payment-information block refused as a whole (PmtInfSts RJCT) without
        # transaction lines: every debit of that batch (our PmtInfId is the batch's id).
        lines += [
            Line(
                key="|".join(
                    (bank_file.message_id, report.original_message_id, block.id or "-", "block")
                ),
                amount=Decimal("0.00"),
                status="RJCT",
                status_report=True,
                booking_date=day,
                batch_ids=tuple(b for b in (block.id, report.original_message_id) if b),
                return_reason=block.reason_code or report.group_reason_code,
                return_info=block.reason_info,
            )
            for block in report.payment_information
            if block.is_rejected_without_lines
        ]
    return lines


# --- the import ----------------------------------------------------------------------


def _import(import_file: BankFileImport, bank_file: BankFile, lines: list[Line], *, user) -> dict:
    summary: Counter = Counter({key: 0 for key in SUMMARY_KEYS})
    summary["entries"] = (
        len(bank_file.status_report.items) if bank_file.status_report else len(bank_file.entries)
    )
    summary["transactions"] = len(lines)
    # Every key starts with the file's message id: when no file with this message
    # id was read before, none of its lines can be known, and the per-chunk look-up
    # of existing keys (a tenth of a 100 000-line import) is skipped.
    seen_before = (
        BankFileImport.objects.filter(message_id=import_file.message_id)
        .exclude(pk=import_file.pk)
        .exists()
    )
    batch_ids: set[int] = set()
    for chunk in batched(lines, CHUNK_SIZE):
        batch_ids |= _import_chunk(
            import_file, chunk, summary=summary, user=user, check_keys=seen_before
        )
    batches_refresh(batch_ids=batch_ids)
    if summary["represented"] or summary["pay_by_transfer"]:
        notices_send_after_commit()
    return dict(summary)


def _key(line: Line) -> str:
    # A hostile file could make keys longer than the column; a digest keeps them stable.
    if len(line.key) <= 400:
        return line.key
    return "sha256:" + hashlib.sha256(line.key.encode()).hexdigest()


def _actionable(line: Line) -> bool:
    return line.booked and not line.reversal and line.currency == "EUR" and line.amount >= 0


def _import_chunk(
    import_file, lines: list[Line], *, summary: Counter, user, check_keys: bool
) -> set[int]:
    keys = [_key(line) for line in lines]
    existing: set[str] = set()
    for part in batched(keys) if check_keys else ():
        existing.update(
            BankTransaction.objects.filter(among("unique_key", part)).values_list(
                "unique_key", flat=True
            )
        )
    fresh = [(key, line) for key, line in zip(keys, lines, strict=True) if key not in existing]
    summary["duplicates"] += len(lines) - len(fresh)
    if not fresh:
        return set()

    book = SettlementBook(user=user)
    actionable = [line for _key_, line in fresh if _actionable(line)]
    book.find_debits(
        end_to_end_ids=[line.end_to_end_id for line in actionable if line.end_to_end_id],
        batch_ids=[b for line in actionable if not line.end_to_end_id for b in line.batch_ids],
    )
    matcher = TransferMatcher(
        TransferLine(
            key=line.key,
            amount=line.amount,
            name=line.counterparty_name,
            texts=(line.reference, line.description),
        )
        for line in actionable
        if _is_transfer(line, book)
    )
    # A return reopens its invoice: a transfer after it may pay that invoice by amount and name.
    returned = [
        line.end_to_end_id for line in actionable if line.credit_debit == DEBIT and line.is_return
    ]
    book.lock(invoice_ids=matcher.prepare(reopenable=book.invoice_ids_of(returned)))
    # After the locks: an import of the same transfer that held one has committed by now.
    booking_keys, repeats = _transfers_seen(
        line for line in actionable if line.key in matcher.lines
    )

    now = clock.now()
    rows = []
    ids = reserve_ids(BankTransaction, len(fresh))
    for row_id, (key, line) in zip(ids, fresh, strict=True):
        if line.key in repeats:
            kind, outcome = Kind.TRANSFER_IN, repeats[line.key]
        else:
            kind, outcome = _decide(line, row_id, book, matcher)
        if outcome.unmatched:
            state = State.UNMATCHED
        elif outcome.counter in ("ignored", "duplicates"):
            state = State.IGNORED
        else:
            state = State.PROCESSED
        rows.append(
            _row(
                line,
                id=row_id,
                import_file_id=import_file.pk,
                unique_key=key,
                kind=kind,
                state=state,
                debit_id=outcome.debit.pk if outcome.debit is not None else None,
                invoice_id=outcome.invoice_id,
                note=outcome.note[:255],
                booking_key="" if line.key in repeats else booking_keys.get(line.key, ""),
                created_at=now,
            )
        )
        summary[outcome.counter] += outcome.count
    insert_rows(BankTransaction, rows)
    summary["new"] += len(rows)
    book.flush()
    summary.update(book.follow_up())
    return book.touched_batches


def _booking_key(line: Line) -> str | None:
    """What makes a transfer the same booking in any file: own IBAN, the bank's reference,
    booking date, amount and direction; None without a reference from the bank (then two
    equal transfers on one day could not be told from one reported twice)."""
    if not line.bank_reference:
        return None
    key = "|".join(
        (
            line.own_iban or "-",
            line.bank_reference,
            line.booking_date.isoformat() if line.booking_date else "-",
            str(line.amount),
            line.credit_debit,
        )
    )
    return key if len(key) <= 400 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _transfers_seen(transfers: Iterable[Line]) -> tuple[dict[str, str], dict[str, Outcome]]:
    """The booking keys of the chunk's transfers (by line key), and the lines that repeat a
    booking already stored (from another file, or earlier in this one) with their outcome:
    stored as a duplicate, not booked. One query for the chunk."""
    keys = {line.key: key for line in transfers if (key := _booking_key(line))}
    stored: dict[str, tuple[str | None, int | None]] = {}
    for part in batched(sorted(set(keys.values()))):
        rows = BankTransaction.objects.filter(among("booking_key", part)).values_list(
            "booking_key", "import_file__filename", "invoice_id"
        )
        stored.update({key: (filename, invoice_id) for key, filename, invoice_id in rows})
    repeats: dict[str, Outcome] = {}
    for line_key, key in keys.items():
        if key not in stored:
            stored[key] = (None, None)  # a second line with this key in this file repeats it
            continue
        filename, invoice_id = stored[key]
        if filename is None:
            note = _("Dezelfde boeking staat eerder in dit bestand; niet nog eens verwerkt.")
        else:
            note = _("Dezelfde boeking is al ingelezen (%(file)s); niet nog eens verwerkt.") % {
                "file": filename
            }
        repeats[line_key] = Outcome("duplicates", invoice_id=invoice_id, note=note)
    return keys, repeats


def _is_transfer(line: Line, book: SettlementBook) -> bool:
    return (
        line.credit_debit == CREDIT
        and not line.status_report
        and not line.is_return
        and not line.is_direct_debit
        and line.amount > 0
        and not book.names_debit(line.end_to_end_id)
    )


def _row(line: Line, **fields) -> dict:
    """A BankTransaction as plain column values (inserted in bulk by ``insert_rows``)."""
    return {
        **fields,
        "booking_date": line.booking_date,
        "amount": line.amount,
        "currency": (line.currency or "EUR")[:3],
        "credit_debit": line.credit_debit[:4],
        "end_to_end_id": (line.end_to_end_id or "")[:35],
        "mandate_id": (line.mandate_id or "")[:35],
        "reference": (line.reference or "")[:140],
        "description": (line.description or "")[:500],
        "counterparty_name": (line.counterparty_name or "")[:140],
        "counterparty_iban": (line.counterparty_iban or "")[:34],
        "return_reason": (line.return_reason or "")[:4],
        "return_info": (line.return_info or "")[:255],
        "matched_by_id": None,
        "matched_at": None,
    }


def _decide(
    line: Line, row_id: int, book: SettlementBook, matcher: TransferMatcher
) -> tuple[str, Outcome]:
    if line.status_report:
        return _decide_status(line, book)
    guess = _kind_of(line)
    if not line.booked:
        return guess, Outcome(
            "ignored",
            note=_("Niet geboekt (status %(status)s): niet verwerkt.") % {"status": line.status},
        )
    if line.currency != "EUR":
        return guess, Outcome(
            "ignored", note=_("Valuta %(ccy)s: niet verwerkt.") % {"ccy": line.currency}
        )
    if line.reversal:
        return Kind.OTHER, Outcome(
            "unmatched", note=_("Correctieboeking van de bank; controleer."), unmatched=True
        )
    on = line.booking_date or clock.today()
    debit = book.by_end_to_end.get(line.end_to_end_id) if line.end_to_end_id else None
    if line.credit_debit == DEBIT:
        if not line.is_return:
            return Kind.OTHER, Outcome("ignored", note=_("Afschrijving: geen debiteurenpost."))
        if debit is None:
            return Kind.DEBIT_RETURNED, Outcome(
                "unmatched",
                note=_("Storno van een onbekende incasso (%(id)s); controleer.")
                % {"id": line.end_to_end_id or "-"},
                unmatched=True,
            )
        return Kind.DEBIT_RETURNED, book.return_debit(
            debit,
            reason=line.return_reason or "",
            info=line.return_info or "",
            on=on,
            bank_transaction_id=row_id,
        )
    if debit is not None:
        return Kind.DEBIT_COLLECTED, book.collect(
            debit, amount=line.amount, on=on, bank_transaction_id=row_id
        )
    if line.is_direct_debit and not line.is_return:
        batch = next((book.batches[b] for b in line.batch_ids if b in book.batches), None)
        if batch is not None and not line.end_to_end_id:
            return Kind.DEBIT_COLLECTED, book.collect_batch(
                batch, amount=line.amount, on=on, bank_transaction_id=row_id
            )
        return Kind.DEBIT_COLLECTED, Outcome(
            "unmatched",
            note=_("Incasso niet gevonden (%(id)s); controleer.")
            % {"id": line.end_to_end_id or ", ".join(line.batch_ids) or "-"},
            unmatched=True,
        )
    if not _is_transfer(line, book):
        return Kind.OTHER, Outcome("ignored", note=_("Geen betaling van een klant."))
    return Kind.TRANSFER_IN, matcher.settle(book, key=line.key, on=on, bank_transaction_id=row_id)


def _kind_of(line: Line) -> str:
    if line.is_return:
        return Kind.DEBIT_RETURNED
    if line.is_direct_debit:
        return Kind.DEBIT_COLLECTED
    return Kind.TRANSFER_IN if line.credit_debit == CREDIT else Kind.OTHER


def _decide_status(line: Line, book: SettlementBook) -> tuple[str, Outcome]:
    on = line.booking_date or clock.today()
    debit = book.by_end_to_end.get(line.end_to_end_id) if line.end_to_end_id else None
    if line.status == "RJCT":
        if debit is not None:
            return Kind.DEBIT_REJECTED, book.reject(
                debit, reason=line.return_reason or "", info=line.return_info or "", on=on
            )
        batch = next((book.batches[b] for b in line.batch_ids if b in book.batches), None)
        if batch is not None:
            return Kind.DEBIT_REJECTED, book.reject_batch(
                batch, reason=line.return_reason or "", info=line.return_info or "", on=on
            )
        return Kind.DEBIT_REJECTED, Outcome(
            "ignored",
            note=_("Weigering van een onbekende incasso (%(id)s).")
            % {"id": line.end_to_end_id or "-"},
        )
    if line.status in ACCEPTED_STATUSES:
        return Kind.DEBIT_ACCEPTED, Outcome(
            "accepted",
            debit,
            debit.invoice_id if debit else None,
            _("Status %(status)s: geen wijziging.") % {"status": line.status},
        )
    return Kind.OTHER, Outcome(
        "ignored", note=_("Onbekende status %(status)s.") % {"status": line.status or "-"}
    )
