"""`python manage.py import_bank_file PATH [PATH ...]` (R12): one line per file, safe refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from billing.bankfiles.writer import camt053, collection, transfer
from billing.models import BankFileImport, BankTransaction, Invoice, Payment

from .collection_builders import (
    customer_with_debit,
    media_root,  # noqa: F401 - fixture
    stored_files,
)
from .test_bankfiles import BILLION_LAUGHS, XXE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _march(time_machine, media_root):  # noqa: F811
    time_machine.move_to(datetime(2027, 3, 5, 9, 0, tzinfo=UTC), tick=False)


def run(*paths) -> tuple[str, str, int]:
    out, err = StringIO(), StringIO()
    code = 0
    try:
        call_command("import_bank_file", *map(str, paths), stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return out.getvalue(), err.getvalue(), code


def test_r12_command_imports_a_statement_and_prints_one_line(tmp_path):
    _org, _mandate, invoice, debit = customer_with_debit()
    path = tmp_path / "afschrift.xml"
    path.write_bytes(
        camt053(
            [collection(debit.end_to_end_id, debit.amount), transfer("5.00", name="Onbekend")],
            message_id="STMT-20270305-001",
        )
    )

    out, err, code = run(path)

    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert out.startswith("afschrift.xml: camt.053 STMT-20270305-001 ingelezen; 2 regels")
    assert "1 geïncasseerd" in out and "1 niet gekoppeld" in out
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_r12_command_says_a_file_was_already_imported_and_exits_zero(tmp_path):
    path = tmp_path / "afschrift.xml"
    path.write_bytes(camt053([transfer("5.00")]))
    run(path)

    out, err, code = run(path)

    assert (code, err) == (0, "")
    assert "al eerder ingelezen" in out
    assert BankFileImport.objects.count() == 1


@pytest.mark.parametrize(
    "data, fragment",
    [
        (XXE, "DOCTYPE"),
        (BILLION_LAUGHS, "DOCTYPE"),
        (b"<Document><BkToCstmrStmt>", "geen geldige XML"),
        (b"%PDF-1.7 binary", "geen geldige XML"),
    ],
    ids=["xxe", "billion_laughs", "malformed", "pdf"],
)
def test_r12_command_refuses_hostile_or_broken_files_with_one_line(
    tmp_path,
    data,
    fragment,
    media_root,  # noqa: F811
):
    path = tmp_path / "kwaad.xml"
    path.write_bytes(data)

    out, err, code = run(path)

    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("kwaad.xml: geweigerd, er is niets opgeslagen.")
    assert fragment in err
    assert "Traceback" not in err
    assert not BankFileImport.objects.exists()
    assert not BankTransaction.objects.exists()
    assert stored_files(media_root) == []


def test_r12_command_refuses_an_oversized_file_before_reading_it(tmp_path, settings):
    settings.BANK_FILE_MAX_BYTES = 50
    path = tmp_path / "groot.xml"
    path.write_bytes(camt053([transfer("5.00")]))

    _out, err, code = run(path)

    assert code == 1
    assert "te groot" in err
    assert not BankFileImport.objects.exists()


def test_r12_command_reads_the_good_files_and_fails_for_the_bad_one(tmp_path):
    _org, _mandate, _invoice, debit = customer_with_debit()
    good = tmp_path / "goed.xml"
    good.write_bytes(camt053([collection(debit.end_to_end_id, debit.amount)]))
    bad = tmp_path / "kwaad.xml"
    bad.write_bytes(XXE)
    missing = tmp_path / "weg.xml"

    out, err, code = run(bad, good, missing)

    assert code == 1
    assert out.startswith("goed.xml: camt.053")
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("kwaad.xml: geweigerd")
    assert lines[1].startswith("weg.xml: kan het bestand niet lezen")
    assert Payment.objects.count() == 1
