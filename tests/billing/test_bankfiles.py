"""Bank files (issue 5 part 3): safe XML and the camt.053/camt.054/pain.002 parser.

Pure parsing: no database. The sample files under data/bankfiles were written by
hand to the ISO 20022 standard (see the README there).
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from billing.bankfiles import (
    CREDIT,
    DEBIT,
    BankFile,
    BankFileError,
    BankFileKind,
    PaymentInformationStatus,
    entries,
    parse_bank_file,
    parse_untrusted_xml,
    safe_xml,
    writer,
)

DATA = Path(__file__).parent / "data" / "bankfiles"
OWN_IBAN = "NL91ABNA0417164300"


def load(name: str) -> BankFile:
    return parse_bank_file((DATA / name).read_bytes())


def assert_refused(data: bytes, *fragments: str, **kwargs) -> BankFileError:
    with pytest.raises(BankFileError) as caught:
        parse_bank_file(data, **kwargs)
    message = caught.value.message
    # One clear Dutch line, never a traceback or a libxml2 message.
    assert message == str(caught.value)
    assert "\n" not in message
    assert "Traceback" not in message
    assert "lxml" not in message.lower()
    for fragment in fragments:
        assert fragment in message
    return caught.value


def without_message_id(value, message_id: str):
    """A dataclass tree as plain data, with the message id taken out of every key."""
    if dataclasses.is_dataclass(value):
        return {
            field.name: without_message_id(getattr(value, field.name), message_id)
            for field in dataclasses.fields(value)
        }
    if isinstance(value, tuple | list):
        return [without_message_id(item, message_id) for item in value]
    if isinstance(value, str):
        return value.replace(message_id, "<msgid>")
    return value


# --- camt.053 -----------------------------------------------------------------------


def test_camt053_v02_detected_with_header():
    bank_file = load("camt053_001_02.xml")

    assert bank_file.kind is BankFileKind.CAMT053
    assert bank_file.version == "camt.053.001.02"
    assert bank_file.message_id == "STMT-20260305-001"
    assert bank_file.created_at.isoformat() == "2026-03-05T06:15:00+01:00"
    assert bank_file.status_report is None
    (statement,) = bank_file.statements
    assert statement.account_iban == OWN_IBAN
    assert statement.account_currency == "EUR"
    assert [entry.entry_reference for entry in bank_file.entries] == ["E1", "E2", "E3", "E4"]


def test_camt053_collected_direct_debit_batch_has_each_debit():
    batch = load("camt053_001_02.xml").entries[0]

    assert batch.credit_debit == CREDIT
    assert batch.amount == Decimal("423.50")
    assert batch.currency == "EUR"
    assert batch.status == "BOOK"
    assert batch.is_booked
    assert batch.reversal is False
    assert batch.booking_date == date(2026, 3, 4)
    assert batch.value_date == date(2026, 3, 4)
    assert batch.account_servicer_reference == "ABN-SDD-0001"
    code = batch.bank_transaction_code
    assert (code.domain, code.family, code.subfamily) == ("PMNT", "RDDT", "ESDD")
    assert code.proprietary == "N010"
    assert code.is_direct_debit and not code.is_return
    assert [t.end_to_end_id for t in batch.transactions] == [
        "SB-2026-000101",
        "SB-2026-000102",
        "SB-2026-000103",
    ]
    first = batch.transactions[0]
    assert first.amount == Decimal("121.00")
    assert first.credit_debit == CREDIT
    assert first.mandate_id == "SB-MANDATE-0001"
    assert first.payment_information_id == "SB-DD-20260304-FRST-1"
    assert first.remittance_unstructured == "Factuur 2026-000101"
    # The payer is the counterparty of a collected debit, never our own account.
    assert first.counterparty_name == "Bakkerij De Gouden Korst"
    assert first.counterparty_iban == "NL02RABO0123456789"
    assert first.counterparty_bic == "RABONL2U"
    assert first.return_reason is None
    assert first.bank_transaction_code == code


def test_camt053_incoming_transfer_with_structured_reference():
    transfer = load("camt053_001_02.xml").entries[1]

    code = transfer.bank_transaction_code
    assert (code.domain, code.family, code.subfamily) == ("PMNT", "RCDT", "ESCT")
    (tx,) = transfer.transactions
    assert tx.structured_reference == "5000001234567890"
    assert tx.remittance_unstructured is None
    assert tx.end_to_end_id is None  # NOTPROVIDED is the standard's "absent"
    assert tx.amount == Decimal("150.00")
    assert tx.counterparty_name == "Administratiekantoor Telling"
    assert tx.counterparty_iban == "NL44RABO0123456788"


@pytest.mark.parametrize(
    ("position", "reason", "end_to_end_id", "amount"),
    [(2, "AM04", "SB-2026-000102", "60.50"), (3, "MD06", "SB-2026-000103", "242.00")],
)
def test_camt053_returned_direct_debit_keeps_reason(position, reason, end_to_end_id, amount):
    entry = load("camt053_001_02.xml").entries[position]

    assert entry.credit_debit == DEBIT
    assert entry.signed_amount == -Decimal(amount)
    assert entry.bank_transaction_code.subfamily == "UPDD"
    assert entry.bank_transaction_code.is_return
    (tx,) = entry.transactions
    assert tx.return_reason == reason
    assert tx.end_to_end_id == end_to_end_id
    assert tx.credit_debit == DEBIT
    # A return names us as creditor; the counterparty is still the customer.
    assert tx.counterparty_iban != OWN_IBAN
    assert tx.counterparty_name in {"Kapsalon Knip", "Fietsen Van Dam"}


def test_camt053_am04_return_carries_additional_info():
    (tx,) = load("camt053_001_02.xml").entries[2].transactions
    assert tx.return_additional_info == "Onvoldoende saldo"
    assert tx.mandate_id == "SB-MANDATE-0002"


def test_camt053_v08_parses_equal_to_v02_apart_from_message_id():
    v02 = load("camt053_001_02.xml")
    v08 = load("camt053_001_08.xml")

    assert v08.version == "camt.053.001.08"
    assert v08.message_id != v02.message_id
    assert without_message_id(v08.statements, v08.message_id) == without_message_id(
        v02.statements, v02.message_id
    )
    assert v08.created_at == v02.created_at


def test_camt053_amounts_are_decimal_and_sum_correctly():
    bank_file = load("camt053_001_02.xml")
    (statement,) = bank_file.statements

    for entry in bank_file.entries:
        assert type(entry.amount) is Decimal
        assert all(type(tx.amount) is Decimal for tx in entry.transactions)
        # A batch booking is the exact sum of its debits.
        assert sum((tx.amount for tx in entry.transactions), Decimal(0)) == entry.amount
    movement = sum((entry.signed_amount for entry in bank_file.entries), Decimal(0))
    opening = statement.balance("OPBD").amount
    closing = statement.balance("CLBD").amount
    assert opening + movement == closing == Decimal("1271.00")


def test_camt053_unique_keys_are_stable_and_distinct():
    first = load("camt053_001_02.xml")
    again = load("camt053_001_02.xml")

    entry_keys = [entry.unique_key for entry in first.entries]
    tx_keys = [tx.unique_key for entry in first.entries for tx in entry.transactions]
    assert entry_keys == [entry.unique_key for entry in again.entries]
    assert len(set(entry_keys)) == len(entry_keys) == 4
    assert len(set(tx_keys)) == len(tx_keys) == 6
    assert all(first.message_id in key and OWN_IBAN in key for key in entry_keys + tx_keys)
    assert first.entries[0].unique_key.endswith("|E1")


def test_camt053_dataclasses_are_frozen():
    entry = load("camt053_001_02.xml").entries[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.amount = Decimal("1.00")


# --- camt.054 -----------------------------------------------------------------------


def test_camt054_return_ac04():
    bank_file = load("camt054_001_02.xml")

    assert bank_file.kind is BankFileKind.CAMT054
    assert bank_file.message_id == "NTFCTN-20260306-001"
    (statement,) = bank_file.statements
    assert statement.statement_id == "NTF-2026-03-06-0001"
    assert statement.balances == ()
    (entry,) = bank_file.entries
    assert entry.credit_debit == DEBIT
    assert entry.amount == Decimal("121.00")
    (tx,) = entry.transactions
    assert tx.return_reason == "AC04"
    assert tx.return_additional_info == "Rekening opgeheven"
    assert tx.end_to_end_id == "SB-2026-000101"
    assert tx.mandate_id == "SB-MANDATE-0001"
    assert tx.counterparty_iban == "NL02RABO0123456789"


def test_camt054_v08_namespace_is_accepted():
    data = (
        (DATA / "camt054_001_02.xml").read_bytes().replace(b"camt.054.001.02", b"camt.054.001.08")
    )
    bank_file = parse_bank_file(data)
    assert bank_file.version == "camt.054.001.08"
    assert bank_file.entries[0].transactions[0].return_reason == "AC04"


# --- pain.002 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version"),
    [("pain002_001_03.xml", "pain.002.001.03"), ("pain002_001_10.xml", "pain.002.001.10")],
)
def test_pain002_rejected_and_accepted_transactions(name, version):
    bank_file = load(name)

    assert bank_file.kind is BankFileKind.PAIN002
    assert bank_file.version == version
    assert bank_file.statements == ()
    assert bank_file.entries == ()
    report = bank_file.status_report
    assert report.original_message_id == "SB-DD-20260304-FRST"
    assert report.group_status == "PART"
    rejected, accepted = report.items
    assert rejected.original_end_to_end_id == "SB-2026-000104"
    assert rejected.status == "RJCT"
    assert rejected.reason_code == "MS03"
    assert rejected.amount == Decimal("60.50")
    assert rejected.currency == "EUR"
    assert rejected.mandate_id == "SB-MANDATE-0004"
    assert rejected.debtor_name == "Kapsalon Knip"
    assert rejected.debtor_iban == "NL18INGB0001234567"
    assert rejected.requested_collection_date == date(2026, 3, 4)
    assert rejected.original_payment_information_id == "SB-DD-20260304-FRST-1"
    assert accepted.original_end_to_end_id == "SB-2026-000105"
    assert accepted.status == "ACCP"
    assert accepted.reason_code is None
    assert rejected.unique_key != accepted.unique_key


def test_pain002_versions_parse_equal_apart_from_message_id():
    v03 = load("pain002_001_03.xml")
    v10 = load("pain002_001_10.xml")
    a = without_message_id(v03.status_report, v03.message_id)
    b = without_message_id(v10.status_report, v10.message_id)
    assert a.pop("original_message_type") == "pain.008.001.02"
    assert b.pop("original_message_type") == "pain.008.001.08"
    assert a == b


def test_pain002_group_rejection_without_transactions():
    data = b"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>
<GrpHdr><MsgId>PSR-X</MsgId><CreDtTm>2026-03-03T14:02:11Z</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>SB-DD-1</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.02</OrgnlMsgNmId>
<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>FF01</Cd></Rsn></StsRsnInf></OrgnlGrpInfAndSts>
</CstmrPmtStsRpt></Document>"""
    report = parse_bank_file(data).status_report
    assert (report.group_status, report.group_reason_code, report.items) == ("RJCT", "FF01", ())
    assert report.payment_information == ()


def pain002_blocks(version: str) -> bytes:
    """A pain.002 on one pain.008 of three blocks: one refused without lines, one
    accepted, one refused with a line of its own."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.{version}"><CstmrPmtStsRpt>
  <GrpHdr><MsgId>PSR-B</MsgId><CreDtTm>2027-03-03T14:02:11</CreDtTm></GrpHdr>
  <OrgnlGrpInfAndSts><OrgnlMsgId>SB-DD-1</OrgnlMsgId><GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>
  <OrgnlPmtInfAndSts>
    <OrgnlPmtInfId>SB-DD-1-FRST</OrgnlPmtInfId>
    <PmtInfSts>rjct</PmtInfSts>
    <StsRsnInf>
      <Rsn><Cd>AM04</Cd></Rsn>
      <AddtlInf>Onvoldoende saldo</AddtlInf>
      <AddtlInf> op de rekening </AddtlInf>
    </StsRsnInf>
  </OrgnlPmtInfAndSts>
  <OrgnlPmtInfAndSts>
    <OrgnlPmtInfId>SB-DD-1-RCUR</OrgnlPmtInfId>
    <PmtInfSts>ACCP</PmtInfSts>
  </OrgnlPmtInfAndSts>
  <OrgnlPmtInfAndSts>
    <OrgnlPmtInfId>SB-DD-1-RCUR-2</OrgnlPmtInfId>
    <PmtInfSts>RJCT</PmtInfSts>
    <StsRsnInf><Rsn><Prtry>X99</Prtry></Rsn></StsRsnInf>
    <TxInfAndSts><StsId>S-1</StsId><OrgnlEndToEndId>SB-2027-000001</OrgnlEndToEndId></TxInfAndSts>
  </OrgnlPmtInfAndSts>
</CstmrPmtStsRpt></Document>""".encode()


@pytest.mark.parametrize("version", ["03", "10"])
def test_pain002_payment_information_statuses_per_block(version):
    report = parse_bank_file(pain002_blocks(version)).status_report

    refused, accepted, with_lines = report.payment_information
    assert refused == PaymentInformationStatus(
        id="SB-DD-1-FRST",
        status="RJCT",
        reason_code="AM04",
        reason_info="Onvoldoende saldo op de rekening",
        transaction_count=0,
    )
    assert accepted == PaymentInformationStatus(
        id="SB-DD-1-RCUR",
        status="ACCP",
        reason_code=None,
        reason_info=None,
        transaction_count=0,
    )
    assert with_lines == PaymentInformationStatus(
        id="SB-DD-1-RCUR-2",
        status="RJCT",
        reason_code="X99",
        reason_info=None,
        transaction_count=1,
    )
    # Only a refused block without lines of its own refuses its debits as a whole.
    assert [block.is_rejected_without_lines for block in report.payment_information] == [
        True,
        False,
        False,
    ]
    # The line inherits its block's status and reason.
    (item,) = report.items
    assert (item.original_payment_information_id, item.status, item.reason_code) == (
        "SB-DD-1-RCUR-2",
        "RJCT",
        "X99",
    )


@pytest.mark.parametrize("version", ["03", "10"])
def test_pain002_payment_information_from_the_writer(version):
    accepted = parse_bank_file(
        writer.pain002(
            original_message_id="SB-DD-2",
            payment_information_id="SB-DD-2-FRST",
            payment_status="ACCP",
            version=version,
        )
    ).status_report
    refused = parse_bank_file(
        writer.pain002(
            [writer.Status("SB-2027-000002", "RJCT", reason="MS03")],
            original_message_id="SB-DD-3",
            payment_status="RJCT",
            version=version,
        )
    ).status_report

    assert accepted.payment_information == (
        PaymentInformationStatus("SB-DD-2-FRST", "ACCP", None, None, 0),
    )
    assert refused.payment_information == (
        PaymentInformationStatus("SB-DD-3", "RJCT", None, None, 1),
    )
    assert not refused.payment_information[0].is_rejected_without_lines


@pytest.mark.parametrize("name", ["pain002_001_03.xml", "pain002_001_10.xml"])
def test_pain002_payment_information_of_the_samples(name):
    (block,) = load(name).status_report.payment_information
    assert block == PaymentInformationStatus("SB-DD-20260304-FRST-1", "PART", None, None, 2)


# --- detection and malformed content ------------------------------------------------


@pytest.mark.parametrize(
    "namespace",
    [
        b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.99",
        b"urn:iso:std:iso:20022:tech:xsd:camt.052.001.02",
        b"urn:example:camt.053.001.02",
        b"",
    ],
)
def test_detect_unknown_namespace_refused(namespace):
    data = (
        (DATA / "camt053_001_02.xml")
        .read_bytes()
        .replace(b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02", namespace)
    )
    error = assert_refused(data, "Onbekend bestandstype")
    assert error.code == "bank_file_unknown"


def test_detect_mismatched_message_refused():
    data = (
        (DATA / "camt053_001_02.xml").read_bytes().replace(b"camt.053.001.02", b"pain.002.001.03")
    )
    assert_refused(data, "Onbekend bestandstype")


def test_detect_not_an_iso_document_refused():
    assert_refused(b"<invoice><line/></invoice>", "Onbekend bestandstype")


def test_parse_amount_must_be_a_plain_decimal():
    data = (DATA / "camt053_001_02.xml").read_bytes().replace(b">423.50<", b">4.235e2<")
    assert_refused(data, "Ongeldig bedrag")


def test_parse_batch_count_must_match_transactions():
    data = (DATA / "camt053_001_02.xml").read_bytes().replace(b"<NbOfTxs>3<", b"<NbOfTxs>4<")
    assert_refused(data, "Aantal transacties")


def test_parse_missing_message_id_refused():
    data = (
        (DATA / "camt054_001_02.xml")
        .read_bytes()
        .replace(b"<MsgId>NTFCTN-20260306-001</MsgId>", b"")
    )
    assert_refused(data, "MsgId")


# --- hostile and broken XML ---------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>&xxe;</MsgId></GrpHdr></BkToCstmrStmt></Document>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""

INTERNAL_SUBSET = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ELEMENT Document ANY>]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"/>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Document SYSTEM "http://attacker.example/evil.dtd">
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"/>"""


@pytest.mark.parametrize(
    "data",
    [XXE, BILLION_LAUGHS, INTERNAL_SUBSET, EXTERNAL_DTD, XXE.replace(b"DOCTYPE", b"doctype")],
    ids=["xxe", "billion_laughs", "internal_subset", "external_dtd", "lowercase"],
)
def test_safe_xml_doctype_refused(data):
    error = assert_refused(data, "DOCTYPE")
    assert error.code == "bank_file_doctype"
    assert "root:" not in error.message


@pytest.mark.parametrize(
    "data",
    [XXE, BILLION_LAUGHS, INTERNAL_SUBSET, EXTERNAL_DTD],
    ids=["xxe", "billion_laughs", "internal_subset", "external_dtd"],
)
def test_safe_xml_parser_refuses_doctype_even_past_the_byte_check(data, monkeypatch):
    # Defence in depth: if the raw-bytes check were fooled, the parsed docinfo
    # still refuses the document, and nothing was fetched or expanded.
    monkeypatch.setattr(safe_xml, "_DOCTYPE", safe_xml.re.compile(rb"(?!x)x"))
    with pytest.raises(BankFileError) as caught:
        parse_untrusted_xml(data)
    assert caught.value.code in {"bank_file_doctype", "bank_file_malformed"}
    assert "root:" not in caught.value.message


def test_safe_xml_utf16_refused():
    data = XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
    assert_refused(data.encode("utf-16"), "UTF-8")


def test_safe_xml_oversized_refused():
    data = (DATA / "camt053_001_02.xml").read_bytes()
    error = assert_refused(data, "te groot", max_bytes=len(data) - 1)
    assert error.code == "bank_file_too_large"
    # At the limit exactly it is read.
    assert parse_bank_file(data, max_bytes=len(data)).message_id == "STMT-20260305-001"


def test_safe_xml_default_limit_is_50_mb():
    assert safe_xml.DEFAULT_MAX_BYTES == 50 * 1024 * 1024
    assert_refused(b" " * (safe_xml.DEFAULT_MAX_BYTES + 1), "te groot")


@pytest.mark.parametrize("data", [b"", b"   \n\t "], ids=["empty", "whitespace"])
def test_safe_xml_empty_refused(data):
    assert_refused(data, "leeg")


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3 binary",
        b"MsgId;Amount\nX;1.00\n",
        b"<Document><BkToCstmrStmt></Document>",
        (DATA / "camt053_001_02.xml").read_bytes()[:500],
    ],
    ids=["pdf", "csv", "unclosed", "truncated"],
)
def test_safe_xml_non_xml_refused(data):
    error = assert_refused(data, "geen geldige XML")
    assert error.code == "bank_file_malformed"


def test_safe_xml_text_instead_of_bytes_is_a_programming_error():
    with pytest.raises(TypeError):
        parse_untrusted_xml("<a/>")


def test_safe_xml_comments_are_dropped():
    root = parse_untrusted_xml(b"<a><!-- hi --><b>1</b></a>")
    assert [child.tag for child in root] == ["b"]


def test_camt053_transactions_sharing_a_reference_get_distinct_keys():
    data = (DATA / "camt053_001_02.xml").read_bytes()
    for n in (1, 2, 3):
        data = data.replace(b"<AcctSvcrRef>ABN-SDD-0001-%d</AcctSvcrRef>" % n, b"")
        data = data.replace(
            b"<EndToEndId>SB-2026-00010%d</EndToEndId>" % n, b"<EndToEndId>X</EndToEndId>"
        )
    batch = parse_bank_file(data).entries[0]
    keys = [tx.unique_key for tx in batch.transactions]
    assert keys == [f"{batch.unique_key}|#{n}" for n in (1, 2, 3)]


# --- large statements: entries read from the serialized statement (entries.py) ------


def read_element_by_element(monkeypatch) -> None:
    """Turn the fast reading off: every entry is flattened element by element."""
    monkeypatch.setattr(entries._Reader, "of", classmethod(lambda cls, stmt, ntrys: None))


def outcome(data: bytes):
    try:
        return parse_bank_file(data)
    except BankFileError as error:
        return (error.code, error.message)


def mixed_statement(version: str = "02", maker=writer.camt053) -> bytes:
    return maker(
        [
            writer.collection("SB-1", "121.00", name="Bakkerij De Gouden Korst", mandate_id="M-1"),
            writer.collection("SB-2", "60.50"),
            writer.debit_return("SB-3", "60.50", "AM04", info="Onvoldoende saldo"),
            writer.debit_return("SB-4", "10.00", None),
            writer.transfer("50.00", name="Kapsalon Knip", remittance="Factuur 2027-000003"),
            writer.transfer("75.00", name=None, structured_reference="2027000004"),
            writer.transfer("12.34", remittance="", with_details=False),
            writer.transfer("9.99", credit=False, name="Leverancier"),
            writer.batch_collection([("SB-5", "1.00"), ("SB-6", "2.00")], message_id="DD-1"),
            writer.batch_collection([("SB-7", "3.00")], message_id="DD-2", with_details=False),
            writer.collection("SB-8", "99.99"),
        ],
        version=version,
        message_id="STMT-FAST-1",
    )


@pytest.mark.parametrize(
    "data",
    [
        (DATA / "camt053_001_02.xml").read_bytes(),
        (DATA / "camt053_001_08.xml").read_bytes(),
        (DATA / "camt054_001_02.xml").read_bytes(),
        mixed_statement("02"),
        mixed_statement("08"),
        mixed_statement("02", writer.camt054),
        mixed_statement("08", writer.camt054),
    ],
    ids=["sample_053_02", "sample_053_08", "sample_054", "053_02", "053_08", "054_02", "054_08"],
)
def test_camt_entries_read_fast_equal_element_by_element(data, monkeypatch):
    fast = parse_bank_file(data)
    read_element_by_element(monkeypatch)
    assert parse_bank_file(data) == fast


PLAIN = mixed_statement().decode()
NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


@pytest.mark.parametrize(
    "document",
    [
        PLAIN.replace("<NtryRef>E2</NtryRef>", "<!-- <Ntry> --><NtryRef>E2</NtryRef>"),
        PLAIN.replace("</Ntry>", "</Ntry><!--<Ntry></Ntry>-->", 1),
        PLAIN.replace("<Nm>Kapsalon Knip</Nm>", "<Nm><![CDATA[Kapsalon & Knip]]></Nm>"),
        PLAIN.replace("Kapsalon Knip", "Kapsalon &amp; Kn&#105;p &lt;B.V.&gt;"),
        PLAIN.replace("\n", "\r\n"),
        PLAIN.replace("<Ustrd>Factuur", "<Ustrd>\u00a0a\r\nb > c Factuur"),
        PLAIN.replace("<Nm>Kapsalon Knip</Nm>", "<Nm/>"),
        PLAIN.replace("<EndToEndId>SB-1<", "<EndToEndId>FIRST</EndToEndId><EndToEndId>SB-1<"),
        PLAIN.replace("<Ustrd>", "<Ustrd>een</Ustrd><Ustrd/><Ustrd> twee </Ustrd><Ustrd>", 1),
        PLAIN.replace("<Ntry>", '<Ntry id="1">', 2),
        PLAIN.replace("<AcctSvcrRef>", "<Ntry><NtryRef>IN</NtryRef></Ntry><AcctSvcrRef>", 1),
        PLAIN.replace("<AcctSvcrRef>", "<Ntry/><AcctSvcrRef>", 1),
        PLAIN.replace("</Bal>", "<Ntry><NtryRef>BAL</NtryRef></Ntry></Bal>", 1),
        PLAIN.replace("</Ntry>", "</Ntry><Ntry/>", 1),
        PLAIN.replace(f'xmlns="{NAMESPACE}"', f'xmlns="{NAMESPACE}" xmlns:p="{NAMESPACE}"')
        .replace("<Ntry>", "<p:Ntry>", 3)
        .replace("</Ntry>", "</p:Ntry>", 3),
        PLAIN.replace(f'xmlns="{NAMESPACE}"', f'xmlns="{NAMESPACE}" xmlns:p="{NAMESPACE}"')
        .replace("<EndToEndId>", "<p:EndToEndId>")
        .replace("</EndToEndId>", "</p:EndToEndId>"),
        PLAIN.replace("<Nm>", '<Nm xmlns="urn:example:other">', 2),
        PLAIN.replace("<Ntry>", '<Ntry xmlns="urn:example:other">', 1),
        PLAIN.replace("<Ntry>", f'<Ntry xmlns="{NAMESPACE}">', 1),
        PLAIN.replace('<Amt Ccy="EUR">', '<Amt  Ccy = "EUR\t" >', 2),
        PLAIN.replace('Ccy="EUR"', 'Ccy="USD"', 3),
        PLAIN.replace("<Dt>2027", "<Dt>x2027", 3),
        PLAIN.replace("<Sts>BOOK</Sts>", "", 1),
        PLAIN.replace("<NtryRef>", "<?pi x?><NtryRef>", 1),
        PLAIN.replace("<Ccy>EUR</Ccy>", "<Ccy>EUR</Ccy><Note>&lt;Ntry&gt; Ntry</Note>", 1),
        PLAIN.replace("</Bal>", "</Bal><NtryX>1</NtryX>", 1),
    ],
    ids=[
        "comment_in_entry",
        "comment_between_entries",
        "cdata",
        "escapes",
        "crlf",
        "odd_whitespace",
        "empty_leaf",
        "repeated_leaf",
        "repeated_lines",
        "attribute_on_entry",
        "entry_in_entry",
        "empty_entry_in_entry",
        "entry_in_balance",
        "empty_entry",
        "prefixed_entries",
        "prefixed_leaves",
        "other_namespace_leaves",
        "other_namespace_entry",
        "redundant_namespace_entry",
        "attribute_spacing",
        "other_currency",
        "bad_dates",
        "missing_status",
        "processing_instruction",
        "entry_in_text",
        "entry_like_tag",
    ],
)
def test_camt_entries_odd_markup_read_as_element_by_element(document, monkeypatch):
    data = document.encode()
    fast = outcome(data)
    read_element_by_element(monkeypatch)
    assert outcome(data) == fast


def test_camt_entries_of_one_shape_are_flattened_once(monkeypatch):
    # 300 entries in three shapes: the first of each is flattened to check its
    # compiled shape, every other entry is one match.
    data = writer.camt053(
        [writer.collection(f"SB-{n}", "1.00", name=f"Klant {n}") for n in range(200)]
        + [writer.debit_return(f"SB-R{n}", "2.00", "AM04") for n in range(50)]
        + [writer.transfer("3.00", structured_reference=f"2027{n:06d}") for n in range(50)]
    )
    flattened = []
    read_entry = entries.read_entry
    monkeypatch.setattr(entries, "read_entry", lambda ntry: flattened.append(1) or read_entry(ntry))
    bank_file = parse_bank_file(data)
    assert len(bank_file.entries) == 300
    assert len(flattened) == 3
    assert bank_file.entries[199].transactions[0].counterparty_name == "Klant 199"


def test_camt_entries_past_the_compiled_shapes_are_read_all_the_same(monkeypatch):
    data = mixed_statement()
    fast = parse_bank_file(data)
    monkeypatch.setattr(entries, "MAX_BUILDS", 2)
    monkeypatch.setattr(entries, "MAX_SHAPE_TAGS", 100)
    monkeypatch.setattr(entries, "MAX_TRIES", 1)
    assert parse_bank_file(data) == fast


def test_camt_entries_and_transactions_have_every_field():
    # Entry and Transaction are built without __init__ (parser._new).
    for entry in parse_bank_file(mixed_statement()).entries:
        for item in (entry, *entry.transactions):
            assert set(vars(item)) == {field.name for field in dataclasses.fields(item)}
            assert dataclasses.replace(item) == item


def test_safe_xml_remove_blank_text_keeps_the_text_of_leaves():
    root = parse_untrusted_xml(b"<a>\n  <b>  </b>\n  <c>x</c>\n</a>", remove_blank_text=True)
    assert root.text is None
    assert [(child.tag, child.text) for child in root] == [("b", "  "), ("c", "x")]
