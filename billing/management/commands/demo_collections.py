"""The collections demo (R12, R13): a few months of calendar, debit batches and bank answers.

    python manage.py seed_demo && python manage.py demo_collections

On top of ``seed_demo`` it adds one direct customer that cannot pay, Bloemsierkunst
Het Boeket, and replays the past: from the first day of the month before the
last 28th up to today, the calendar runs day by day (invoicing, debit planning,
pain.008 batches handed to the outbox, the 28th rule), and every business-day
evening a simulated bank answers with a camt.053 statement, written by
``billing.bankfiles.writer`` and read through ``bank_file_import`` like any
other. Every debit is collected, except Het Boeket's: they come back AM04
(insufficient funds) on their collection date. So its first invoice is presented
three times and ends in a request to pay by transfer, and on the next month's
28th, with two subscription invoices open, its licence ends (R13). Two
transfers arrive once: one naming its invoice, one for the staff queue.

Why replay the past, and why the clock moves: the calendar may not run ahead
of today, and what the bank can still reach is decided from the clock's today
(``debits_plan``, ``debit_batches_create``, a re-presentment's date), which is
right for a real catch-up and wrong for a replay. So each replayed step runs
with the project's clock (``afas_sb.clock``) set to that day — never later than
the real now — while Django's own timestamps keep the real time. Tasks run in
this process for the same reason: a worker would see the real clock.

Run it again and nothing is added: the calendar finds its days done and each
day's statement is read once (by its message id). Run it on a later day and it
carries on up to the new today, as the nightly calendar would.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Max, Sum
from django.urls import reverse
from django.utils import timezone

from afas_sb import clock
from afas_sb.calendars import (
    add_months,
    first_of_month,
    is_sepa_business_day,
    sepa_business_day_on_or_after,
)
from afas_sb.errors import DomainError
from afas_sb.money import format_eur
from afas_sb.scheduler.models import CalendarRun
from afas_sb.scheduler.services import Result, calendar_run_range
from billing.bankfiles import writer
from billing.models import (
    BankFileImport,
    CollectionNotice,
    DebitBatch,
    DirectDebit,
    Invoice,
    Mandate,
)
from billing.sepa.submission import submission_for
from billing.services.bank_import import bank_file_import
from billing.services.debit_batches import debit_batch_mark_submitted
from billing.services.mandates import mandate_sign
from licensing.models import Agreement, Component, Organisation, PriceList, Termination
from licensing.services.agreements import agreement_create

STAFF_EMAIL = "staff@sb.example.nl"  # made by seed_demo
DEMO_PASSWORD = "Demo-wachtwoord-2026"  # noqa: S105 (seed_demo's demo password, in the README)
CUSTOMER = {
    "country": "NL",
    "kvk_number": "45678912",
    "legal_name": "Bloemsierkunst Het Boeket",
    "vat_id": "NL319752392B01",
    "street": "Lange Nieuwstraat 31",
    "postcode": "3512 PE",
    "city": "Utrecht",
    "billing_email": "facturen@hetboeket.nl",
}
OWNER_EMAIL, OWNER_NAME = "lotte@hetboeket.nl", "Lotte Bloem"
CUSTOMER_IBAN = "NL93RABO0123456780"  # checksum-valid, not a real account
RETURN_REASON, RETURN_INFO = "AM04", "Onvoldoende saldo"
# Two transfers on the day the first month's invoices fall due: a firm that pays by
# transfer names its invoice (matched), and a stranger pays for something else (the
# staff queue). Matching by amount and name cannot be shown with seed_demo's data:
# every month's invoice of a payer has the same amount, so two are always open.
PAYER_KVK, PAYER_IBAN = "01987654", "NL20INGB0001234567"  # Accountants Noord B.V.
STRANGER = ("J. de Groot", "NL86INGB0002445588", Decimal("50.00"), "Contributie tennisclub")

NIGHTLY_RUN = clock_time(0, 30)  # beat starts the calendar at 00:30 (afas_sb/settings/base.py)
STATEMENT_READ = clock_time(18, 0)  # the day's statement is read in the evening
STATEMENT_PREFIX = "SB-DEMO-STMT-"


def story_start(today: date) -> date:
    """The first day of the month before the last 28th on or before ``today``.

    That month's invoice has its three attempts; on the 28th of the month after,
    that invoice and the new one are open side by side.
    """
    if today.day >= 28:
        last_28th = today.replace(day=28)
    else:
        last_28th = (first_of_month(today) - timedelta(days=1)).replace(day=28)
    return add_months(first_of_month(last_28th), -1)


@contextmanager
def tasks_in_process() -> Iterator[None]:
    """Celery tasks run here, under the replayed clock, also where a broker is configured."""
    from afas_sb.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = eager


@contextmanager
def commits_without_waiting() -> Iterator[None]:
    """PostgreSQL: do not wait for the WAL flush at each commit while the story replays.

    The calendar commits every action of every day, some two thousand small
    transactions; waiting for each flush is half the run. The database stays
    consistent either way, and a demo cut short by a crash is simply run again.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


@contextmanager
def info_logs_muted() -> Iterator[None]:
    """The story is the output: the calendar logs a line per action and day (some nine hundred
    here), which would bury it. Warnings and errors still show."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(previous)


def _at(day: date, moment: clock_time, *, not_after: datetime) -> datetime:
    local = timezone.make_aware(datetime.combine(day, moment), timezone.get_default_timezone())
    return min(local, not_after)


@dataclass
class Marks:
    """The highest primary keys before a step: what is above them, the step made."""

    invoice: int = 0
    debit: int = 0
    batch: int = 0
    termination: int = 0
    notice: int = 0

    @classmethod
    def now(cls) -> Marks:
        def top(model) -> int:
            return model.objects.aggregate(top=Max("pk"))["top"] or 0

        return cls(
            top(Invoice), top(DirectDebit), top(DebitBatch), top(Termination), top(CollectionNotice)
        )


@dataclass
class Tally:
    days: int = 0  # days on which some calendar action ran (not found done)
    invoices: int = 0
    batches: int = 0
    statements: int = 0
    counts: Counter = field(default_factory=Counter)


class Command(BaseCommand):
    help = (
        "Demo: speel een paar maanden incasso af bovenop seed_demo — kalender, incassobatches, "
        "afschriften van een gesimuleerde bank met storno's (AM04) en de 28e-regel (R13)."
    )

    def handle(self, *args, **options):
        if not settings.DEMO_DATA_ALLOWED:
            raise CommandError("demo_collections werkt alleen in een demo-omgeving.")
        started = time.monotonic()
        today = clock.today()
        staff = get_user_model().objects.filter(email=STAFF_EMAIL).first()
        if staff is None or not PriceList.objects.exists():
            raise CommandError("Draai eerst seed_demo: demo_collections bouwt op de demodata.")
        customer = Organisation.objects.filter(
            country=CUSTOMER["country"], kvk_number=CUSTOMER["kvk_number"]
        ).first()
        agreement = customer.agreements.order_by("pk").first() if customer else None
        start = agreement.start_date if agreement else story_start(today)
        if agreement is None:
            self._refuse_when_the_calendar_ran(start, today)
        self.tally = Tally()
        self.say(
            f"Incassodemo: de kalender en een gesimuleerde bank, dag voor dag van "
            f"{start:%d-%m-%Y} tot en met vandaag ({today:%d-%m-%Y}); dit duurt even."
        )
        with info_logs_muted(), tasks_in_process(), commits_without_waiting():
            if agreement is None:
                customer = self._customer(start)
            for day in _days(start, today):
                self._calendar_day(day, staff)
                if day < today and is_sepa_business_day(day):
                    self._bank_statement(day, customer, start)
        self._epilogue(customer, started)

    # --- set-up --------------------------------------------------------------------------

    def _refuse_when_the_calendar_ran(self, start: date, today: date) -> None:
        ran = (
            CalendarRun.objects.filter(date__gte=start, date__lt=today)
            .order_by("date")
            .values_list("date", flat=True)
            .first()
        )
        if ran is not None:
            raise CommandError(
                f"De kalender heeft al gedraaid op {ran:%d-%m-%Y}; het incassoverhaal vanaf "
                f"{start:%d-%m-%Y} past alleen op een verse demodatabase (migrate, seed_demo)."
            )

    def _customer(self, start: date) -> Organisation:
        """The customer that cannot pay: mandate signed and licence started with the story."""
        moment = _at(start - timedelta(days=1), clock_time(10, 0), not_after=clock.now())
        with clock.replaying(moment), transaction.atomic():
            organisation = Organisation(kind=Organisation.Kind.ENTREPRENEUR, **CUSTOMER)
            organisation.full_clean()
            organisation.save()
            owner = self._owner(organisation)
            mandate = mandate_sign(
                organisation=organisation,
                account_holder=CUSTOMER["legal_name"],
                iban=CUSTOMER_IBAN,
                accepted=True,
                user=owner,
                ip=None,
            )
            components = {c.code: c for c in Component.objects.filter(code__in=["base", "users"])}
            agreement = agreement_create(
                organisation=organisation,
                start_date=start,
                quantities={components["base"]: 1, components["users"]: 2},
            )
        self.line(
            start - timedelta(days=1),
            f"nieuwe klant {organisation.legal_name} (login {OWNER_EMAIL}): machtiging "
            f"{mandate.reference} getekend, licentie {agreement.number} vanaf {start:%d-%m-%Y}. "
            "Haar incasso's komen steeds terug met AM04.",
        )
        return organisation

    def _owner(self, organisation: Organisation):
        """A beheerder to log in with. Memberships are the portal's; looked up by name, because
        billing does not import the portal (the demo is the one place that spans both)."""
        from allauth.account.models import EmailAddress

        user, created = get_user_model().objects.get_or_create(
            email=OWNER_EMAIL, defaults={"full_name": OWNER_NAME}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        EmailAddress.objects.update_or_create(
            user=user, email=OWNER_EMAIL, defaults={"verified": True, "primary": True}
        )
        apps.get_model("portal", "Membership").objects.update_or_create(
            user=user,
            organisation=organisation,
            defaults={"role": "admin", "is_subscription_contact": True},
        )
        return user

    # --- a day of the calendar --------------------------------------------------------------

    def _calendar_day(self, day: date, staff) -> None:
        marks = Marks.now()
        with clock.replaying(_at(day, NIGHTLY_RUN, not_after=clock.now())):
            results = calendar_run_range(start=day, end=day)
            failed = [r for r in results if r.result in (Result.FAILED, Result.EXHAUSTED)]
            self.tally.days += any(r.result == Result.SUCCEEDED for r in results)
            if failed:
                raise CommandError(
                    f"Kalenderactie {failed[0].action} mislukte op {day:%d-%m-%Y}: "
                    f"{failed[0].outcome}"
                )
            if submission_for().name == "manual":
                # SEPA_SUBMISSION=manual: staff upload the file at the bank; here the demo does.
                for batch in DebitBatch.objects.filter(status=DebitBatch.Status.CREATED):
                    debit_batch_mark_submitted(batch=batch, user=staff)
        # In the calendar's order: the 28th rule (30), invoicing (50), batches (80).
        self._tell_terminations(day, marks)
        self._tell_invoices(day, marks)
        self._tell_batches(day, marks)

    def _tell_invoices(self, day: date, marks: Marks) -> None:
        invoices = Invoice.objects.filter(pk__gt=marks.invoice, kind=Invoice.Kind.INVOICE)
        numbers = sorted(invoices.values_list("number", flat=True))
        if not numbers:
            return
        debits = DirectDebit.objects.filter(pk__gt=marks.debit, invoice__in=invoices).count()
        self.tally.invoices += len(numbers)
        self.line(
            day,
            f"kalender: {_n(len(numbers), 'factuur', 'facturen')} ({numbers[0]} t/m "
            f"{numbers[-1]}), {debits} met een incasso op de vervaldatum (de factuur kondigt "
            "die aan)",
        )

    def _tell_batches(self, day: date, marks: Marks) -> None:
        for batch in DebitBatch.objects.filter(pk__gt=marks.batch).order_by("pk"):
            self.tally.batches += 1
            self.line(
                day,
                f"kalender: batch {batch.message_id}: "
                f"{_debits(batch.debit_count)}, {format_eur(batch.total)}, "
                f"incassodatum {batch.collection_date:%d-%m-%Y}; "
                f"{batch.get_status_display().lower()} (pain.008)",
            )

    def _tell_terminations(self, day: date, marks: Marks) -> None:
        terminated = Termination.objects.filter(
            pk__gt=marks.termination, kind=Termination.Kind.NON_PAYMENT
        ).select_related("agreement__organisation")
        for termination in terminated:
            agreement = termination.agreement
            open_numbers = sorted(
                agreement.invoices.filter(
                    kind=Invoice.Kind.INVOICE,
                    purpose=Invoice.Purpose.SUBSCRIPTION,
                    status=Invoice.Status.OPEN,
                ).values_list("number", flat=True)
            )
            self.tally.counts["terminated"] += 1
            self.line(
                day,
                f"R13: {agreement.organisation.legal_name} heeft op de 28e {len(open_numbers)} "
                f"openstaande abonnementsfacturen ({', '.join(open_numbers)}); licentie "
                f"{agreement.number} "
                f"beëindigd per {termination.effective_date:%d-%m-%Y}, zonder bericht. "
                "De facturen blijven open staan.",
            )

    # --- the bank's answer in the evening ----------------------------------------------------

    def _bank_statement(self, day: date, customer: Organisation, start: date) -> None:
        message_id = f"{STATEMENT_PREFIX}{day:%Y%m%d}"
        if BankFileImport.objects.filter(message_id=message_id).exists():
            return  # read on an earlier run
        moment = _at(day, STATEMENT_READ, not_after=clock.now())
        entries, returned = self._entries(day, customer)
        if day == sepa_business_day_on_or_after(start + timedelta(days=14)):
            entries += self._transfers(day, start)
        if not entries:
            return
        data = writer.camt053(entries, message_id=message_id, created=moment)
        marks = Marks.now()
        with clock.replaying(moment):
            try:
                result = bank_file_import(data=data, filename=f"{message_id}.xml")
            except DomainError as exc:  # BankFileError: our own file, so a bug in the demo
                raise CommandError(f"Afschrift {message_id} geweigerd: {exc.message}") from exc
        self.tally.statements += 1
        summary = result.summary
        self.tally.counts.update(
            {key: summary.get(key, 0) for key in ("collected", "returned", "transfers_matched")}
        )
        self.tally.counts["unmatched"] += summary.get("unmatched", 0)
        parts = []
        if summary.get("collected"):
            parts.append(f"{_debits(summary['collected'])} geïnd")
        if summary.get("transfers_matched"):
            number = summary["transfers_matched"]
            parts.append(f"{_n(number, 'overboeking', 'overboekingen')} op factuurnummer gekoppeld")
        if summary.get("unmatched"):
            number = summary["unmatched"]
            parts.append(f"{_n(number, 'overboeking', 'overboekingen')} naar de wachtrij")
        if parts:
            self.line(day, f"bank: afschrift {message_id}: {', '.join(parts)}")
        for debit in returned:
            self._tell_return(day, debit, marks)

    def _entries(self, day: date, customer: Organisation) -> tuple[list, list[DirectDebit]]:
        """Every debit at the bank whose day has come: collected in its batch's booking, or for
        the customer that cannot pay, returned on that day, its collection never booked.

        Returned the same day, not later: on the 28th the rule presumes a debit still at the
        bank collected (billing.services.non_payment), so a return read after the 28th
        would let that invoice escape the count.
        """
        at_bank = (
            DirectDebit.objects.filter(
                status=DirectDebit.Status.SUBMITTED, collection_date__lte=day
            )
            .select_related("mandate", "invoice", "batch")
            .order_by("batch_id", "pk")
        )
        batches: dict[DebitBatch, list[DirectDebit]] = {}
        returned = []
        for debit in at_bank:
            if debit.organisation_id == customer.pk:
                returned.append(debit)
            else:
                batches.setdefault(debit.batch, []).append(debit)
        entries = [_batch_booking(batch, debits, day) for batch, debits in batches.items()]
        entries += [
            writer.debit_return(
                debit.end_to_end_id,
                debit.amount,
                RETURN_REASON,
                info=RETURN_INFO,
                name=debit.mandate.account_holder,
                mandate_id=debit.mandate.reference,
                booking_date=day,
            )
            for debit in returned
        ]
        return entries, returned

    def _transfers(self, day: date, start: date) -> list:
        entries = []
        invoice = (
            Invoice.objects.filter(
                agreement__organisation__kvk_number=PAYER_KVK,
                kind=Invoice.Kind.INVOICE,
                purpose=Invoice.Purpose.SUBSCRIPTION,
                issue_date=start,
                status=Invoice.Status.OPEN,
            )
            .order_by("pk")
            .first()
        )
        if invoice is not None:
            entries.append(
                writer.transfer(
                    invoice.gross_total,
                    name=invoice.buyer_name,
                    iban=PAYER_IBAN,
                    remittance=f"Factuur {invoice.number}",
                    booking_date=day,
                )
            )
        name, iban, amount, text = STRANGER
        entries.append(
            writer.transfer(amount, name=name, iban=iban, remittance=text, booking_date=day)
        )
        return entries

    def _tell_return(self, day: date, debit: DirectDebit, marks: Marks) -> None:
        self.tally.counts["am04"] += 1
        retry = DirectDebit.objects.filter(pk__gt=marks.debit, invoice_id=debit.invoice_id).first()
        asked = CollectionNotice.objects.filter(
            pk__gt=marks.notice, debit=debit, kind=CollectionNotice.Kind.PAY_BY_TRANSFER
        ).exists()
        what = (
            f"bank: storno {RETURN_REASON} (onvoldoende saldo), factuur {debit.invoice.number} "
            f"van {debit.invoice.buyer_name}, poging {debit.attempt} ({format_eur(debit.amount)})"
        )
        if retry is not None:
            what += f"; nieuwe poging {retry.collection_date:%d-%m-%Y}, klant gemaild"
            self.tally.counts["represented"] += 1
        elif asked:
            what += "; de laatste: klant gemaild om over te maken (IBAN, factuurnummer)"
            self.tally.counts["pay_by_transfer"] += 1
        self.line(day, what)

    # --- telling -----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.stdout.write(text)

    def line(self, day: date, text: str) -> None:
        self.stdout.write(f"{day:%d-%m-%Y}  {text}")

    def _epilogue(self, customer: Organisation, started: float) -> None:
        counts = self.tally.counts
        if not (self.tally.days or self.tally.statements):
            self.say(
                "Niets nieuws: het incassoverhaal is al afgespeeld en er is sinds de vorige "
                "keer geen dag bijgekomen."
            )
        else:
            self.say(
                self.style.SUCCESS(
                    f"Klaar in {time.monotonic() - started:.0f} s: {self.tally.days} dagen "
                    f"kalender, {self.tally.invoices} facturen, {self.tally.batches} batches, "
                    f"{self.tally.statements} afschriften; {counts['collected']} incasso's geïnd, "
                    f"{counts['am04']} storno's AM04, {counts['represented']} nieuwe pogingen, "
                    f"{counts['pay_by_transfer']}× gevraagd om over te maken, "
                    f"{counts['terminated']}× beëindigd op de 28e (R13)."
                )
            )
        self._where_to_look(customer)

    def _where_to_look(self, customer: Organisation) -> None:
        site = settings.SITE_URL.rstrip("/")
        open_total = Invoice.objects.filter(
            organisation=customer, status=Invoice.Status.OPEN
        ).aggregate(total=Sum("gross_total"))["total"]
        mandate = Mandate.objects.filter(organisation=customer).order_by("pk").first()
        agreement = Agreement.objects.filter(organisation=customer).order_by("pk").first()
        out = self.say
        out("")
        out(f"Waar kijken ({site}):")
        out(f"  Beheer {site}{reverse('admin:index')} als {STAFF_EMAIL} / {DEMO_PASSWORD}")
        out("  (tweede factor: python manage.py demo_totp)")
        for label, url in [
            ("Incassobatches (pain.008)", reverse("admin:billing_debitbatch_changelist")),
            ("Incasso-overzicht per maand", reverse("admin:billing_debitbatch_overview")),
            (
                "Incasso's van Het Boeket (AM04)",
                reverse("admin:billing_directdebit_changelist") + "?q=Het+Boeket",
            ),
            ("Bankbestanden (de afschriften)", reverse("admin:billing_bankfileimport_changelist")),
            ("Niet-gekoppelde transacties", reverse("admin:billing_banktransaction_changelist")),
            ("Incassoberichten (e-mails)", reverse("admin:billing_collectionnotice_changelist")),
            ("Opzeggingen (R13)", reverse("admin:licensing_termination_changelist")),
            ("Kalender", reverse("admin:scheduler_calendarrun_changelist")),
        ]:
            out(f"    {label:<36} {site}{url}")
        out(f"  Portaal {site}/ als {OWNER_EMAIL} / {DEMO_PASSWORD}:")
        status = agreement.get_status_display().lower() if agreement else "—"
        out(
            f"    {customer.legal_name}: licentie {status}; Facturen toont de storno's "
            f"(AM04), open {format_eur(open_total or 0)}"
        )
        if mandate is not None:
            out(f"    machtiging {mandate.reference}, {mandate.get_status_display().lower()}")
        out("  en als demo@goudenkorst.nl: Facturen betaald per incasso, Betaalgegevens.")
        if "filebased" in settings.EMAIL_BACKEND:
            out(f"  E-mails: {settings.EMAIL_FILE_PATH}")
        outbox = submission_for()
        if hasattr(outbox, "directory"):
            out(f"  pain.008-bestanden: {outbox.directory}")


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _debits(count: int) -> str:
    return _n(count, "incasso", "incasso's")


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def _batch_booking(batch: DebitBatch, debits: list[DirectDebit], day: date) -> writer.Ntry:
    """The batch credited as one booking, with each debit's details (end-to-end id, debtor)."""
    transactions = tuple(
        writer.Tx(
            amount=debit.amount,
            end_to_end_id=debit.end_to_end_id,
            mandate_id=debit.mandate.reference,
            payment_information_id=batch.message_id,
            name=debit.mandate.account_holder,
            iban=debit.mandate.iban,
            bic=debit.mandate.bic or None,
            remittance=f"Factuur {debit.invoice.number} AFAS SB",
        )
        for debit in debits
    )
    return writer.Ntry(
        amount=sum((debit.amount for debit in debits), Decimal("0.00")),
        code=writer.COLLECTED,
        booking_date=day,
        transactions=transactions,
        batch_message_id=batch.message_id,
        batch_payment_information_id=batch.message_id,
        batch_count=len(debits),
    )
