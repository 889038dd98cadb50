from datetime import date

from django.core.management.base import BaseCommand, CommandError

from afas_sb import clock
from afas_sb.errors import DomainError
from afas_sb.scheduler import services
from afas_sb.scheduler.services import Result

LABELS = {
    Result.SUCCEEDED: "geslaagd",
    Result.ALREADY_DONE: "was al gedaan",
    Result.FAILED: "MISLUKT",
    Result.BUSY: "bezig in ander proces",
    Result.EXHAUSTED: "MISLUKT, wacht op medewerker",
    Result.BLOCKED: "wacht op eerdere datum",
}


def _parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{option} '{value}' is geen datum; gebruik JJJJ-MM-DD.") from exc


class Command(BaseCommand):
    help = (
        "Run the business calendar. Without --date: every date from the first "
        "unfinished one up to today. With --date [--until]: exactly those dates."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="first date to run (YYYY-MM-DD)")
        parser.add_argument("--until", help="last date to run (YYYY-MM-DD); default: --date")

    def handle(self, *args, **options):
        today = clock.today()
        if options["until"] and not options["date"]:
            raise CommandError("--until werkt alleen samen met --date.")
        try:
            if options["date"]:
                start = _parse_date(options["date"], "--date")
                end = _parse_date(options["until"], "--until") if options["until"] else start
                if end > today:
                    raise CommandError(
                        f"{end} ligt na vandaag ({today}); de kalender loopt niet vooruit."
                    )
                results = services.calendar_run_range(start=start, end=end)
            else:
                results = services.calendar_tick(today=today)
        except DomainError as exc:
            raise CommandError(exc.message) from exc

        for item in results:
            line = f"{item.day}  {item.action:<40} {LABELS[item.result]}"
            if item.outcome:
                line += f"  ({item.outcome})"
            self.stdout.write(line)
        if not results:
            self.stdout.write("Niets te doen: alle dagen tot en met vandaag zijn afgerond.")
        failed = [r for r in results if r.result in (Result.FAILED, Result.EXHAUSTED)]
        if failed:
            raise CommandError(f"{len(failed)} actie(s) mislukt; zie het overzicht hierboven.")
