"""Stored documents (R9, R10): rendered once, kept with a checksum, exported by command."""

import hashlib
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import connection

from billing.documents.base import DocumentRenderer, document_store
from billing.documents.pdf import PdfRenderer
from billing.models import InvoiceDocument
from tests.billing.invoice_factories import make_credit_note, make_invoice

BARRIER_TIMEOUT = 20


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


class CountingRenderer(DocumentRenderer):
    """A cheap stand-in that counts its renders; bytes depend only on the invoice."""

    format = "pdf"
    content_type = "application/pdf"

    def __init__(self):
        self.renders = 0

    def render(self, invoice):
        self.renders += 1
        return f"{invoice.number}.pdf", self.content_type, f"%PDF-1.7 {invoice.number}".encode()


def stored_files(media_root: Path) -> list[Path]:
    return sorted(path for path in media_root.rglob("*") if path.is_file())


@pytest.mark.django_db
def test_document_store_renders_once_and_keeps_the_file_with_its_checksum(media_root):
    invoice = make_invoice(number="2027-000001")
    renderer = CountingRenderer()

    first = document_store(invoice=invoice, renderer=renderer)
    second = document_store(invoice=invoice, renderer=renderer)

    assert renderer.renders == 1
    assert first.pk == second.pk
    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 1
    content = b"%PDF-1.7 2027-000001"
    assert (first.format, first.filename, first.content_type) == (
        "pdf",
        "2027-000001.pdf",
        "application/pdf",
    )
    assert (first.sha256, first.size) == (hashlib.sha256(content).hexdigest(), len(content))
    [path] = stored_files(media_root)
    assert path.read_bytes() == content
    assert Path(first.file.path) == path


@pytest.mark.django_db
def test_r9_document_store_pdf_twice_gives_one_document_with_the_same_checksum():
    invoice = make_invoice()

    first = document_store(invoice=invoice, renderer=PdfRenderer())
    second = document_store(invoice=invoice, renderer=PdfRenderer())

    assert second.pk == first.pk and second.sha256 == first.sha256
    with second.file.open("rb") as handle:
        content = handle.read()
    assert content.startswith(b"%PDF-") and len(content) == second.size
    assert hashlib.sha256(content).hexdigest() == first.sha256


@pytest.mark.django_db
def test_r9_document_store_never_changes_an_issued_invoices_document():
    invoice = make_invoice(buyer_name="Bakkerij De Gouden Korst B.V.")
    stored = document_store(invoice=invoice, renderer=PdfRenderer())

    # Whatever happens to the row later, the document sent stays the document kept.
    invoice.buyer_name = "Een Andere Naam B.V."
    again = document_store(invoice=invoice, renderer=PdfRenderer())

    assert (again.pk, again.sha256, again.file.name) == (stored.pk, stored.sha256, stored.file.name)


@pytest.mark.django_db
def test_document_store_keeps_a_document_per_format_and_per_invoice():
    invoice = make_invoice()
    credit_note = make_credit_note(invoice)

    class UblStandIn(CountingRenderer):
        format = "ubl"
        content_type = "application/xml"

    document_store(invoice=invoice, renderer=CountingRenderer())
    document_store(invoice=invoice, renderer=UblStandIn())
    document_store(invoice=credit_note, renderer=CountingRenderer())

    assert sorted(InvoiceDocument.objects.values_list("invoice__number", "format")) == sorted(
        [(invoice.number, "pdf"), (invoice.number, "ubl"), (credit_note.number, "pdf")]
    )


@pytest.mark.django_db
def test_document_store_loser_of_a_race_returns_the_winner_and_removes_its_own_file(media_root):
    invoice = make_invoice(number="2027-000002")

    class RacingRenderer(CountingRenderer):
        """Another worker stores the same document while this one is still rendering."""

        def render(self, invoice):
            result = super().render(invoice)
            self.winner = document_store(invoice=invoice, renderer=CountingRenderer())
            return result

    renderer = RacingRenderer()
    document = document_store(invoice=invoice, renderer=renderer)

    assert document.pk == renderer.winner.pk
    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 1
    assert stored_files(media_root) == [Path(renderer.winner.file.path)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_document_store_concurrent_calls_store_one_document(media_root):
    invoice = make_invoice(number="2027-000003")
    # Both threads have rendered before either inserts: the unique constraint decides.
    rendered = threading.Barrier(2, timeout=BARRIER_TIMEOUT)

    class SlowRenderer(CountingRenderer):
        def render(self, invoice):
            result = super().render(invoice)
            rendered.wait()
            return result

    results, errors = [], []

    def store():
        try:
            results.append(document_store(invoice=invoice, renderer=SlowRenderer()))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=store) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BARRIER_TIMEOUT)

    assert errors == []
    assert len(results) == 2 and results[0].pk == results[1].pk
    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 1
    assert stored_files(media_root) == [Path(results[0].file.path)]


# -- python manage.py export_invoice ------------------------------------------------


@pytest.mark.django_db
def test_export_invoice_writes_the_stored_pdf(tmp_path):
    invoice = make_invoice(number="2027-000010")
    output = tmp_path / "factuur.pdf"

    call_command("export_invoice", "2027-000010", "--format", "pdf", "--output", str(output))

    document = InvoiceDocument.objects.get(invoice=invoice, format="pdf")
    content = output.read_bytes()
    assert content.startswith(b"%PDF-")
    assert hashlib.sha256(content).hexdigest() == document.sha256
    # A second export writes the very same bytes: the stored document, not a new render.
    call_command("export_invoice", "2027-000010", "--output", str(output))
    assert output.read_bytes() == content
    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 1


@pytest.mark.django_db
def test_export_invoice_writes_the_ubl_with_the_pdf_stored_first(tmp_path):
    pytest.importorskip("billing.documents.ubl")
    invoice = make_invoice(number="2027-000011")
    output = tmp_path / "factuur.xml"

    call_command("export_invoice", "2027-000011", "--format", "ubl", "--output", str(output))

    assert output.read_bytes().startswith(b"<?xml")
    assert b"<cbc:ID>2027-000011</cbc:ID>" in output.read_bytes()
    assert sorted(invoice.documents.values_list("format", flat=True)) == ["pdf", "ubl"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("number", "extra", "message"),
    [
        ("2099-999999", [], "Factuur 2099-999999 bestaat niet."),
        ("2027-000012", ["--format", "docx"], "Onbekend formaat 'docx': kies pdf of ubl."),
    ],
    ids=["unknown-number", "unknown-format"],
)
def test_export_invoice_refuses_bad_input_and_changes_nothing(tmp_path, number, extra, message):
    make_invoice(number="2027-000012")
    output = tmp_path / "factuur.pdf"

    with pytest.raises(CommandError) as error:
        call_command("export_invoice", number, *extra, "--output", str(output))

    assert str(error.value) == message
    assert not output.exists()
    assert not InvoiceDocument.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "missing/factuur.pdf",
            "Kan {tmp}/missing/factuur.pdf niet schrijven: de map {tmp}/missing bestaat niet.",
        ),
        ("", "{tmp} is een map; geef het pad van een bestand."),
    ],
    ids=["missing-folder", "folder"],
)
def test_export_invoice_refuses_an_unwritable_path_before_rendering(tmp_path, target, message):
    make_invoice(number="2027-000013")

    with pytest.raises(CommandError) as error:
        call_command("export_invoice", "2027-000013", "--output", str(tmp_path / target))

    assert str(error.value) == message.format(tmp=tmp_path)
    assert not InvoiceDocument.objects.exists()


@pytest.mark.django_db
def test_export_invoice_exits_non_zero_with_one_readable_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        execute_from_command_line(
            ["manage.py", "export_invoice", "2099-000001", "--output", str(tmp_path / "x.pdf")]
        )

    assert exit_.value.code != 0
    assert capsys.readouterr().err.strip() == "CommandError: Factuur 2099-000001 bestaat niet."


@pytest.mark.django_db
def test_export_invoice_says_so_when_ubl_is_not_available(tmp_path, monkeypatch):
    make_invoice(number="2027-000014")
    monkeypatch.setitem(sys.modules, "billing.documents.ubl", None)

    with pytest.raises(CommandError) as error:
        call_command(
            "export_invoice", "2027-000014", "--format", "ubl", "--output", str(tmp_path / "x")
        )

    assert str(error.value) == "UBL is nog niet beschikbaar."
    assert not (tmp_path / "x").exists()
    assert not InvoiceDocument.objects.exists()
