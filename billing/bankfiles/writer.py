"""Bank files written from Python data: camt.053, camt.054 and pain.002 (ISO 20022).

A bank simulator: the hand-written samples under tests/billing/data/bankfiles
prove the parser; these builders make the files that tests, the benchmark and
the demo need, up to the hundred thousand, with the same shapes (see that
folder's README.md for the version differences). Never used on real money:
nothing in the product imports it outside the demo command.

    camt053(entries=[collection("2027-000001-1", "121.00"),
                     debit_return("2027-000002-1", "60.50", "AM04"),
                     transfer("50.00", name="Bakkerij B.V.", remittance="Factuur 2027-000003")])
    pain002(items=[status("2027-000004-1", "RJCT", reason="MS03")],
            original_message_id="SB-DD-20270304-FRST")

Every file gets a fresh message id unless one is given, so two generated files
never share a checksum or an entry key. Strings are built directly (no lxml):
100 000 entries take about a second.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

OWN_IBAN = "NL91ABNA0417164300"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
OWN_NAME = "AFAS Software B.V."
DEFAULT_DAY = date(2027, 3, 4)

COLLECTED = ("PMNT", "RDDT", "ESDD")
RETURNED = ("PMNT", "RDDT", "UPDD")
TRANSFER = ("PMNT", "RCDT", "ESCT")

_servicer_refs = itertools.count(1)


def _money(value: Decimal | str | int) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Tx:
    """One ``TxDtls``: a debit collected or returned, or a transfer received."""

    amount: Decimal
    credit: bool = True
    end_to_end_id: str | None = None
    mandate_id: str | None = None
    payment_information_id: str | None = None
    name: str | None = None
    iban: str | None = None
    bic: str | None = None
    structured_reference: str | None = None
    remittance: str | None = None
    return_reason: str | None = None
    return_info: str | None = None
    servicer_reference: str | None = None


@dataclass(frozen=True)
class Ntry:
    """One booking; without ``transactions`` it is a batch or plain booking without details."""

    amount: Decimal
    credit: bool = True
    code: tuple[str, str, str] | None = COLLECTED
    status: str = "BOOK"
    booking_date: date = DEFAULT_DAY
    transactions: tuple[Tx, ...] = ()
    reference: str | None = None
    servicer_reference: str | None = None
    batch_message_id: str | None = None
    batch_payment_information_id: str | None = None
    batch_count: int | None = None
    additional_info: str | None = None
    reversal: bool = False


@dataclass(frozen=True)
class Status:
    """One ``TxInfAndSts`` of a pain.002."""

    end_to_end_id: str
    status: str
    reason: str | None = None
    info: str | None = None
    amount: Decimal | None = None
    mandate_id: str | None = None
    name: str = "Klant"
    iban: str = "NL02RABO0123456789"
    collection_date: date = DEFAULT_DAY
    status_id: str | None = None


@dataclass
class _Writer:
    version: str  # "02"/"08" (camt) or "03"/"10" (pain.002)
    parts: list[str] = field(default_factory=list)

    @property
    def new_shape(self) -> bool:
        return self.version in {"08", "10"}

    def add(self, *texts: str) -> None:
        self.parts.extend(texts)

    def el(self, tag: str, value: object | None, indent: str) -> None:
        if value is not None:
            self.parts.append(f"{indent}<{tag}>{escape(str(value))}</{tag}>\n")

    def name(self, role: str, value: str | None, indent: str) -> None:
        if value is None:
            return
        if self.new_shape:
            self.parts.append(f"{indent}<{role}><Pty><Nm>{escape(value)}</Nm></Pty></{role}>\n")
        else:
            self.parts.append(f"{indent}<{role}><Nm>{escape(value)}</Nm></{role}>\n")

    def bic(self, role: str, value: str | None, indent: str) -> None:
        if value is None:
            return
        tag = "BICFI" if self.new_shape else "BIC"
        self.parts.append(
            f"{indent}<{role}><FinInstnId><{tag}>{value}</{tag}></FinInstnId></{role}>\n"
        )

    def bytes(self) -> bytes:
        return "".join(self.parts).encode("utf-8")


# --- entries ---------------------------------------------------------------------------


def collection(
    end_to_end_id: str,
    amount: Decimal | str,
    *,
    name: str = "Klant",
    iban: str = "NL02RABO0123456789",
    mandate_id: str | None = None,
    booking_date: date = DEFAULT_DAY,
    payment_information_id: str | None = None,
    status: str = "BOOK",
) -> Ntry:
    """A collected SEPA direct debit booked on its own (PMNT/RDDT/ESDD, credit)."""
    amount = _money(amount)
    tx = Tx(
        amount=amount,
        end_to_end_id=end_to_end_id,
        mandate_id=mandate_id,
        payment_information_id=payment_information_id,
        name=name,
        iban=iban,
        bic="RABONL2U",
        remittance=f"Incasso {end_to_end_id}",
    )
    return Ntry(
        amount=amount,
        code=COLLECTED,
        booking_date=booking_date,
        transactions=(tx,),
        status=status,
    )


def batch_collection(
    debits: Sequence[tuple[str, Decimal | str]],
    *,
    message_id: str,
    payment_information_id: str | None = None,
    with_details: bool = True,
    booking_date: date = DEFAULT_DAY,
) -> Ntry:
    """A pain.008 batch booked as one credit; ``with_details=False`` leaves out the TxDtls."""
    total = sum((_money(amount) for _e2e, amount in debits), Decimal("0.00"))
    pmt_id = payment_information_id or message_id
    transactions = ()
    if with_details:
        transactions = tuple(
            Tx(
                amount=_money(amount),
                end_to_end_id=e2e,
                payment_information_id=pmt_id,
                name="Klant",
                iban="NL02RABO0123456789",
            )
            for e2e, amount in debits
        )
    return Ntry(
        amount=total,
        code=COLLECTED,
        booking_date=booking_date,
        transactions=transactions,
        batch_message_id=message_id,
        batch_payment_information_id=pmt_id,
        batch_count=len(debits),
    )


def debit_return(
    end_to_end_id: str,
    amount: Decimal | str,
    reason: str | None,
    *,
    info: str | None = None,
    name: str = "Klant",
    mandate_id: str | None = None,
    booking_date: date = DEFAULT_DAY,
) -> Ntry:
    """A returned, refused or refunded direct debit (PMNT/RDDT/UPDD, debit) with its reason."""
    amount = _money(amount)
    tx = Tx(
        amount=amount,
        credit=False,
        end_to_end_id=end_to_end_id,
        mandate_id=mandate_id,
        name=name,
        iban="NL02RABO0123456789",
        return_reason=reason,
        return_info=info,
    )
    return Ntry(
        amount=amount,
        credit=False,
        code=RETURNED,
        booking_date=booking_date,
        transactions=(tx,),
    )


def transfer(
    amount: Decimal | str,
    *,
    name: str | None = "Klant",
    iban: str | None = "NL44RABO0123456788",
    remittance: str | None = None,
    structured_reference: str | None = None,
    booking_date: date = DEFAULT_DAY,
    credit: bool = True,
    with_details: bool = True,
) -> Ntry:
    """An incoming SEPA credit transfer (PMNT/RCDT/ESCT); ``credit=False`` an outgoing one."""
    amount = _money(amount)
    code = TRANSFER if credit else ("PMNT", "ICDT", "ESCT")
    if not with_details:
        return Ntry(
            amount=amount,
            credit=credit,
            code=code,
            booking_date=booking_date,
            additional_info=remittance,
        )
    tx = Tx(
        amount=amount,
        credit=credit,
        name=name,
        iban=iban,
        bic="RABONL2U",
        remittance=remittance,
        structured_reference=structured_reference,
    )
    return Ntry(
        amount=amount,
        credit=credit,
        code=code,
        booking_date=booking_date,
        transactions=(tx,),
    )


def status(end_to_end_id: str, code: str, *, reason: str | None = None, **fields) -> Status:
    """A pain.002 verdict on one debit: RJCT with a reason, or ACCP/ACSC/ACTC/PDNG."""
    return Status(end_to_end_id=end_to_end_id, status=code, reason=reason, **fields)


# --- camt.053 / camt.054 -----------------------------------------------------------------


def _write_tx(w: _Writer, tx: Tx, position: str) -> None:
    ind = "            "
    w.add(f"{ind}<TxDtls>\n", f"{ind}  <Refs>\n")
    w.el("AcctSvcrRef", tx.servicer_reference or f"{position}-TX", ind + "    ")
    w.el("PmtInfId", tx.payment_information_id, ind + "    ")
    w.el("EndToEndId", tx.end_to_end_id or "NOTPROVIDED", ind + "    ")
    w.el("MndtId", tx.mandate_id, ind + "    ")
    w.add(f"{ind}  </Refs>\n")
    if w.new_shape:
        w.add(f'{ind}  <Amt Ccy="EUR">{tx.amount}</Amt>\n')
        w.el("CdtDbtInd", "CRDT" if tx.credit else "DBIT", ind + "  ")
    else:
        w.add(f'{ind}  <AmtDtls><TxAmt><Amt Ccy="EUR">{tx.amount}</Amt></TxAmt></AmtDtls>\n')
    # The other party and us: the debtor pays a credit, we (creditor) pay a debit.
    other_role, own_role = ("Dbtr", "Cdtr") if tx.credit else ("Cdtr", "Dbtr")
    if tx.return_reason is not None or (not tx.credit and tx.end_to_end_id):
        # A returned direct debit still names the debtor as debtor and us as creditor.
        other_role, own_role = "Dbtr", "Cdtr"
    w.add(f"{ind}  <RltdPties>\n")
    w.name(other_role, tx.name, ind + "    ")
    if tx.iban:
        w.add(f"{ind}    <{other_role}Acct><Id><IBAN>{tx.iban}</IBAN></Id></{other_role}Acct>\n")
    w.name(own_role, OWN_NAME, ind + "    ")
    w.add(f"{ind}    <{own_role}Acct><Id><IBAN>{OWN_IBAN}</IBAN></Id></{own_role}Acct>\n")
    w.add(f"{ind}  </RltdPties>\n")
    if tx.bic:
        w.add(f"{ind}  <RltdAgts>\n")
        w.bic(f"{other_role}Agt", tx.bic, ind + "    ")
        w.add(f"{ind}  </RltdAgts>\n")
    if tx.remittance or tx.structured_reference:
        w.add(f"{ind}  <RmtInf>\n")
        if tx.remittance:
            w.el("Ustrd", tx.remittance[:140], ind + "    ")
        if tx.structured_reference:
            w.add(
                f"{ind}    <Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry>"
                f"<Issr>CUR</Issr></Tp><Ref>{escape(tx.structured_reference)}</Ref>"
                f"</CdtrRefInf></Strd>\n"
            )
        w.add(f"{ind}  </RmtInf>\n")
    if tx.return_reason is not None:
        w.add(f"{ind}  <RtrInf>\n", f"{ind}    <Rsn><Cd>{escape(tx.return_reason)}</Cd></Rsn>\n")
        w.el("AddtlInf", tx.return_info, ind + "    ")
        w.add(f"{ind}  </RtrInf>\n")
    w.add(f"{ind}</TxDtls>\n")


def _write_entry(w: _Writer, entry: Ntry, position: int, message_id: str) -> None:
    ind = "      "
    reference = entry.reference or f"E{position}"
    servicer = entry.servicer_reference or f"{message_id[-12:]}-{next(_servicer_refs)}"
    w.add(f"{ind}<Ntry>\n")
    w.el("NtryRef", reference, ind + "  ")
    w.add(f'{ind}  <Amt Ccy="EUR">{_money(entry.amount)}</Amt>\n')
    w.el("CdtDbtInd", "CRDT" if entry.credit else "DBIT", ind + "  ")
    if entry.reversal:
        w.el("RvslInd", "true", ind + "  ")
    if w.new_shape:
        w.add(f"{ind}  <Sts><Cd>{entry.status}</Cd></Sts>\n")
    else:
        w.el("Sts", entry.status, ind + "  ")
    day = entry.booking_date.isoformat()
    w.add(f"{ind}  <BookgDt><Dt>{day}</Dt></BookgDt>\n", f"{ind}  <ValDt><Dt>{day}</Dt></ValDt>\n")
    w.el("AcctSvcrRef", servicer, ind + "  ")
    if entry.code:
        domain, family, subfamily = entry.code
        w.add(
            f"{ind}  <BkTxCd><Domn><Cd>{domain}</Cd><Fmly><Cd>{family}</Cd>"
            f"<SubFmlyCd>{subfamily}</SubFmlyCd></Fmly></Domn></BkTxCd>\n"
        )
    batch = entry.batch_message_id or entry.batch_payment_information_id
    if entry.transactions or batch:
        w.add(f"{ind}  <NtryDtls>\n")
        if batch:
            w.add(f"{ind}    <Btch>\n")
            w.el("MsgId", entry.batch_message_id, ind + "      ")
            w.el("PmtInfId", entry.batch_payment_information_id, ind + "      ")
            w.el("NbOfTxs", entry.batch_count, ind + "      ")
            w.add(f'{ind}      <TtlAmt Ccy="EUR">{_money(entry.amount)}</TtlAmt>\n')
            w.el("CdtDbtInd", "CRDT" if entry.credit else "DBIT", ind + "      ")
            w.add(f"{ind}    </Btch>\n")
        for n, tx in enumerate(entry.transactions, start=1):
            _write_tx(w, tx, f"{servicer}-{n}")
        w.add(f"{ind}  </NtryDtls>\n")
    w.el("AddtlNtryInf", entry.additional_info, ind + "  ")
    w.add(f"{ind}</Ntry>\n")


def _camt(
    *,
    message: str,
    body_tag: str,
    statement_tag: str,
    entries: Iterable[Ntry],
    version: str,
    message_id: str | None,
    statement_id: str | None,
    own_iban: str,
    created: datetime | None,
    balances: bool,
) -> bytes:
    if version not in {"02", "08"}:
        raise ValueError("camt version is '02' or '08'")
    entries = list(entries)
    message_id = message_id or f"SB-TEST-{uuid.uuid4().hex[:24]}"
    created = created or datetime(2027, 3, 5, 6, 15, tzinfo=AMSTERDAM)
    w = _Writer(version=version)
    w.add(
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{message}.001.{version}">\n',
        f"  <{body_tag}>\n",
        "    <GrpHdr>\n",
    )
    w.el("MsgId", message_id, "      ")
    w.el("CreDtTm", created.isoformat(timespec="seconds"), "      ")
    w.add("    </GrpHdr>\n", f"    <{statement_tag}>\n")
    w.el("Id", statement_id or f"{message_id}-1", "      ")
    w.el("CreDtTm", created.isoformat(timespec="seconds"), "      ")
    w.add(
        f"      <Acct><Id><IBAN>{own_iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>\n",
    )
    if balances:
        opening = Decimal("1000.00")
        closing = opening + sum(
            (e.amount if e.credit else -e.amount for e in entries if e.status == "BOOK"),
            Decimal("0.00"),
        )
        day = entries[0].booking_date if entries else DEFAULT_DAY
        for code, amount in (("OPBD", opening), ("CLBD", closing)):
            w.add(
                f"      <Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
                f'<Amt Ccy="EUR">{abs(amount):.2f}</Amt>'
                f"<CdtDbtInd>{'CRDT' if amount >= 0 else 'DBIT'}</CdtDbtInd>"
                f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>\n"
            )
    for position, entry in enumerate(entries, start=1):
        _write_entry(w, entry, position, message_id)
    w.add(f"    </{statement_tag}>\n", f"  </{body_tag}>\n", "</Document>\n")
    return w.bytes()


def camt053(
    entries: Iterable[Ntry] = (),
    *,
    version: str = "02",
    message_id: str | None = None,
    statement_id: str | None = None,
    own_iban: str = OWN_IBAN,
    created: datetime | None = None,
) -> bytes:
    """A bank statement (camt.053.001.02 or .08) with these entries, balances included."""
    return _camt(
        message="camt.053",
        body_tag="BkToCstmrStmt",
        statement_tag="Stmt",
        entries=entries,
        version=version,
        message_id=message_id,
        statement_id=statement_id,
        own_iban=own_iban,
        created=created,
        balances=True,
    )


def camt054(
    entries: Iterable[Ntry] = (),
    *,
    version: str = "02",
    message_id: str | None = None,
    statement_id: str | None = None,
    own_iban: str = OWN_IBAN,
    created: datetime | None = None,
) -> bytes:
    """A debit/credit notification (camt.054.001.02 or .08): same entries, no balances."""
    return _camt(
        message="camt.054",
        body_tag="BkToCstmrDbtCdtNtfctn",
        statement_tag="Ntfctn",
        entries=entries,
        version=version,
        message_id=message_id,
        statement_id=statement_id,
        own_iban=own_iban,
        created=created,
        balances=False,
    )


# --- pain.002 ------------------------------------------------------------------------------


def pain002(
    items: Iterable[Status] = (),
    *,
    original_message_id: str,
    payment_information_id: str | None = None,
    version: str = "03",
    message_id: str | None = None,
    group_status: str | None = None,
    group_reason: str | None = None,
    payment_status: str | None = None,
    created: datetime | None = None,
) -> bytes:
    """A status report (pain.002.001.03 or .10) on the pain.008 ``original_message_id``.

    Without items it reports on the whole file (``group_status``, e.g. RJCT with FF01).
    """
    if version not in {"03", "10"}:
        raise ValueError("pain.002 version is '03' or '10'")
    items = list(items)
    message_id = message_id or f"SB-PSR-{uuid.uuid4().hex[:24]}"
    created = created or datetime(2027, 3, 3, 14, 2, 11, tzinfo=AMSTERDAM)
    w = _Writer(version=version)
    w.add(
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.{version}">\n',
        "  <CstmrPmtStsRpt>\n",
        "    <GrpHdr>\n",
    )
    w.el("MsgId", message_id, "      ")
    w.el("CreDtTm", created.isoformat(timespec="seconds"), "      ")
    w.bic("DbtrAgt", "ABNANL2A", "      ")
    w.add("    </GrpHdr>\n", "    <OrgnlGrpInfAndSts>\n")
    w.el("OrgnlMsgId", original_message_id, "      ")
    w.el("OrgnlMsgNmId", "pain.008.001.08" if w.new_shape else "pain.008.001.02", "      ")
    w.el("OrgnlNbOfTxs", len(items) or None, "      ")
    w.el("GrpSts", group_status, "      ")
    if group_reason:
        w.add(f"      <StsRsnInf><Rsn><Cd>{escape(group_reason)}</Cd></Rsn></StsRsnInf>\n")
    w.add("    </OrgnlGrpInfAndSts>\n")
    if items or payment_information_id:
        w.add("    <OrgnlPmtInfAndSts>\n")
        w.el("OrgnlPmtInfId", payment_information_id or original_message_id, "      ")
        w.el("PmtInfSts", payment_status, "      ")
        for n, item in enumerate(items, start=1):
            _write_status(w, item, f"{message_id[-12:]}-{n}")
        w.add("    </OrgnlPmtInfAndSts>\n")
    w.add("  </CstmrPmtStsRpt>\n", "</Document>\n")
    return w.bytes()


def _write_status(w: _Writer, item: Status, status_id: str) -> None:
    ind = "      "
    w.add(f"{ind}<TxInfAndSts>\n")
    w.el("StsId", item.status_id or status_id, ind + "  ")
    w.el("OrgnlEndToEndId", item.end_to_end_id, ind + "  ")
    w.el("TxSts", item.status, ind + "  ")
    if item.reason:
        w.add(f"{ind}  <StsRsnInf>\n", f"{ind}    <Rsn><Cd>{escape(item.reason)}</Cd></Rsn>\n")
        w.el("AddtlInf", item.info, ind + "    ")
        w.add(f"{ind}  </StsRsnInf>\n")
    w.add(f"{ind}  <OrgnlTxRef>\n")
    if item.amount is not None:
        w.add(f'{ind}    <Amt><InstdAmt Ccy="EUR">{_money(item.amount)}</InstdAmt></Amt>\n')
    w.el("ReqdColltnDt", item.collection_date.isoformat(), ind + "    ")
    if item.mandate_id:
        w.add(f"{ind}    <MndtRltdInf><MndtId>{escape(item.mandate_id)}</MndtId></MndtRltdInf>\n")
    w.name("Dbtr", item.name, ind + "    ")
    w.add(f"{ind}    <DbtrAcct><Id><IBAN>{item.iban}</IBAN></Id></DbtrAcct>\n")
    w.add(f"{ind}  </OrgnlTxRef>\n", f"{ind}</TxInfAndSts>\n")
