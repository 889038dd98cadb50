"""Write an invoice's PDF or UBL document to a file (R10).

The document is the stored one (rendered and stored on first use), so the
exported file is byte for byte what the customer received.
"""

import hashlib
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.documents.base import document_store
from billing.models import Invoice
from billing.services.payment_terms import invoice_renderers

FORMATS = ("pdf", "ubl")


class Command(BaseCommand):
    help = "Schrijf de PDF of het UBL-bestand van een factuur of creditnota naar een bestand."

    def add_arguments(self, parser):
        parser.add_argument("number", help="Het factuur- of creditnotanummer, bijv. 2027-000001.")
        parser.add_argument(
            "--format", default="pdf", help="pdf (standaard) of ubl (Peppol BIS Billing 3.0)."
        )
        parser.add_argument("--output", required=True, help="Het pad van het bestand dat ontstaat.")

    def handle(self, *args, number, format, output, **options):
        number, format = number.strip(), format.strip().lower()
        if format not in FORMATS:
            raise CommandError(f"Onbekend formaat '{format}': kies pdf of ubl.")
        # Check the target before rendering: a bad path must change nothing.
        target = _writable_target(output)
        ubl_renderer = _ubl_renderer() if format == "ubl" else None
        invoice = Invoice.objects.filter(number=number).first()
        if invoice is None:
            raise CommandError(f"Factuur {number} bestaat niet.")

        # The UBL embeds the stored PDF, so the PDF is always stored first.
        document = document_store(invoice=invoice, renderer=invoice_renderers()[0])
        if ubl_renderer is not None:
            document = document_store(invoice=invoice, renderer=ubl_renderer)

        with document.file.open("rb") as handle:
            content = handle.read()
        if hashlib.sha256(content).hexdigest() != document.sha256:
            raise CommandError(
                f"Het opgeslagen {format.upper()}-document van {number} klopt niet met zijn "
                "controlegetal; het is niet geschreven."
            )
        _write_atomically(target, content)
        self.stdout.write(f"{document.filename} geschreven naar {target} ({len(content):,} bytes).")


def _ubl_renderer():
    try:
        import billing.documents.ubl  # noqa: F401
    except ImportError:
        raise CommandError("UBL is nog niet beschikbaar.") from None
    return invoice_renderers()[1]


def _writable_target(output: str) -> Path:
    target = Path(output).expanduser()
    if target.is_dir():
        raise CommandError(f"{target} is een map; geef het pad van een bestand.")
    folder = target.parent
    if not folder.is_dir():
        raise CommandError(f"Kan {target} niet schrijven: de map {folder} bestaat niet.")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise CommandError(f"Kan {target} niet schrijven: geen schrijfrechten.")
    return target


def _write_atomically(target: Path, content: bytes) -> None:
    """Write via a temporary file in the same folder, so a half-written file never appears."""
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(content)
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the file from its readers
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CommandError(f"Kan {target} niet schrijven: {exc.strerror or exc}.") from None
