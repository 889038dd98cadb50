"""Start (or continue) the monthly billing run of one period by hand (R7)."""

from django.core.management.base import BaseCommand, CommandError

from afas_sb.calendars import parse_month
from afas_sb.errors import DomainError
from billing.services.runs import (
    billing_chunk_process,
    billing_run_start,
    billing_run_unfinished_chunk_ids,
)


class Command(BaseCommand):
    help = (
        "Factureer de abonnementen van een maand (vooraf, op de 1e). Veilig om te herhalen: "
        "een tweede run maakt alleen de ontbrekende facturen."
    )

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="De maand als JJJJ-MM, bijv. 2027-01.")
        parser.add_argument(
            "--in-process",
            action="store_true",
            help="Verwerk de delen in dit proces in plaats van via de Celery-workers.",
        )

    def handle(self, *args, period, in_process, **options):
        try:
            month = parse_month(period.strip())
        except ValueError:
            raise CommandError(
                f"Ongeldige periode '{period}': geef een maand als JJJJ-MM, bijvoorbeeld 2027-01."
            ) from None
        try:
            run = billing_run_start(period_start=month.start, enqueue=not in_process)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        if in_process:
            for chunk_id in billing_run_unfinished_chunk_ids(run=run):
                billing_chunk_process(chunk_id=chunk_id)
        run.refresh_from_db()
        self.stdout.write(
            f"Facturatierun {run}: {run.get_status_display().lower()}; "
            f"{run.agreements_total} overeenkomsten in {run.chunks_total} delen, "
            f"{run.chunks_done} klaar, {run.chunks_failed} mislukt, "
            f"{run.invoices_created} facturen gemaakt."
        )
        if run.chunks_failed:
            failed = run.chunks.filter(status="failed").order_by("number").first()
            first_line = (failed.error.strip().splitlines() or [""])[0]
            self.stderr.write(f"Deel {failed.number} mislukte: {first_line}")
