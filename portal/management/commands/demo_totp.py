from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from afas_sb import clock

from .seed_demo import DEMO_TOTP_SECRET


class Command(BaseCommand):
    help = "Print the demo staff user's current TOTP code (demo environments only)."

    def handle(self, *args, **options):
        if not settings.DEMO_DATA_ALLOWED:
            raise CommandError("demo_totp werkt alleen in een demo-omgeving.")
        counter = int(clock.now().timestamp()) // 30
        self.stdout.write(format_hotp_value(hotp_value(DEMO_TOTP_SECRET, counter)))
