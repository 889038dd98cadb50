"""Reading ISO 20022 bank files: camt.053, camt.054 and pain.002 into plain dataclasses.

The PyPI parsers for these messages drop the return reason or break on newer
versions, so this is a small parser of our own. It is namespace-agnostic: every
lookup goes by local name (``{*}`` paths here, local paths in
``billing.bankfiles.entries`` for the entries), so camt.053.001.02 and .001.08
(and pain.002.001.03 and .001.10) go through one code path; the few places
where the versions differ (entry status as text or as ``Sts/Cd``, party names
directly under ``Dbtr`` or under ``Dbtr/Pty``, the transaction amount in
``TxDtls/Amt`` or ``AmtDtls/TxAmt/Amt``) are read with a fallback.

The result is pure data: no model, no database. Importing, deduplicating and
matching happen elsewhere, keyed on ``unique_key``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from lxml import etree

from billing.bankfiles.entries import ABSENT, read_entries
from billing.bankfiles.safe_xml import DEFAULT_MAX_BYTES, BankFileError, parse_untrusted_xml

CREDIT = "CRDT"
DEBIT = "DBIT"

# An ISO 20022 amount: up to 18 digits, at most 5 decimals, never negative.
_AMOUNT = re.compile(r"^\d{1,18}(\.\d{1,5})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class _Where:
    """Where in the file a value sits, for an error message; translated only when
    an error is actually raised (a 100 000-entry statement needs none)."""

    __slots__ = ("params", "template")

    def __init__(self, template: str, params: dict[str, object]):
        self.template = template
        self.params = params

    def __str__(self) -> str:
        return _(self.template) % self.params


class BankFileKind(StrEnum):
    CAMT053 = "camt.053"
    CAMT054 = "camt.054"
    PAIN002 = "pain.002"


# (namespace message id, local name of the root's first child) -> kind.
SUPPORTED: dict[tuple[str, str], BankFileKind] = {
    ("camt.053.001.02", "BkToCstmrStmt"): BankFileKind.CAMT053,
    ("camt.053.001.08", "BkToCstmrStmt"): BankFileKind.CAMT053,
    ("camt.054.001.02", "BkToCstmrDbtCdtNtfctn"): BankFileKind.CAMT054,
    ("camt.054.001.08", "BkToCstmrDbtCdtNtfctn"): BankFileKind.CAMT054,
    ("pain.002.001.03", "CstmrPmtStsRpt"): BankFileKind.PAIN002,
    ("pain.002.001.10", "CstmrPmtStsRpt"): BankFileKind.PAIN002,
}
_NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"


@dataclass(frozen=True)
class BankTransactionCode:
    """ISO bank transaction code, e.g. PMNT/RDDT/ESDD (collected SEPA direct debit)."""

    domain: str | None
    family: str | None
    subfamily: str | None
    proprietary: str | None = None

    def __str__(self) -> str:
        return "/".join(part or "-" for part in (self.domain, self.family, self.subfamily))

    @property
    def is_direct_debit(self) -> bool:
        return self.domain == "PMNT" and self.family in {"RDDT", "IDDT"}

    @property
    def is_return(self) -> bool:
        # UPDD: unpaid (returned, refused, refunded) direct debit; RRTN: returned transfer.
        return self.subfamily in {"UPDD", "RRTN"}


@dataclass(frozen=True)
class Transaction:
    """One ``TxDtls`` of an entry: a single debit, transfer or return."""

    unique_key: str
    amount: Decimal
    currency: str
    credit_debit: str
    end_to_end_id: str | None
    instruction_id: str | None
    transaction_id: str | None
    payment_information_id: str | None
    account_servicer_reference: str | None
    mandate_id: str | None
    structured_reference: str | None
    remittance_unstructured: str | None
    counterparty_name: str | None
    counterparty_iban: str | None
    counterparty_bic: str | None
    return_reason: str | None
    return_additional_info: str | None
    bank_transaction_code: BankTransactionCode | None

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.credit_debit == CREDIT else -self.amount


@dataclass(frozen=True)
class Entry:
    """One ``Ntry`` of a statement or notification: one booking on the account."""

    unique_key: str
    statement_id: str
    account_iban: str | None
    entry_reference: str | None
    account_servicer_reference: str | None
    amount: Decimal
    currency: str
    credit_debit: str
    reversal: bool
    status: str
    booking_date: date | None
    value_date: date | None
    bank_transaction_code: BankTransactionCode | None
    additional_info: str | None
    transactions: tuple[Transaction, ...]
    # NtryDtls/Btch: a pain.008 batch booked as one amount, often without TxDtls.
    batch_message_id: str | None = None
    batch_payment_information_id: str | None = None

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.credit_debit == CREDIT else -self.amount

    @property
    def is_booked(self) -> bool:
        return self.status == "BOOK"


@dataclass(frozen=True)
class Balance:
    code: str  # OPBD, CLBD, PRCD, ITBD, CLAV, ...
    amount: Decimal  # signed: negative when the balance is a debit
    currency: str
    date: date | None


@dataclass(frozen=True)
class Statement:
    """A ``Stmt`` (camt.053) or ``Ntfctn`` (camt.054): the entries of one account."""

    statement_id: str
    account_iban: str | None
    account_currency: str | None
    created_at: datetime | None
    balances: tuple[Balance, ...]
    entries: tuple[Entry, ...]

    def balance(self, code: str) -> Balance | None:
        return next((b for b in self.balances if b.code == code), None)


@dataclass(frozen=True)
class StatusItem:
    """One ``TxInfAndSts`` of a pain.002: the bank's verdict on one debit we sent."""

    unique_key: str
    original_payment_information_id: str | None
    original_instruction_id: str | None
    original_end_to_end_id: str | None
    status: str | None  # ACCP, ACSC, ACTC, RJCT, PDNG, ... (inherited when not given)
    reason_code: str | None
    reason_additional_info: str | None
    amount: Decimal | None
    currency: str | None
    requested_collection_date: date | None
    mandate_id: str | None
    debtor_name: str | None
    debtor_iban: str | None


@dataclass(frozen=True)
class PaymentInformationStatus:
    """One ``OrgnlPmtInfAndSts`` of a pain.002: the bank's verdict on one ``PmtInf`` we sent.

    A bank may refuse a whole block (``PmtInfSts`` RJCT) without listing its
    transactions, whatever the group status says; such a block has no items.
    """

    id: str | None  # OrgnlPmtInfId: our batch's message id
    status: str | None  # PmtInfSts, upper-cased: ACCP, PART, RJCT, ...
    reason_code: str | None  # StsRsnInf/Rsn/Cd, else Rsn/Prtry
    reason_info: str | None  # the AddtlInf texts, joined by a space
    transaction_count: int  # its TxInfAndSts

    @property
    def is_rejected_without_lines(self) -> bool:
        """Refused as a whole with no transaction lines: every debit of the block is refused."""
        return self.status == "RJCT" and not self.transaction_count


@dataclass(frozen=True)
class StatusReport:
    original_message_id: str
    original_message_type: str | None
    group_status: str | None
    group_reason_code: str | None
    items: tuple[StatusItem, ...]
    payment_information: tuple[PaymentInformationStatus, ...] = ()


@dataclass(frozen=True)
class BankFile:
    kind: BankFileKind
    version: str  # e.g. "camt.053.001.02"
    message_id: str
    created_at: datetime | None
    statements: tuple[Statement, ...] = ()
    status_report: StatusReport | None = None

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(entry for statement in self.statements for entry in statement.entries)


# --- helpers on elements, by local name --------------------------------------------

# "Acct/Id/IBAN" -> "{*}Acct/{*}Id/{*}IBAN": ElementPath that matches the local name
# in any namespace or none, so the tree is read as parsed and never renamed.
_ANY_NS: dict[str, str] = {}


def _any_ns(path: str) -> str:
    qualified = _ANY_NS.get(path)
    if qualified is None:  # only this module's own paths: bounded
        qualified = _ANY_NS[path] = "/".join("{*}" + step for step in path.split("/"))
    return qualified


def _find(el: etree._Element, path: str) -> etree._Element | None:
    return el.find(_any_ns(path))


def _findall(el: etree._Element, path: str) -> list[etree._Element]:
    return el.findall(_any_ns(path))


def _text(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    value = el.findtext(_any_ns(path))
    if not value:
        return None
    return value.strip() or None


def _first_text(el: etree._Element | None, *paths: str) -> str | None:
    for path in paths:
        value = _text(el, path)
        if value is not None:
            return value
    return None


def _required(el: etree._Element, path: str, where: object) -> str:
    value = _text(el, path)
    if value is None:
        raise BankFileError(
            _("Verplicht veld %(path)s ontbreekt in %(where)s.") % {"path": path, "where": where},
            code="bank_file_incomplete",
        )
    return value


def _amount_of(el: etree._Element | None, where: object) -> tuple[Decimal, str] | None:
    if el is None:
        return None
    return _amount_text((el.text or "").strip(), (el.get("Ccy") or "").strip(), where)


def _amount_text(raw: str, currency: str, where: object) -> tuple[Decimal, str]:
    if not _AMOUNT.match(raw) or not _CURRENCY.match(currency):
        raise BankFileError(
            _("Ongeldig bedrag %(amount)s %(ccy)s in %(where)s.")
            % {"amount": raw[:40], "ccy": currency[:5], "where": where},
            code="bank_file_amount",
        )
    return Decimal(raw), currency


def _date(el: etree._Element | None, where: object) -> date | None:
    """A ``Dt`` or ``DtTm`` choice (BookgDt, ValDt) as a business date in Amsterdam."""
    if el is None:
        return None
    raw = _text(el, "Dt")
    if raw is not None:
        return _parse_date(raw, where)
    raw = _text(el, "DtTm")
    if raw is not None:
        moment = _parse_datetime(raw, where)
        return timezone.localtime(moment, timezone.get_default_timezone()).date()
    # Some files put the date straight into the element (ReqdColltnDt).
    raw = (el.text or "").strip()
    return _parse_date(raw, where) if raw else None


def _parse_date(raw: str, where: object) -> date:
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise BankFileError(
            _("Ongeldige datum %(value)s in %(where)s.") % {"value": raw[:40], "where": where},
            code="bank_file_date",
        ) from None


def _parse_datetime(raw: str, where: object) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BankFileError(
            _("Ongeldige datum %(value)s in %(where)s.") % {"value": raw[:40], "where": where},
            code="bank_file_date",
        ) from None
    if timezone.is_naive(moment):
        # ISO 20022 local time without offset: the bank's (Dutch) local time.
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


def _credit_debit(el: etree._Element, path: str, where: object, default: str | None = None) -> str:
    return _check_credit_debit(_text(el, path) or default, where)


def _check_credit_debit(value: str | None, where: object) -> str:
    if value not in (CREDIT, DEBIT):
        raise BankFileError(
            _("Ongeldige credit/debet-indicator in %(where)s.") % {"where": where},
            code="bank_file_incomplete",
        )
    return value


def _iban(el: etree._Element | None, path: str) -> str | None:
    value = _text(el, path)
    return value.replace(" ", "").upper() if value else None


def _party(parties: etree._Element | None, role: str) -> tuple[str | None, str | None]:
    """Name and IBAN of ``Dbtr``/``Cdtr``: .02 has ``Dbtr/Nm``, .08 ``Dbtr/Pty/Nm``."""
    if parties is None:
        return None, None
    name = _first_text(parties, f"{role}/Nm", f"{role}/Pty/Nm", f"Ultmt{role}/Nm")
    iban = _iban(parties, f"{role}Acct/Id/IBAN")
    return name, iban


def _not_provided(value: str | None) -> str | None:
    # "NOTPROVIDED" is the standard's placeholder for an absent end-to-end id.
    return None if value is None or value.upper() == "NOTPROVIDED" else value


def _new(cls, fields: dict):
    """An instance of the frozen dataclass ``cls`` from all of its ``fields``, bypassing ``__init__``.

    A frozen dataclass's ``__init__`` sets every field through ``object.__setattr__``:
    5 µs for a Transaction, a second for the entries of a 100 000-entry statement.
    Entry and Transaction validate nothing in ``__init__``, so filling ``__dict__``
    at once makes the same object; every field must be given.
    """
    instance = object.__new__(cls)
    object.__setattr__(instance, "__dict__", fields)
    return instance


# --- camt.053 / camt.054 ---------------------------------------------------------
#
# Entries and transactions arrive as tuples of their texts in the order of
# ``ENTRY_FIELDS`` and ``TX_FIELDS``; see billing.bankfiles.entries for why and how.

_STATEMENT_WHERE = gettext_noop("afschrift %(id)s")
_ENTRY_WHERE = gettext_noop("boeking %(ref)s")
_TRANSACTION_WHERE = gettext_noop("transactie %(n)s van boeking %(ref)s")


class _Cache:
    """Values that repeat across a file's entries, converted once: amounts (the
    entry's and its transaction's are usually the same), dates, codes."""

    __slots__ = ("amounts", "codes", "dates")

    def __init__(self) -> None:
        self.amounts: dict[tuple[str, str], tuple[Decimal, str]] = {}
        self.codes: dict[tuple, BankTransactionCode] = {}
        self.dates: dict[str, date] = {}

    def amount(self, raw: str | None, currency: str | None, where: object) -> tuple[Decimal, str]:
        """A valid amount, kept under ``(raw, currency)``: callers look there first."""
        key = (raw or "", currency or "")
        amount = self.amounts.get(key)
        if amount is None:  # only valid amounts are kept
            amount = self.amounts[key] = _amount_text(key[0], key[1], where)
        return amount

    def code(self, parts: tuple[str | None, ...]) -> BankTransactionCode | None:
        if not any(parts):
            return None
        code = self.codes.get(parts)
        if code is None:
            code = self.codes[parts] = BankTransactionCode(*parts)
        return code

    def date(self, on: str | None, at: str | None, raw: str | None, where: object) -> date | None:
        """``BookgDt``/``ValDt``: a ``Dt`` or ``DtTm`` choice, as a business date in Amsterdam."""
        if on is not None:
            day = self.dates.get(on)
            if day is None:
                day = self.dates[on] = _parse_date(on, where)
            return day
        if at is not None:
            moment = _parse_datetime(at, where)
            return timezone.localtime(moment, timezone.get_default_timezone()).date()
        return _parse_date(raw, where) if raw else None


def _missing_amount(where: object) -> BankFileError:
    return BankFileError(
        _("Bedrag ontbreekt in %(where)s.") % {"where": where}, code="bank_file_incomplete"
    )


def _entry_where(reference: str | None, position: int) -> _Where:
    # Built only for an error or a first sight: a 100 000-entry statement needs few.
    return _Where(_ENTRY_WHERE, {"ref": reference or f"#{position}"})


def _transaction(
    values: tuple, entry: tuple, own_iban: str | None, key_prefix: str, position: int, cache: _Cache
) -> Transaction:
    (
        amount_raw,
        amount_currency,
        tx_amount_raw,
        tx_amount_currency,
        instructed_raw,
        instructed_currency,
        credit_debit_raw,
        debtor_name,
        debtor_party_name,
        ultimate_debtor_name,
        debtor_iban,
        creditor_name,
        creditor_party_name,
        ultimate_creditor_name,
        creditor_iban,
        debtor_bic,
        debtor_bicfi,
        creditor_bic,
        creditor_bicfi,
        end_to_end_raw,
        account_servicer_reference,
        transaction_id,
        instruction_id,
        payment_information_id,
        mandate_id,
        structured_reference,
        remittance,
        reason_code,
        reason_proprietary,
        return_info,
        domain,
        family,
        subfamily,
        proprietary,
    ) = values
    reference, entry_amount, entry_credit_debit, entry_code, count = entry
    if amount_raw is not ABSENT:
        raw, currency = amount_raw, amount_currency
    elif tx_amount_raw is not ABSENT:
        raw, currency = tx_amount_raw, tx_amount_currency
    elif instructed_raw is not ABSENT:
        raw, currency = instructed_raw, instructed_currency
    elif count != 1:
        raise _missing_amount(_Where(_TRANSACTION_WHERE, {"n": position, "ref": reference or "?"}))
    else:
        raw = currency = ABSENT  # one transaction without an amount: the entry's
    if raw is ABSENT:
        amount = entry_amount
    else:
        amount = cache.amounts.get((raw, currency))
        if amount is None:
            where = _Where(_TRANSACTION_WHERE, {"n": position, "ref": reference or "?"})
            amount = cache.amount(raw, currency, where)
    credit_debit = credit_debit_raw or entry_credit_debit
    if credit_debit != CREDIT and credit_debit != DEBIT:
        where = _Where(_TRANSACTION_WHERE, {"n": position, "ref": reference or "?"})
        _check_credit_debit(credit_debit, where)

    # .02 has ``Dbtr/Nm``, .08 ``Dbtr/Pty/Nm``.
    debtor = (
        debtor_name or debtor_party_name or ultimate_debtor_name,
        debtor_iban.replace(" ", "").upper() if debtor_iban else None,
    )
    creditor = (
        creditor_name or creditor_party_name or ultimate_creditor_name,
        creditor_iban.replace(" ", "").upper() if creditor_iban else None,
    )
    # The counterparty is the other side of the booking: the debtor of a credit,
    # the creditor of a debit. A returned direct debit is booked as a debit but
    # still names us as creditor, so a side that is our own account is skipped.
    sides = (debtor, creditor) if credit_debit == CREDIT else (creditor, debtor)
    counterparty: tuple[str | None, str | None] = (None, None)
    for name, iban in sides:
        if (name or iban) and not (iban and own_iban and iban == own_iban):
            counterparty = (name, iban)
            break
    if counterparty == debtor:
        counterparty_bic = debtor_bic or debtor_bicfi
    else:
        counterparty_bic = creditor_bic or creditor_bicfi

    end_to_end_id = _not_provided(end_to_end_raw)
    own_ref = account_servicer_reference or end_to_end_id or transaction_id
    unique_key = f"{key_prefix}|{own_ref or f'#{position}'}"

    return _new(
        Transaction,
        {
            "unique_key": unique_key,
            "amount": amount[0],
            "currency": amount[1],
            "credit_debit": credit_debit,
            "end_to_end_id": end_to_end_id,
            "instruction_id": instruction_id,
            "transaction_id": transaction_id,
            "payment_information_id": payment_information_id,
            "account_servicer_reference": account_servicer_reference,
            "mandate_id": mandate_id,
            "structured_reference": structured_reference,
            "remittance_unstructured": remittance,
            "counterparty_name": counterparty[0],
            "counterparty_iban": counterparty[1],
            "counterparty_bic": counterparty_bic,
            "return_reason": reason_code or reason_proprietary,
            "return_additional_info": return_info,
            "bank_transaction_code": (
                cache.code((domain, family, subfamily, proprietary))
                if domain or family or subfamily or proprietary
                else None
            )
            or entry_code,
        },
    )


def _entry(
    values: tuple,
    tx_values: list[tuple],
    *,
    statement_key: str,
    statement_id: str,
    own_iban: str | None,
    position: int,
    cache: _Cache,
) -> Entry:
    (
        entry_reference,
        servicer_reference,
        amount_raw,
        amount_currency,
        credit_debit_raw,
        status_code,
        status_proprietary,
        status_text,
        domain,
        family,
        subfamily,
        proprietary,
        batch_count,
        batch_message_id,
        batch_payment_information_id,
        reversal_raw,
        booked_on,
        booked_at,
        booked_raw,
        valued_on,
        valued_at,
        valued_raw,
        additional_info,
    ) = values
    reference = entry_reference or servicer_reference
    if amount_raw is ABSENT:
        raise _missing_amount(_entry_where(reference, position))
    amount = cache.amounts.get((amount_raw, amount_currency))
    if amount is None:
        amount = cache.amount(amount_raw, amount_currency, _entry_where(reference, position))
    credit_debit = credit_debit_raw
    if credit_debit != CREDIT and credit_debit != DEBIT:
        _check_credit_debit(credit_debit, _entry_where(reference, position))
    # .02: <Sts>BOOK</Sts>; .08: <Sts><Cd>BOOK</Cd></Sts>.
    status = status_code or status_proprietary or status_text
    if status is None:
        raise BankFileError(
            _("Status ontbreekt in %(where)s.") % {"where": _entry_where(reference, position)},
            code="bank_file_incomplete",
        )
    code = cache.code((domain, family, subfamily, proprietary))
    key_prefix = statement_key + (reference or f"#{position}")
    entry = (reference, amount, credit_debit, code, len(tx_values))
    if len(tx_values) == 1:  # most entries
        transactions = (_transaction(tx_values[0], entry, own_iban, key_prefix, 1, cache),)
    else:
        transactions = tuple(
            [
                _transaction(tx, entry, own_iban, key_prefix, n, cache)
                for n, tx in enumerate(tx_values, start=1)
            ]
        )
    if len(transactions) > 1:
        tx_keys = [tx.unique_key for tx in transactions]
        if len(set(tx_keys)) != len(tx_keys):
            # Two transactions of one entry with the same reference (or none): the
            # position in the entry is what tells them apart, and it is stable.
            transactions = tuple(
                replace(tx, unique_key=f"{key_prefix}|#{n}")
                for n, tx in enumerate(transactions, start=1)
            )
    if (
        batch_count is not None
        and batch_count.isdigit()
        and transactions
        and int(batch_count) != len(transactions)
    ):
        raise BankFileError(
            _(
                "Aantal transacties in %(where)s klopt niet (%(said)s opgegeven, %(found)s gevonden)."
            )
            % {
                "where": _entry_where(reference, position),
                "said": batch_count,
                "found": len(transactions),
            },
            code="bank_file_inconsistent",
        )
    dates = cache.dates
    booking_date = dates.get(booked_on)
    if booking_date is None:
        booking_date = cache.date(
            booked_on, booked_at, booked_raw, _entry_where(reference, position)
        )
    value_date = dates.get(valued_on)
    if value_date is None:
        value_date = cache.date(valued_on, valued_at, valued_raw, _entry_where(reference, position))
    return _new(
        Entry,
        {
            "unique_key": key_prefix,
            "statement_id": statement_id,
            "account_iban": own_iban,
            "entry_reference": reference,
            "account_servicer_reference": servicer_reference,
            "amount": amount[0],
            "currency": amount[1],
            "credit_debit": credit_debit,
            "reversal": (reversal_raw or "false").lower() in {"true", "1"},
            "status": status,
            "booking_date": booking_date,
            "value_date": value_date,
            "bank_transaction_code": code,
            "additional_info": additional_info,
            "transactions": transactions,
            "batch_message_id": batch_message_id,
            "batch_payment_information_id": batch_payment_information_id,
        },
    )


def _balance(bal: etree._Element, where: object) -> Balance:
    code = _first_text(bal, "Tp/CdOrPrtry/Cd", "Tp/CdOrPrtry/Prtry") or "?"
    amount = _amount_of(_find(bal, "Amt"), where)
    if amount is None:
        raise BankFileError(
            _("Bedrag ontbreekt in %(where)s.") % {"where": where}, code="bank_file_incomplete"
        )
    sign = _credit_debit(bal, "CdtDbtInd", where)
    value = amount[0] if sign == CREDIT else -amount[0]
    return Balance(code=code, amount=value, currency=amount[1], date=_date(_find(bal, "Dt"), where))


def _statements(body: etree._Element, message_id: str, tag: str) -> tuple[Statement, ...]:
    statements = []
    cache = _Cache()
    for stmt in _findall(body, tag):
        statement_id = _required(stmt, "Id", tag)
        where = _Where(_STATEMENT_WHERE, {"id": statement_id})
        own_iban = _iban(stmt, "Acct/Id/IBAN")
        created = _text(stmt, "CreDtTm")
        # Statement ids are unique per account only, message ids per sender; an
        # entry's key holds both plus the entry's own reference, so the same file
        # read twice yields the same keys and two entries never share one.
        statement_key = "|".join((message_id, own_iban or "-", statement_id, ""))
        entries = tuple(
            [
                _entry(
                    values,
                    tx_values,
                    statement_key=statement_key,
                    statement_id=statement_id,
                    own_iban=own_iban,
                    position=n,
                    cache=cache,
                )
                for n, (values, tx_values) in enumerate(read_entries(stmt), start=1)
            ]
        )
        keys = [entry.unique_key for entry in entries]
        if len(set(keys)) != len(keys):
            raise BankFileError(
                _("Dubbele boekingsreferentie in %(where)s.") % {"where": where},
                code="bank_file_inconsistent",
            )
        statements.append(
            Statement(
                statement_id=statement_id,
                account_iban=own_iban,
                account_currency=_text(stmt, "Acct/Ccy"),
                created_at=_parse_datetime(created, where) if created else None,
                balances=tuple(_balance(bal, where) for bal in _findall(stmt, "Bal")),
                entries=entries,
            )
        )
    return tuple(statements)


# --- pain.002 ----------------------------------------------------------------------


def _reason(el: etree._Element | None) -> tuple[str | None, str | None]:
    if el is None:
        return None, None
    info = _find(el, "StsRsnInf")
    if info is None:
        return None, None
    code = _first_text(info, "Rsn/Cd", "Rsn/Prtry")
    extra = [t.text.strip() for t in _findall(info, "AddtlInf") if t.text and t.text.strip()]
    return code, " ".join(extra) or None


def _status_report(body: etree._Element, message_id: str) -> StatusReport:
    group = _find(body, "OrgnlGrpInfAndSts")
    if group is None:
        raise BankFileError(
            _("Verplicht veld OrgnlGrpInfAndSts ontbreekt in het statusrapport."),
            code="bank_file_incomplete",
        )
    original_message_id = _required(group, "OrgnlMsgId", "OrgnlGrpInfAndSts")
    group_status = _text(group, "GrpSts")
    group_reason, _extra = _reason(group)
    items = []
    blocks = []
    for pmt in _findall(body, "OrgnlPmtInfAndSts"):
        pmt_id = _text(pmt, "OrgnlPmtInfId")
        pmt_status = _text(pmt, "PmtInfSts")
        pmt_reason, pmt_extra = _reason(pmt)
        transactions = _findall(pmt, "TxInfAndSts")
        blocks.append(
            PaymentInformationStatus(
                id=pmt_id,
                status=pmt_status.upper() if pmt_status else None,
                reason_code=pmt_reason,
                reason_info=pmt_extra,
                transaction_count=len(transactions),
            )
        )
        for n, tx in enumerate(transactions, start=1):
            where = _Where(
                gettext_noop("transactie %(n)s van %(id)s"), {"n": n, "id": pmt_id or "?"}
            )
            reason, extra = _reason(tx)
            ref = _find(tx, "OrgnlTxRef")
            amount = _amount_of(_find(ref, "Amt/InstdAmt") if ref is not None else None, where)
            end_to_end_id = _not_provided(_text(tx, "OrgnlEndToEndId"))
            own = _text(tx, "StsId") or end_to_end_id or f"#{n}"
            debtor_name, debtor_iban = _party(ref, "Dbtr")
            items.append(
                StatusItem(
                    unique_key="|".join((message_id, original_message_id, pmt_id or "-", own)),
                    original_payment_information_id=pmt_id,
                    original_instruction_id=_text(tx, "OrgnlInstrId"),
                    original_end_to_end_id=end_to_end_id,
                    status=_text(tx, "TxSts") or pmt_status or group_status,
                    reason_code=reason or pmt_reason or group_reason,
                    reason_additional_info=extra or pmt_extra,
                    amount=amount[0] if amount else None,
                    currency=amount[1] if amount else None,
                    requested_collection_date=_date(
                        _find(ref, "ReqdColltnDt") if ref is not None else None, where
                    ),
                    mandate_id=_text(ref, "MndtRltdInf/MndtId"),
                    debtor_name=debtor_name,
                    debtor_iban=debtor_iban,
                )
            )
    keys = [item.unique_key for item in items]
    if len(set(keys)) != len(keys):
        raise BankFileError(
            _("Dubbele transactie in het statusrapport."), code="bank_file_inconsistent"
        )
    return StatusReport(
        original_message_id=original_message_id,
        original_message_type=_text(group, "OrgnlMsgNmId"),
        group_status=group_status,
        group_reason_code=group_reason,
        items=tuple(items),
        payment_information=tuple(blocks),
    )


# --- entry point -------------------------------------------------------------------


def detect(root: etree._Element) -> tuple[BankFileKind, str]:
    """The kind and version of a parsed document, from its namespace and first child."""
    body = next(iter(root.iterchildren(etree.Element)), None)
    if body is None or etree.QName(root).localname != "Document":
        raise BankFileError(_("Onbekend bestandstype."), code="bank_file_unknown")
    namespace = etree.QName(body).namespace or etree.QName(root).namespace or ""
    version = namespace.removeprefix(_NAMESPACE_PREFIX)
    kind = SUPPORTED.get((version, etree.QName(body).localname))
    if kind is None or not namespace.startswith(_NAMESPACE_PREFIX):
        raise BankFileError(
            _("Onbekend bestandstype: alleen camt.053, camt.054 en pain.002 worden ingelezen."),
            code="bank_file_unknown",
        )
    return kind, version


def parse_bank_file(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> BankFile:
    """Parse a camt.053, camt.054 or pain.002 file; ``BankFileError`` when refused."""
    # Every text read is stripped, so the indentation between elements is dead weight.
    root = parse_untrusted_xml(data, max_bytes=max_bytes, remove_blank_text=True)
    kind, version = detect(root)
    body = root[0]
    header = _find(body, "GrpHdr")
    if header is None:
        raise BankFileError(
            _("Verplicht veld GrpHdr ontbreekt in het bestand."), code="bank_file_incomplete"
        )
    message_id = _required(header, "MsgId", "GrpHdr")
    created = _text(header, "CreDtTm")
    created_at = _parse_datetime(created, "GrpHdr") if created else None
    if kind is BankFileKind.PAIN002:
        return BankFile(
            kind=kind,
            version=version,
            message_id=message_id,
            created_at=created_at,
            status_report=_status_report(body, message_id),
        )
    tag = "Stmt" if kind is BankFileKind.CAMT053 else "Ntfctn"
    return BankFile(
        kind=kind,
        version=version,
        message_id=message_id,
        created_at=created_at,
        statements=_statements(body, message_id, tag),
    )
