"""Building blocks for billing tests: customers, agreements and runs through the real services."""

from __future__ import annotations

from datetime import date

from billing.models import BillingRun
from billing.services.runs import (
    billing_chunk_process,
    billing_run_start,
    billing_run_unfinished_chunk_ids,
)
from licensing.models import Agreement, Organisation
from licensing.services.agreements import agreement_create
from tests.factories import FirmFactory, OrganisationFactory, mandate_if_required

BELGIAN_VAT_ID = "BE0403170701"


def belgian_business(**fields) -> Organisation:
    """A Belgian company with a VAT id: intra-EU reverse charge (R10)."""
    defaults = {
        "country": "BE",
        "kvk_number": "0403170701",
        "vat_id": BELGIAN_VAT_ID,
        "street": "Grote Markt 1",
        "postcode": "1000",
        "city": "Brussel",
        "peppol_scheme": "0208",
        "peppol_endpoint_id": "0403170701",
    }
    return OrganisationFactory(**{**defaults, **fields})


def firm_client(*, billed_via_firm: bool = True) -> tuple[Organisation, Organisation]:
    """(firm, client); the firm pays for the client's licence unless told otherwise (R2)."""
    firm = FirmFactory()
    client = OrganisationFactory(
        accountancy_firm=firm, billed_via=firm if billed_via_firm else None
    )
    return firm, client


def agreement_for(
    catalogue,
    organisation: Organisation | None = None,
    *,
    start: date = date(2026, 1, 1),
    end: date | None = None,
    **quantities: int,
) -> Agreement:
    """An agreement through agreement_create; quantities by component code (default 1 base, 2 users).

    A direct entrepreneur without a mandate first gets one (R12: no agreement without it).
    """
    quantities = quantities or {"base": 1, "users": 2}
    organisation = organisation or OrganisationFactory()
    mandate_if_required(organisation)
    return agreement_create(
        organisation=organisation,
        start_date=start,
        end_date=end,
        quantities={catalogue[code]: quantity for code, quantity in quantities.items()},
    )


def run_month(period_start: date) -> BillingRun:
    """Start the period's run and invoice its chunks in this process, as a worker would."""
    run = billing_run_start(period_start=period_start, enqueue=False)
    for chunk_id in billing_run_unfinished_chunk_ids(run=run):
        billing_chunk_process(chunk_id=chunk_id)
    run.refresh_from_db()
    return run
