"""Write a direct-debit batch's pain.008 file to a path (R12).

The file is the stored one, checked against its checksum: byte for byte what
was (or will be) handed to the bank. Staff in "manual" submission mode upload
it in the bank's portal.
"""

from django.core.management.base import BaseCommand, CommandError

from afas_sb.errors import DomainError
from billing.management.commands.export_invoice import _writable_target, _write_atomically
from billing.models import DebitBatch
from billing.services.debit_batches import debit_batch_content


class Command(BaseCommand):
    help = "Schrijf het pain.008-bestand van een incassobatch naar een bestand."

    def add_arguments(self, parser):
        parser.add_argument(
            "batch", help="Het nummer (id) of bericht-id van de batch, bijv. 12 of SB-DD-…"
        )
        parser.add_argument("--output", required=True, help="Het pad van het bestand dat ontstaat.")

    def handle(self, *args, batch, output, **options):
        key = batch.strip()
        # Check the target first: a bad path must not look like a missing batch.
        target = _writable_target(output)
        found = _find(key)
        if found is None:
            raise CommandError(f"Incassobatch {key} bestaat niet.")
        try:
            content = debit_batch_content(found)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        _write_atomically(target, content)
        self.stdout.write(
            f"{found.message_id}.xml geschreven naar {target} "
            f"({found.debit_count} incasso's, {len(content):,} bytes)."
        )


def _find(key: str) -> DebitBatch | None:
    if key.isdigit():
        return DebitBatch.objects.filter(pk=int(key)).first()
    return DebitBatch.objects.filter(message_id=key).first()
