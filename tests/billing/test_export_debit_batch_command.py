"""R12: ``manage.py export_debit_batch ID --output PATH`` writes the stored pain.008 file."""

import hashlib
from datetime import date
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import DebitBatch
from billing.services.debit_batches import debit_batches_create
from tests.factories import make_catalogue

from .debit_builders import at, customer_with_agreement, invoice_month

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(settings, tmp_path) -> DebitBatch:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    catalogue = make_catalogue()
    with at(date(2026, 12, 20)):
        customer_with_agreement(catalogue)
        customer_with_agreement(catalogue)
    invoice_month(date(2027, 1, 1))
    with at(date(2027, 1, 14)):
        (made,) = debit_batches_create(day=date(2027, 1, 14))
    return made


def export(*args: str) -> str:
    out = StringIO()
    call_command("export_debit_batch", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_r12_export_debit_batch_writes_the_stored_file_by_id(batch, tmp_path):
    target = tmp_path / "incasso.xml"

    output = export(str(batch.pk), "--output", str(target))

    assert hashlib.sha256(target.read_bytes()).hexdigest() == batch.sha256
    assert f"{batch.message_id}.xml geschreven naar {target}" in output
    assert "2 incasso's" in output


def test_r12_export_debit_batch_finds_the_batch_by_message_id(batch, tmp_path):
    target = tmp_path / "incasso.xml"

    export(batch.message_id, "--output", str(target))

    assert b"<MsgId>" + batch.message_id.encode() + b"</MsgId>" in target.read_bytes()


@pytest.mark.parametrize("key", ["999999", "SB-DD-20990101-FRST-1"])
def test_r12_export_debit_batch_unknown_batch_is_one_dutch_line(batch, tmp_path, key):
    target = tmp_path / "incasso.xml"

    with pytest.raises(CommandError) as error:
        export(key, "--output", str(target))

    assert str(error.value) == f"Incassobatch {key} bestaat niet."
    assert not target.exists()


def test_r12_export_debit_batch_missing_folder_is_refused(batch, tmp_path):
    with pytest.raises(CommandError) as error:
        export(str(batch.pk), "--output", str(tmp_path / "nope" / "incasso.xml"))

    assert "de map" in str(error.value) and "bestaat niet" in str(error.value)


def test_r12_export_debit_batch_unwritable_folder_is_refused(batch):
    # /proc takes no new files, for root neither: the refusal holds whoever runs CI.
    with pytest.raises(CommandError, match="niet schrijven"):
        export(str(batch.pk), "--output", "/proc/incasso.xml")


def test_r12_export_debit_batch_to_a_folder_is_refused(batch, tmp_path):
    with pytest.raises(CommandError, match="is een map"):
        export(str(batch.pk), "--output", str(tmp_path))


def test_r12_export_debit_batch_refuses_a_file_that_fails_its_checksum(batch, tmp_path):
    with batch.file.open("wb") as handle:
        handle.write(b"tampered")
    target = tmp_path / "incasso.xml"

    with pytest.raises(CommandError, match="controlegetal"):
        export(str(batch.pk), "--output", str(target))

    assert not target.exists()


def test_r12_export_debit_batch_through_manage_py_exits_non_zero_with_one_line(
    batch, tmp_path, capsys
):
    from django.core.management import ManagementUtility

    utility = ManagementUtility(
        ["manage.py", "export_debit_batch", "424242", "--output", str(tmp_path / "x.xml")]
    )
    with pytest.raises(SystemExit) as exit_info:
        utility.execute()

    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "CommandError: Incassobatch 424242 bestaat niet."
    ]
