"""Reading ISO 20022 bank files: camt.053, camt.054 and pain.002 into plain dataclasses.

The PyPI parsers for these messages drop the return reason or break on newer
versions, so this is a small parser of our own. It is namespace-agnostic: after
the safe parse every tag is reduced to its local name, so camt.053.001.02 and
.001.08 (and pain.002.001.03 and .001.10) go through one code path; the few
places where the versions differ (entry status as text or as ``Sts/Cd``, party
names directly under ``Dbtr`` or under ``Dbtr/Pty``, the transaction amount in
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

    def __init__(self, template: str, **params: object):
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
_ENTRY_TAGS = frozenset({"Ntry"})


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
class StatusReport:
    original_message_id: str
    original_message_type: str | None
    group_status: str | None
    group_reason_code: str | None
    items: tuple[StatusItem, ...]


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


# --- helpers on namespace-stripped elements ----------------------------------


def _text(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    value = el.findtext(path)
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


# --- camt.053 / camt.054 ---------------------------------------------------------
#
# A statement can hold 100 000 entries and over four million elements. Reading
# them with ElementPath (``findtext("Refs/EndToEndId")`` costs about 3 µs a call,
# and an entry has some forty fields) or renaming every element to strip its
# namespace takes longer than the rest of an import together. So each entry,
# and each of its transactions, is flattened in one walk into a dict from its
# local path ("Refs/EndToEndId", "Amt/@Ccy") to the first text found there.
# The entries' subtrees keep their namespace (see ``_strip_namespaces``); the
# walk reads local names, so .02 and .08 still share one code path.

# Paths that may repeat and are all kept, in order (under ``path + "[]"``).
_REPEATED = frozenset({"RmtInf/Ustrd", "RtrInf/AddtlInf"})


# "{urn:iso:...:camt.053.001.02}Refs" -> "Refs"; a handful of tags, seen millions of times.
_LOCAL_NAMES: dict[str, str] = {}


def _local_name(tag) -> str | None:
    if not isinstance(tag, str):
        return None
    local = tag[tag.index("}") + 1 :] if tag[0] == "{" else tag
    if len(_LOCAL_NAMES) < 10_000:  # bounded: a hostile file could invent tags
        _LOCAL_NAMES[tag] = local
    return local


def _flatten(
    element: etree._Element, stop: str | None = None
) -> tuple[dict[str, str | None], list[etree._Element]]:
    """The stripped text of the leaves under ``element`` by local path (first one wins;
    empty is None), and the ``stop`` children.

    Elements named ``stop`` (the ``TxDtls`` of an entry) are not descended into
    but returned, to be flattened on their own.
    """
    fields: dict = {}
    stopped: list[etree._Element] = []
    local_names = _LOCAL_NAMES

    def walk(el: etree._Element, prefix: str) -> None:
        for child in el:
            tag = local_names.get(child.tag)
            if tag is None:
                tag = _local_name(child.tag)
                if tag is None:
                    continue  # comments and PIs are removed by the parser; never trust it
            if tag == stop:
                stopped.append(child)
                continue
            path = prefix + tag
            if len(child):
                walk(child, path + "/")
                continue
            text = child.text
            if text is not None:
                text = text.strip() or None
            if path in _REPEATED:
                fields.setdefault(path + "[]", []).append(text)
            if path not in fields:
                fields[path] = text
                if tag == "Amt":
                    currency = child.get("Ccy")
                    fields[path + "/@Ccy"] = currency.strip() if currency else currency

    walk(element, "")
    return fields, stopped


def _field_amount(fields: dict, path: str, where: object) -> tuple[Decimal, str] | None:
    if path not in fields:
        return None
    return _amount_text(fields.get(path) or "", fields.get(path + "/@Ccy") or "", where)


def _field_date(fields: dict, path: str, where: object) -> date | None:
    """``BookgDt``/``ValDt``: a ``Dt`` or ``DtTm`` choice, as a business date in Amsterdam."""
    raw = fields.get(path + "/Dt")
    if raw is not None:
        return _parse_date(raw, where)
    raw = fields.get(path + "/DtTm")
    if raw is not None:
        moment = _parse_datetime(raw, where)
        return timezone.localtime(moment, timezone.get_default_timezone()).date()
    raw = fields.get(path)
    return _parse_date(raw, where) if raw else None


def _field_code(fields: dict) -> BankTransactionCode | None:
    code = BankTransactionCode(
        domain=fields.get("BkTxCd/Domn/Cd"),
        family=fields.get("BkTxCd/Domn/Fmly/Cd"),
        subfamily=fields.get("BkTxCd/Domn/Fmly/SubFmlyCd"),
        proprietary=fields.get("BkTxCd/Prtry/Cd"),
    )
    if not any((code.domain, code.family, code.subfamily, code.proprietary)):
        return None
    return code


def _field_lines(fields: dict, path: str) -> str | None:
    texts = [text for text in fields.get(path + "[]", ()) if text]
    return " ".join(texts) or None


def _field_party(fields: dict, role: str) -> tuple[str | None, str | None]:
    """Name and IBAN of ``Dbtr``/``Cdtr``: .02 has ``Dbtr/Nm``, .08 ``Dbtr/Pty/Nm``."""
    name = (
        fields.get(f"RltdPties/{role}/Nm")
        or fields.get(f"RltdPties/{role}/Pty/Nm")
        or fields.get(f"RltdPties/Ultmt{role}/Nm")
    )
    iban = fields.get(f"RltdPties/{role}Acct/Id/IBAN")
    return name, iban.replace(" ", "").upper() if iban else None


def _transaction(
    tx: etree._Element, *, entry: dict, own_iban: str | None, key_prefix: str, position: int
) -> Transaction:
    where = _Where(
        gettext_noop("transactie %(n)s van boeking %(ref)s"),
        n=position,
        ref=entry["reference"] or "?",
    )
    f, _nested = _flatten(tx)
    amount = (
        _field_amount(f, "Amt", where)
        or _field_amount(f, "AmtDtls/TxAmt/Amt", where)
        or _field_amount(f, "AmtDtls/InstdAmt/Amt", where)
    )
    if amount is None:
        if entry["transaction_count"] != 1:
            raise BankFileError(
                _("Bedrag ontbreekt in %(where)s.") % {"where": where}, code="bank_file_incomplete"
            )
        amount = (entry["amount"], entry["currency"])
    credit_debit = _check_credit_debit(f.get("CdtDbtInd") or entry["credit_debit"], where)

    debtor = _field_party(f, "Dbtr")
    creditor = _field_party(f, "Cdtr")
    # The counterparty is the other side of the booking: the debtor of a credit,
    # the creditor of a debit. A returned direct debit is booked as a debit but
    # still names us as creditor, so a side that is our own account is skipped.
    sides = (debtor, creditor) if credit_debit == CREDIT else (creditor, debtor)
    counterparty: tuple[str | None, str | None] = (None, None)
    for name, iban in sides:
        if (name or iban) and not (iban and own_iban and iban == own_iban):
            counterparty = (name, iban)
            break
    agent = (
        "RltdAgts/DbtrAgt/FinInstnId" if counterparty == debtor else "RltdAgts/CdtrAgt/FinInstnId"
    )
    counterparty_bic = f.get(agent + "/BIC") or f.get(agent + "/BICFI")

    end_to_end_id = _not_provided(f.get("Refs/EndToEndId"))
    account_servicer_reference = f.get("Refs/AcctSvcrRef")
    transaction_id = f.get("Refs/TxId")
    own_ref = account_servicer_reference or end_to_end_id or transaction_id
    unique_key = f"{key_prefix}|{own_ref or f'#{position}'}"

    return Transaction(
        unique_key=unique_key,
        amount=amount[0],
        currency=amount[1],
        credit_debit=credit_debit,
        end_to_end_id=end_to_end_id,
        instruction_id=f.get("Refs/InstrId"),
        transaction_id=transaction_id,
        payment_information_id=f.get("Refs/PmtInfId"),
        account_servicer_reference=account_servicer_reference,
        mandate_id=f.get("Refs/MndtId"),
        structured_reference=f.get("RmtInf/Strd/CdtrRefInf/Ref"),
        remittance_unstructured=_field_lines(f, "RmtInf/Ustrd"),
        counterparty_name=counterparty[0],
        counterparty_iban=counterparty[1],
        counterparty_bic=counterparty_bic,
        return_reason=f.get("RtrInf/Rsn/Cd") or f.get("RtrInf/Rsn/Prtry"),
        return_additional_info=_field_lines(f, "RtrInf/AddtlInf"),
        bank_transaction_code=_field_code(f) or entry["code"],
    )


def _entry(
    ntry: etree._Element, *, message_id: str, statement_id: str, own_iban: str | None, position: int
) -> Entry:
    f, tx_elements = _flatten(ntry, stop="TxDtls")
    entry_reference = f.get("NtryRef")
    servicer_reference = f.get("AcctSvcrRef")
    reference = entry_reference or servicer_reference
    where = _Where(gettext_noop("boeking %(ref)s"), ref=reference or f"#{position}")
    amount = _field_amount(f, "Amt", where)
    if amount is None:
        raise BankFileError(
            _("Bedrag ontbreekt in %(where)s.") % {"where": where}, code="bank_file_incomplete"
        )
    credit_debit = _check_credit_debit(f.get("CdtDbtInd"), where)
    # .02: <Sts>BOOK</Sts>; .08: <Sts><Cd>BOOK</Cd></Sts>.
    status = f.get("Sts/Cd") or f.get("Sts/Prtry") or f.get("Sts")
    if status is None:
        raise BankFileError(
            _("Status ontbreekt in %(where)s.") % {"where": where}, code="bank_file_incomplete"
        )
    code = _field_code(f)
    # Statement ids are unique per account only, message ids per sender; the key
    # holds both plus the entry's own reference, so the same file read twice
    # yields the same keys and two entries never share one.
    key_prefix = "|".join((message_id, own_iban or "-", statement_id, reference or f"#{position}"))
    batch_count = f.get("NtryDtls/Btch/NbOfTxs")
    entry_info = {
        "reference": reference,
        "amount": amount[0],
        "currency": amount[1],
        "credit_debit": credit_debit,
        "code": code,
        "transaction_count": len(tx_elements),
    }
    transactions = tuple(
        _transaction(tx, entry=entry_info, own_iban=own_iban, key_prefix=key_prefix, position=n)
        for n, tx in enumerate(tx_elements, start=1)
    )
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
            % {"where": where, "said": batch_count, "found": len(transactions)},
            code="bank_file_inconsistent",
        )
    reversal = (f.get("RvslInd") or "false").lower() in {"true", "1"}
    return Entry(
        unique_key=key_prefix,
        statement_id=statement_id,
        account_iban=own_iban,
        entry_reference=reference,
        account_servicer_reference=servicer_reference,
        amount=amount[0],
        currency=amount[1],
        credit_debit=credit_debit,
        reversal=reversal,
        status=status,
        booking_date=_field_date(f, "BookgDt", where),
        value_date=_field_date(f, "ValDt", where),
        bank_transaction_code=code,
        additional_info=f.get("AddtlNtryInf"),
        transactions=transactions,
        batch_message_id=f.get("NtryDtls/Btch/MsgId"),
        batch_payment_information_id=f.get("NtryDtls/Btch/PmtInfId"),
    )


def _balance(bal: etree._Element, where: object) -> Balance:
    code = _first_text(bal, "Tp/CdOrPrtry/Cd", "Tp/CdOrPrtry/Prtry") or "?"
    amount = _amount_of(bal.find("Amt"), where)
    if amount is None:
        raise BankFileError(
            _("Bedrag ontbreekt in %(where)s.") % {"where": where}, code="bank_file_incomplete"
        )
    sign = _credit_debit(bal, "CdtDbtInd", where)
    value = amount[0] if sign == CREDIT else -amount[0]
    return Balance(code=code, amount=value, currency=amount[1], date=_date(bal.find("Dt"), where))


def _statements(body: etree._Element, message_id: str, tag: str) -> tuple[Statement, ...]:
    statements = []
    for stmt in body.findall(tag):
        statement_id = _required(stmt, "Id", tag)
        where = _Where(gettext_noop("afschrift %(id)s"), id=statement_id)
        own_iban = _iban(stmt, "Acct/Id/IBAN")
        created = _text(stmt, "CreDtTm")
        entries = tuple(
            _entry(
                ntry,
                message_id=message_id,
                statement_id=statement_id,
                own_iban=own_iban,
                position=n,
            )
            for n, ntry in enumerate(stmt.findall("Ntry"), start=1)
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
                balances=tuple(_balance(bal, where) for bal in stmt.findall("Bal")),
                entries=entries,
            )
        )
    return tuple(statements)


# --- pain.002 ----------------------------------------------------------------------


def _reason(el: etree._Element | None) -> tuple[str | None, str | None]:
    if el is None:
        return None, None
    info = el.find("StsRsnInf")
    if info is None:
        return None, None
    code = _first_text(info, "Rsn/Cd", "Rsn/Prtry")
    extra = [t.text.strip() for t in info.findall("AddtlInf") if t.text and t.text.strip()]
    return code, " ".join(extra) or None


def _status_report(body: etree._Element, message_id: str) -> StatusReport:
    group = body.find("OrgnlGrpInfAndSts")
    if group is None:
        raise BankFileError(
            _("Verplicht veld OrgnlGrpInfAndSts ontbreekt in het statusrapport."),
            code="bank_file_incomplete",
        )
    original_message_id = _required(group, "OrgnlMsgId", "OrgnlGrpInfAndSts")
    group_status = _text(group, "GrpSts")
    group_reason, _extra = _reason(group)
    items = []
    for pmt in body.findall("OrgnlPmtInfAndSts"):
        pmt_id = _text(pmt, "OrgnlPmtInfId")
        pmt_status = _text(pmt, "PmtInfSts")
        pmt_reason, pmt_extra = _reason(pmt)
        for n, tx in enumerate(pmt.findall("TxInfAndSts"), start=1):
            where = _Where(gettext_noop("transactie %(n)s van %(id)s"), n=n, id=pmt_id or "?")
            reason, extra = _reason(tx)
            ref = tx.find("OrgnlTxRef")
            amount = _amount_of(ref.find("Amt/InstdAmt") if ref is not None else None, where)
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
                        ref.find("ReqdColltnDt") if ref is not None else None, where
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


def _strip_namespaces(root: etree._Element, *, keep: frozenset[str] = frozenset()) -> None:
    """Reduce tags to local names; below an element named in ``keep`` only that element.

    Entries (``Ntry``) keep their namespaced descendants: ``_Node`` reads them by
    local name, which saves renaming millions of elements in a large statement.
    """
    stack = [root]
    while stack:
        el = stack.pop()
        tag = el.tag
        if tag[0] == "{":
            tag = tag.partition("}")[2]
            el.tag = tag
        if tag not in keep:
            stack.extend(el.iterchildren(etree.Element))
    etree.cleanup_namespaces(root)


def parse_bank_file(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> BankFile:
    """Parse a camt.053, camt.054 or pain.002 file; ``BankFileError`` when refused."""
    root = parse_untrusted_xml(data, max_bytes=max_bytes)
    kind, version = detect(root)
    _strip_namespaces(root, keep=frozenset() if kind is BankFileKind.PAIN002 else _ENTRY_TAGS)
    body = root[0]
    header = body.find("GrpHdr")
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
