"""Read bank files: camt.053 statements, camt.054 notifications, pain.002 status reports (R12).

One line per file on stdout with what it did. A refused file (malformed,
hostile, too large, unknown) gets one Dutch line on stderr, stores nothing, and
makes the command exit non-zero; the other files are still read. A file read
before is reported as such and is not an error.
"""

import os

from django.conf import settings
from django.core.management.base import BaseCommand

from afas_sb.errors import DomainError
from billing.services.bank_import import bank_file_import


def summary_line(summary: dict) -> str:
    return (
        f"{summary.get('transactions', 0)} regels: {summary.get('new', 0)} nieuw, "
        f"{summary.get('duplicates', 0)} al bekend; "
        f"{summary.get('collected', 0)} geïncasseerd, {summary.get('returned', 0)} gestorneerd, "
        f"{summary.get('rejected', 0)} geweigerd, "
        f"{summary.get('transfers_matched', 0)} overboekingen gekoppeld, "
        f"{summary.get('unmatched', 0)} niet gekoppeld, {summary.get('ignored', 0)} genegeerd"
    )


class Command(BaseCommand):
    help = (
        "Lees bankbestanden in (camt.053, camt.054, pain.002). Veilig om te herhalen: "
        "een bestand of boeking die al bekend is, verandert niets."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Pad van een bankbestand.")

    def handle(self, *args, paths, **options):
        refused = 0
        for path in paths:
            name = os.path.basename(path)
            try:
                data = self._read(path)
                result = bank_file_import(data=data, filename=name)
            except DomainError as exc:
                refused += 1
                self.stderr.write(f"{name}: geweigerd, er is niets opgeslagen. {exc.message}")
                continue
            except OSError as exc:
                refused += 1
                self.stderr.write(f"{name}: kan het bestand niet lezen ({exc.strerror or exc}).")
                continue
            if result.created:
                self.stdout.write(
                    f"{name}: {result.import_file.kind} {result.import_file.message_id} "
                    f"ingelezen; {summary_line(result.summary)}."
                )
            else:
                self.stdout.write(
                    f"{name}: al eerder ingelezen op "
                    f"{result.import_file.imported_at:%d-%m-%Y %H:%M}; niets gewijzigd."
                )
        if refused:
            raise SystemExit(1)

    def _read(self, path: str) -> bytes:
        # Refuse a huge file before reading it into memory.
        size = os.path.getsize(path)
        if size > settings.BANK_FILE_MAX_BYTES:
            raise DomainError(
                f"Het bestand is te groot ({size} bytes; maximaal "
                f"{settings.BANK_FILE_MAX_BYTES} bytes).",
                code="bank_file_too_large",
            )
        with open(path, "rb") as handle:
            return handle.read()
