"""The daily calendar actions of direct debits (R12).

``billing.debit_planning`` (order 70) runs after the day's invoices (50, 60):
it cancels scheduled debits whose mandate ended and plans debits the invoices
did not (a mandate signed after the invoice, a new IBAN), with an e-mail.

``billing.debit_batches`` (order 80) makes the day's pain.008 batches. It runs
every day rather than only on TARGET2 days, because that is what keeps a
missed day safe: every collection date's batch day is a TARGET2 day, so on a
weekend or a TARGET2 holiday nothing new is due, while a catch-up after an
outage still finds the debits whose cut-off passed and moves them to the
first collection date the bank can reach (they are batched on the next TARGET2
day). The files are handed to the bank once the calendar's transaction commits.

Imported from BillingConfig.ready(), which registers them.
"""

from datetime import date

from afas_sb.scheduler.registry import register

from .services.debit_batches import debit_batches_create
from .services.debits import debits_cancel_without_mandate, debits_plan


@register(
    "billing.debit_planning",
    # After monthly invoicing (50) and the first invoices (60).
    order=70,
    description="Incasso's plannen voor openstaande abonnementsfacturen met machtiging (R12)",
)
def debit_planning(day: date) -> str:
    cancelled = debits_cancel_without_mandate()
    planned = debits_plan(day=day)
    return f"{planned} incasso('s) gepland, {cancelled} geannuleerd (machtiging niet actief)"


@register(
    "billing.debit_batches",
    # After the planning (70), so a debit planned today for tomorrow is in today's file.
    order=80,
    description="Incassobatches (pain.008) maken voor de cut-off van de bank (R12)",
)
def debit_batches(day: date) -> str:
    batches = debit_batches_create(day=day)
    if not batches:
        return "geen incasso's te verwerken"
    count = sum(batch.debit_count for batch in batches)
    names = ", ".join(batch.message_id for batch in batches)
    return f"{len(batches)} batch(es) met {count} incasso('s): {names}"
