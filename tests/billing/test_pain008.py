"""R12: the pain.008.001.02 writer — what the bank reads, checked with lxml, and what it refuses."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from lxml import etree

from billing.sepa.pain008 import Pain008Debit, Pain008Error, render_pain008, sepa_text

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}
CREDITOR_ID = "NL69ZZZ123456780000"
CREATED = datetime(2027, 1, 14, 5, 30, tzinfo=UTC)


def debit(n: int = 1, **overrides) -> Pain008Debit:
    values = {
        "end_to_end_id": f"2027-{n:06d}-1",
        "amount": Decimal("143.87"),
        "mandate_id": f"SB-{n}-1",
        "mandate_signed_on": date(2026, 12, 20),
        "debtor_name": f"Bakkerij {n} B.V.",
        "debtor_iban": "NL20INGB0001234567",
        "debtor_bic": "INGBNL2A",
        "remittance": f"Factuur 2027-{n:06d} AFAS SB",
    }
    return Pain008Debit(**(values | overrides))


def render(debits, **overrides) -> bytes:
    arguments = {
        "message_id": "SB-DD-20270115-FRST-7",
        "collection_date": date(2027, 1, 15),
        "sequence_type": "FRST",
        "creditor_name": "AFAS Software B.V.",
        "creditor_iban": "NL91ABNA0417164300",
        "creditor_bic": "ABNANL2A",
        "creditor_id": CREDITOR_ID,
        "debits": debits,
        "created_at": CREATED,
    }
    return render_pain008(**(arguments | overrides))


def texts(root, path: str) -> list[str]:
    return [node.text for node in root.iterfind(path, NS)]


def test_r12_pain008_states_counts_sums_sequence_mandates_and_dates():
    debits = [
        debit(1),
        debit(2, amount=Decimal("0.01")),
        debit(3, amount=Decimal("1234.50"), debtor_bic=""),
    ]

    root = etree.fromstring(render(debits))

    header = "p:CstmrDrctDbtInitn/p:GrpHdr"
    assert texts(root, f"{header}/p:MsgId") == ["SB-DD-20270115-FRST-7"]
    assert texts(root, f"{header}/p:CreDtTm") == ["2027-01-14T06:30:00"]  # Amsterdam time
    assert texts(root, f"{header}/p:NbOfTxs") == ["3"]
    assert texts(root, f"{header}/p:CtrlSum") == ["1378.38"]
    info = "p:CstmrDrctDbtInitn/p:PmtInf"
    assert len(root.findall(info, NS)) == 1
    assert texts(root, f"{info}/p:PmtInfId") == ["SB-DD-20270115-FRST-7"]
    assert texts(root, f"{info}/p:PmtMtd") == ["DD"]
    assert texts(root, f"{info}/p:NbOfTxs") == ["3"]
    assert texts(root, f"{info}/p:CtrlSum") == ["1378.38"]
    assert texts(root, f"{info}/p:PmtTpInf/p:SvcLvl/p:Cd") == ["SEPA"]
    assert texts(root, f"{info}/p:PmtTpInf/p:LclInstrm/p:Cd") == ["CORE"]
    assert texts(root, f"{info}/p:PmtTpInf/p:SeqTp") == ["FRST"]
    assert texts(root, f"{info}/p:ReqdColltnDt") == ["2027-01-15"]
    assert texts(root, f"{info}/p:CdtrAcct/p:Id/p:IBAN") == ["NL91ABNA0417164300"]
    assert texts(root, f"{info}/p:CdtrSchmeId/p:Id/p:PrvtId/p:Othr/p:Id") == [CREDITOR_ID]
    assert texts(root, f"{info}/p:CdtrSchmeId/p:Id/p:PrvtId/p:Othr/p:SchmeNm/p:Prtry") == ["SEPA"]
    tx = f"{info}/p:DrctDbtTxInf"
    assert texts(root, f"{tx}/p:PmtId/p:EndToEndId") == [
        "2027-000001-1",
        "2027-000002-1",
        "2027-000003-1",
    ]
    assert texts(root, f"{tx}/p:InstdAmt") == ["143.87", "0.01", "1234.50"]
    assert {node.get("Ccy") for node in root.iterfind(f"{tx}/p:InstdAmt", NS)} == {"EUR"}
    assert texts(root, f"{tx}/p:DrctDbtTx/p:MndtRltdInf/p:MndtId") == ["SB-1-1", "SB-2-1", "SB-3-1"]
    assert texts(root, f"{tx}/p:DrctDbtTx/p:MndtRltdInf/p:DtOfSgntr") == ["2026-12-20"] * 3
    assert texts(root, f"{tx}/p:DbtrAgt/p:FinInstnId/p:BIC") == ["INGBNL2A", "INGBNL2A"]
    # No BIC known: "NOTPROVIDED", as the rulebook allows for SEPA-zone debtors.
    assert texts(root, f"{tx}/p:DbtrAgt/p:FinInstnId/p:Othr/p:Id") == ["NOTPROVIDED"]
    assert texts(root, f"{tx}/p:RmtInf/p:Ustrd")[0] == "Factuur 2027-000001 AFAS SB"


def test_r12_pain008_rcur_batch():
    root = etree.fromstring(render([debit()], sequence_type="RCUR"))

    assert texts(root, ".//p:PmtTpInf/p:SeqTp") == ["RCUR"]


def test_r12_pain008_same_batch_gives_the_same_bytes():
    assert render([debit(1), debit(2)]) == render([debit(1), debit(2)])


def test_r12_pain008_writes_names_in_the_sepa_character_set():
    root = etree.fromstring(render([debit(debtor_name="Bäckerei Müller & Zn. <Øst>")]))

    assert texts(root, ".//p:Dbtr/p:Nm") == ["Backerei Muller + Zn. Ost"]
    assert sepa_text("Ærø “quoted” — ok", 70) == "AEro quoted -- ok"
    assert len(sepa_text("x" * 200, 70)) == 70


@pytest.mark.parametrize(
    "mandate_id",
    ["SB-1-ü", "SB_1_1", "/SB-1-1", "SB-1-1/", "SB//1", "S" * 36, "", "SB-1&1"],
)
def test_r12_pain008_refuses_a_mandate_id_outside_the_sepa_charset(mandate_id):
    with pytest.raises(Pain008Error) as refused:
        render([debit(), debit(2, mandate_id=mandate_id)])

    assert refused.value.code == "sepa_charset"
    assert "Machtigingskenmerk" in refused.value.message


def test_r12_pain008_refuses_an_end_to_end_id_outside_the_sepa_charset():
    with pytest.raises(Pain008Error) as refused:
        render([debit(end_to_end_id="2027-000001_1")])

    assert "End-to-end-id" in refused.value.message


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (Decimal("0.00"), "groter dan 0"),
        (Decimal("-1.00"), "groter dan 0"),
        (Decimal("1.005"), "hele centen"),
    ],
)
def test_r12_pain008_refuses_amounts_that_are_not_positive_whole_cents(amount, message):
    with pytest.raises(Pain008Error) as refused:
        render([debit(amount=amount)])

    assert message in refused.value.message


def test_r12_pain008_refuses_an_empty_batch_and_an_unknown_sequence_type():
    with pytest.raises(Pain008Error, match="zonder incasso"):
        render([])
    with pytest.raises(Pain008Error, match="volgtype"):
        render([debit()], sequence_type="OOFF")


def test_r12_pain008_that_breaks_the_xsd_is_refused():
    with pytest.raises(Pain008Error) as refused:
        render([debit(debtor_iban="not an iban")])

    assert "pain.008.001.02" in refused.value.message


def test_r12_pain008_for_thousands_of_debits_is_valid_and_adds_up():
    debits = [debit(n, amount=Decimal(n) / 100) for n in range(1, 5001)]

    root = etree.fromstring(render(debits))

    assert texts(root, "p:CstmrDrctDbtInitn/p:GrpHdr/p:NbOfTxs") == ["5000"]
    # 1 + 2 + … + 5000 cents
    assert texts(root, "p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum") == ["125025.00"]
