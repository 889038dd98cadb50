"""Create a service token for one SB application environment and print it once."""

from django.core.management.base import BaseCommand, CommandError

from afas_sb.errors import DomainError
from licensing.services.tokens import service_token_create


class Command(BaseCommand):
    help = (
        "Maak een servicetoken voor de SB-applicatie aan. De token wordt één keer getoond; "
        "alleen de hash wordt bewaard."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Naam, bijv. 'SB productie'.")
        # No argparse choices: a wrong value must give one clear line, not the usage text.
        parser.add_argument("--environment", required=True, help="production, acceptance of test.")

    def handle(self, *args, name, environment, **options):
        try:
            token, raw_token = service_token_create(name=name, environment=environment.strip())
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Servicetoken '{token.name}' ({token.get_environment_display()}) aangemaakt, "
                f"begint met {token.prefix}."
            )
        )
        self.stdout.write(
            "Bewaar de token nu in de SB-applicatie; hij wordt niet nog eens getoond:"
        )
        self.stdout.write(raw_token)
