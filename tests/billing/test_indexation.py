"""R5 and R6: the yearly CPI indexation, from the July figure to the January invoice.

R5: staff record CBS's July year-on-year CPI change (by hand or from a CBS
OData file), the system drafts next year's price list rounded to cents, staff
approve it, and the first invoice of the next calendar year carries the new
prices. R6: the portal's indexation page shows them from the Monday of the last
week of September, and a September mailing goes to the billing contacts once.
"""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import include, path, reverse

# Imported for their registrations: the admin (see urlpatterns below) and the calendar action.
import billing.admin.indexation
import billing.indexation_calendar  # noqa: F401
from afas_sb import urls as root_urls
from afas_sb.audit.models import AuditEvent
from afas_sb.errors import Conflict, DomainError
from afas_sb.scheduler import registry
from afas_sb.scheduler.services import calendar_run_range
from billing.models import IndexationRound, Invoice
from billing.services.indexation import (
    BILLING_CONTACT_ROLES,
    indexation_announced_on,
    indexation_approve,
    indexation_import_cbs,
    indexation_mailing_send,
    indexation_record_cpi,
)
from licensing.models import PriceList
from licensing.selectors import licence_price
from licensing.services.agreements import agreement_create
from portal import urls as portal_urls
from portal.models import Membership, Role
from portal.tenancy import PERMISSIONS
from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    UserFactory,
    give_mandate,
    make_catalogue,
    mandate_if_required,
)

# Until portal/urls.py includes portal.urls_indexation and billing/admin/__init__.py
# imports billing.admin.indexation, these tests route through this module: the
# project's URLs, the portal's with the indexation page, and the admin built after
# the indexation admin registered. Once both are wired in, the marker can go.
urlpatterns = [
    *(p for p in root_urls.urlpatterns if str(p.pattern) not in ("", "admin/")),
    path("admin/", admin.site.urls),
    path(
        "",
        include(
            ([*portal_urls.urlpatterns, path("", include("portal.urls_indexation"))], "portal"),
            namespace="portal",
        ),
    ),
]
pytestmark = pytest.mark.urls(__name__)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SAMPLE = Path(__file__).parent / "data" / "cbs_83131NED_sample.json"
SOURCE = "CBS StatLine 83131NED, jaarmutatie CPI juli 2026"
PAGE = "portal:indexation"
WAIT_SECONDS = 10


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=AMSTERDAM)


@pytest.fixture
def catalogue(db):
    """Approved prices from 1 January 2026: base 39.00, user 12.50, administration 9.95, ..."""
    return make_catalogue()


@pytest.fixture
def august(time_machine):
    """Mid-August 2026: the July figure is known, the 2027 round can be recorded."""
    time_machine.move_to(at(date(2026, 8, 14)), tick=False)
    return time_machine


def prices_of(price_list) -> dict[str, Decimal]:
    return dict(price_list.prices.values_list("component__code", "unit_price"))


def record(staff_user, cpi="3.20", year=2027, source=SOURCE):
    return indexation_record_cpi(
        year=year, cpi_change=Decimal(cpi), source=source, staff_user=staff_user
    )


def approved_round(staff_user, cpi="3.20", year=2027):
    return indexation_approve(round=record(staff_user, cpi, year), staff_user=staff_user)


def licence(catalogue, organisation=None, **quantities):
    organisation = organisation or OrganisationFactory()
    mandate_if_required(organisation)
    return agreement_create(
        organisation=organisation,
        start_date=date(2026, 1, 1),
        quantities={catalogue[code]: n for code, n in (quantities or {"base": 1}).items()},
    )


def nothing_stored():
    return IndexationRound.objects.count() == 0 and PriceList.objects.count() == 1


# --- R5: the figure drafts next year's prices ----------------------------------------------------


def test_r5_july_figure_drafts_next_years_price_list_rounded_to_cents(
    catalogue, august, staff_user
):
    indexation_round = record(staff_user, "3.20")

    draft = indexation_round.price_list
    assert indexation_round.status == IndexationRound.Status.DRAFT
    assert indexation_round.cpi_month == date(2026, 7, 1)
    assert indexation_round.cpi_change == Decimal("3.20")
    assert indexation_round.source == SOURCE
    assert draft.status == PriceList.Status.DRAFT
    assert draft.valid_from == date(2027, 1, 1)
    assert draft.name == "Prijslijst 2027 (geïndexeerd)"
    # 39.00 × 1.032 = 40.248; 12.50 → 12.90; 9.95 → 10.2684; 2.50 → 2.58; 7.50 → 7.74
    assert prices_of(draft) == {
        "base": Decimal("40.25"),
        "users": Decimal("12.90"),
        "administrations": Decimal("10.27"),
        "archive": Decimal("2.58"),
        "view_only": Decimal("7.74"),
    }
    assert AuditEvent.objects.filter(action="billing.indexation_cpi_recorded").count() == 1


def test_r5_indexed_price_rounds_half_a_cent_up(db, august, staff_user):
    make_catalogue(prices={"users": "10.00"})

    draft = record(staff_user, "1.25").price_list

    # 10.00 × 1.0125 = 10.125: commercial rounding gives 10.13 (banker's rounding 10.12).
    assert prices_of(draft)["users"] == Decimal("10.13")


def test_r5_negative_figure_lowers_the_prices(catalogue, august, staff_user):
    draft = record(staff_user, "-1.50").price_list

    # §3.2 indexes by the CPI change without a floor: prices follow it down.
    # 39.00 × 0.985 = 38.415 → 38.42; 12.50 × 0.985 = 12.3125 → 12.31.
    assert prices_of(draft)["base"] == Decimal("38.42")
    assert prices_of(draft)["users"] == Decimal("12.31")


def test_r5_figure_of_zero_keeps_the_prices(catalogue, august, staff_user):
    draft = record(staff_user, "0").price_list

    assert prices_of(draft)["base"] == Decimal("39.00")


@pytest.mark.parametrize(
    ("cpi", "source", "message"),
    [
        ("-100", SOURCE, "nul of negatief"),
        ("-120.5", SOURCE, "nul of negatief"),
        ("3.255", SOURCE, "hoogstens twee decimalen"),
        ("1000", SOURCE, "meer dan 999,99%"),
        ("1e999999", SOURCE, "meer dan 999,99%"),
        ("drie", SOURCE, "als getal"),
        ("3.2", "   ", "bron"),
        ("3.2", "x" * 256, "te lang"),
    ],
)
def test_r5_bad_figure_or_source_is_refused_and_nothing_stored(
    catalogue, august, staff_user, cpi, source, message
):
    with pytest.raises(DomainError, match=message):
        indexation_record_cpi(year=2027, cpi_change=cpi, source=source, staff_user=staff_user)

    assert nothing_stored()


def test_r5_float_figure_is_refused(catalogue, august, staff_user):
    with pytest.raises(DomainError, match="als getal"):
        indexation_record_cpi(year=2027, cpi_change=3.2, source=SOURCE, staff_user=staff_user)

    assert nothing_stored()


def test_r5_figure_before_august_is_refused(catalogue, time_machine, staff_user):
    time_machine.move_to(at(date(2026, 7, 31)), tick=False)

    with pytest.raises(DomainError, match="vanaf 1 augustus 2026"):
        record(staff_user)

    assert nothing_stored()


def test_r5_figure_once_the_year_has_begun_is_refused(catalogue, time_machine, staff_user):
    time_machine.move_to(at(date(2027, 1, 1), hour=9), tick=False)

    with pytest.raises(Conflict, match="2027 is al begonnen"):
        record(staff_user)

    assert nothing_stored()


def test_r5_figure_without_a_price_list_on_31_december_is_refused(db, august, staff_user):
    make_catalogue(valid_from=date(2027, 2, 1))
    PriceList.objects.update(status=PriceList.Status.DRAFT)

    with pytest.raises(DomainError, match="geen goedgekeurde prijslijst die op 31 december 2026"):
        record(staff_user)

    assert IndexationRound.objects.count() == 0


def test_r5_recording_again_before_approval_recomputes_the_same_draft(
    catalogue, august, staff_user
):
    first = record(staff_user, "3.20")

    second = record(staff_user, "2.10", source="CBS, definitief cijfer")

    assert second.pk == first.pk and second.price_list_id == first.price_list_id
    assert second.cpi_change == Decimal("2.10") and second.source == "CBS, definitief cijfer"
    assert prices_of(second.price_list)["base"] == Decimal("39.82")  # 39.00 × 1.021 = 39.819
    assert PriceList.objects.count() == 2
    recorded = AuditEvent.objects.filter(action="billing.indexation_cpi_recorded").order_by("pk")
    assert recorded.last().data["previous"] == {"cpi_change": "3.20", "source": SOURCE}


def test_r5_recording_the_same_figure_twice_changes_nothing(catalogue, august, staff_user):
    first = record(staff_user, "3.20")

    again = record(staff_user, "3.20")

    assert again.pk == first.pk and prices_of(again.price_list)["base"] == Decimal("40.25")
    assert AuditEvent.objects.filter(action="billing.indexation_cpi_recorded").count() == 1


def test_r5_recording_after_approval_is_refused_and_nothing_changes(catalogue, august, staff_user):
    indexation_round = approved_round(staff_user, "3.20")

    with pytest.raises(Conflict, match="al goedgekeurd"):
        record(staff_user, "5.00")

    indexation_round.refresh_from_db()
    assert indexation_round.cpi_change == Decimal("3.20")
    assert prices_of(indexation_round.price_list)["base"] == Decimal("40.25")


# --- R5: importing the figure from CBS ------------------------------------------------------------


def test_r5_import_from_stored_cbs_sample_takes_july_for_all_spending(
    catalogue, august, staff_user
):
    indexation_round = indexation_import_cbs(
        year=2027, json_bytes=SAMPLE.read_bytes(), staff_user=staff_user
    )

    # July 2026, "alle bestedingen" (T001112) is 3.2; food in the same month is 4.1.
    assert indexation_round.cpi_change == Decimal("3.20")
    assert "83131NED" in indexation_round.source and "2026MM07" in indexation_round.source
    assert "juli 2026" in indexation_round.source
    assert prices_of(indexation_round.price_list)["base"] == Decimal("40.25")


@pytest.mark.parametrize(
    "row",
    [
        # 70936ned ("jaarmutatie CPI vanaf 1963") has no categories and calls it _1.
        {"Perioden": "2026MM07", "JaarmutatieCPI_1": 2.7},
        # An UntypedDataSet download gives the number as padded text.
        {"Perioden": "2026MM07", "Bestedingscategorieen": "T001112  ", "JaarmutatieCPI_5": "  2.7"},
    ],
)
def test_r5_import_reads_other_cbs_shapes(catalogue, august, staff_user, row):
    body = json.dumps({"value": [{"Perioden": "2026MM06", "JaarmutatieCPI_1": 9.9}, row]})

    indexation_round = indexation_import_cbs(
        year=2027, json_bytes=body.encode(), staff_user=staff_user
    )

    assert indexation_round.cpi_change == Decimal("2.70")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "geen geldig JSON-bestand"),
        (b"\xff\xfe\x00", "geen geldig JSON-bestand"),
        (b'{"value": [{"Perioden": "2026MM07", "JaarmutatieCPI_1": NaN}]}', "geen geldig JSON"),
        (b"[1, 2, 3]", "lijst 'value'"),
        (b'{"value": "2026MM07"}', "lijst 'value'"),
        (b'{"value": [{"Perioden": "2026MM06", "JaarmutatieCPI_1": 3.1}]}', "juli 2026"),
        (b'{"value": [{"Perioden": "2026MM07", "JaarmutatieCPI_1": null}]}', "leeg of geen getal"),
        (b'{"value": [{"Perioden": "2026MM07", "JaarmutatieCPI_1": "   ."}]}', "leeg of geen"),
        (b"[" * 100_000 + b"]" * 100_000, "geen geldig JSON-bestand"),
        (
            b'{"value": [{"Perioden": "2026MM07", "JaarmutatieCPI_1": 3.2},'
            b' {"Perioden": "2026MM07", "JaarmutatieCPI_1": 3.3}]}',
            "meer dan één",
        ),
    ],
    ids=[
        "broken",
        "not-utf8",
        "nan",
        "list",
        "value-not-a-list",
        "july-missing",
        "null",
        "cbs-empty-dot",
        "deeply-nested",
        "two-julys",
    ],
)
def test_r5_bad_cbs_file_is_refused_and_nothing_stored(
    catalogue, august, staff_user, body, message
):
    with pytest.raises(DomainError, match=message):
        indexation_import_cbs(year=2027, json_bytes=body, staff_user=staff_user)

    assert nothing_stored()


def test_r5_cbs_sample_without_the_needed_july_is_refused(catalogue, time_machine, staff_user):
    time_machine.move_to(at(date(2027, 8, 14)), tick=False)

    # The 2028 round needs July 2027, which the sample does not hold.
    with pytest.raises(DomainError, match="juli 2027"):
        indexation_import_cbs(year=2028, json_bytes=SAMPLE.read_bytes(), staff_user=staff_user)

    assert nothing_stored()


# --- R5: approval and the January invoice -------------------------------------------------------


def test_r5_approval_approves_the_round_and_its_price_list_once(catalogue, august, staff_user):
    indexation_round = record(staff_user)

    approved = indexation_approve(round=indexation_round, staff_user=staff_user)
    again = indexation_approve(round=indexation_round, staff_user=staff_user)

    price_list = PriceList.objects.get(pk=approved.price_list_id)
    assert approved.status == again.status == IndexationRound.Status.APPROVED
    assert approved.approved_by == staff_user and approved.approved_at is not None
    assert price_list.status == PriceList.Status.APPROVED
    assert price_list.approved_by == staff_user
    assert AuditEvent.objects.filter(action="billing.indexation_approved").count() == 1


def test_r5_january_invoice_uses_the_new_prices_and_december_the_old(catalogue, august, staff_user):
    agreement = licence(catalogue, base=1, users=2)
    indexation_round = record(staff_user)
    before_approval = licence_price(agreement=agreement, period_start=date(2027, 1, 1))

    indexation_approve(round=indexation_round, staff_user=staff_user)

    december = licence_price(agreement=agreement, period_start=date(2026, 12, 1))
    january = licence_price(agreement=agreement, period_start=date(2027, 1, 1))
    assert before_approval.total == Decimal("64.00")  # a draft prices nothing
    assert december.total == Decimal("64.00")  # 39.00 + 2 × 12.50
    assert january.price_list.pk == indexation_round.price_list_id
    assert january.total == Decimal("66.05")  # 40.25 + 2 × 12.90


def test_r5_indexation_round_from_figure_to_the_january_invoice(
    catalogue, time_machine, staff_user
):
    from tests.billing.builders import run_month

    time_machine.move_to(at(date(2026, 8, 14)), tick=False)
    agreement = licence(catalogue, base=1, users=2)
    indexation_import_cbs(year=2027, json_bytes=SAMPLE.read_bytes(), staff_user=staff_user)
    indexation_approve(round=IndexationRound.objects.get(year=2027), staff_user=staff_user)

    time_machine.move_to(at(date(2027, 1, 1), hour=3), tick=False)
    run_month(date(2027, 1, 1))

    invoice = Invoice.objects.get(agreement=agreement, period_start=date(2027, 1, 1))
    unit_prices = {line.component_code: line.unit_price for line in invoice.lines.all()}
    assert unit_prices == {"base": Decimal("40.25"), "users": Decimal("12.90")}


def test_r5_approval_from_1_january_is_refused_and_nothing_changes(
    catalogue, time_machine, staff_user
):
    time_machine.move_to(at(date(2026, 12, 31), hour=23), tick=False)
    indexation_round = record(staff_user)
    time_machine.move_to(at(date(2027, 1, 1), hour=0), tick=False)

    with pytest.raises(Conflict, match="2027 is al begonnen"):
        indexation_approve(round=indexation_round, staff_user=staff_user)

    indexation_round.refresh_from_db()
    assert indexation_round.status == IndexationRound.Status.DRAFT
    assert indexation_round.price_list.status == PriceList.Status.DRAFT


def test_r5_approval_next_to_another_approved_list_for_1_january_is_refused(
    catalogue, august, staff_user
):
    indexation_round = record(staff_user)
    PriceList.objects.create(
        name="Handmatige lijst", valid_from=date(2027, 1, 1), status=PriceList.Status.APPROVED
    )

    with pytest.raises(Conflict, match="Handmatige lijst"):
        indexation_approve(round=indexation_round, staff_user=staff_user)

    indexation_round.refresh_from_db()
    assert indexation_round.status == IndexationRound.Status.DRAFT


def test_r5_approval_of_a_draft_moved_off_1_january_is_refused(catalogue, august, staff_user):
    indexation_round = record(staff_user)
    PriceList.objects.filter(pk=indexation_round.price_list_id).update(valid_from=date(2027, 2, 1))

    with pytest.raises(DomainError, match="vanaf 1 januari 2027"):
        indexation_approve(round=indexation_round, staff_user=staff_user)

    assert IndexationRound.objects.get().status == IndexationRound.Status.DRAFT


# --- R6: the portal page ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "monday"),
    [(2027, date(2026, 9, 21)), (2028, date(2027, 9, 27)), (2029, date(2028, 9, 25))],
)
def test_r6_indexation_is_announced_on_the_monday_of_the_last_week_of_september(year, monday):
    announced = indexation_announced_on(year)

    assert announced == monday
    assert announced.weekday() == 0
    # At least four days of that week (Monday to Thursday) lie in September.
    assert announced.month == 9 and announced.day + 3 <= 30


@pytest.mark.parametrize(
    ("september_year", "monday"),
    [(2026, date(2026, 9, 21)), (2027, date(2027, 9, 27)), (2028, date(2028, 9, 25))],
)
def test_r6_page_shows_old_and_new_prices_from_the_monday_of_the_last_week_of_september(
    catalogue, time_machine, staff_user, org_admin, client, september_year, monday
):
    time_machine.move_to(at(date(september_year, 8, 14)), tick=False)
    licence(catalogue, org_admin.organisation, base=1, users=3)
    approved_round(staff_user, "3.20", year=september_year + 1)

    time_machine.move_to(at(monday - timedelta(days=1), hour=23), tick=False)
    client.force_login(org_admin.user)  # a session of that day: sessions expire
    before = client.get(reverse(PAGE)).content.decode()
    time_machine.move_to(at(monday, hour=0), tick=False)
    after = client.get(reverse(PAGE)).content.decode()

    announced = f"maandag {monday.day} september {september_year}"
    assert announced in before
    assert "€ 78,95" not in before and "€ 40,25" not in before
    # Old → new per component, the monthly totals, the figure, its source, the start.
    for text in ("€ 39,00", "€ 40,25", "€ 12,50", "€ 12,90", "€ 37,50", "€ 38,70"):
        assert text in after
    assert "€ 76,50" in after and "€ 78,95" in after  # 39 + 3 × 12.50 → 40.25 + 3 × 12.90
    assert "3,20%" in after and SOURCE in after
    assert f"1 januari {september_year + 1}" in after


def test_r6_page_after_the_monday_without_an_approved_round_says_it_follows(
    catalogue, time_machine, staff_user, org_admin, client
):
    time_machine.move_to(at(date(2026, 8, 14)), tick=False)
    licence(catalogue, org_admin.organisation, base=1)
    record(staff_user)  # a draft is not shown to customers
    time_machine.move_to(at(date(2026, 9, 28)), tick=False)
    client.force_login(org_admin.user)

    page = client.get(reverse(PAGE)).content.decode()

    assert "nog niet vastgesteld" in page
    assert "€ 40,25" not in page


def test_r6_page_before_the_announcement_shows_the_indexation_in_force(
    catalogue, time_machine, staff_user, org_admin, client
):
    time_machine.move_to(at(date(2026, 8, 14)), tick=False)
    licence(catalogue, org_admin.organisation, base=1)
    approved_round(staff_user)
    time_machine.move_to(at(date(2027, 3, 10)), tick=False)
    client.force_login(org_admin.user)

    page = client.get(reverse(PAGE)).content.decode()

    assert "maandag 27 september 2027" in page  # when the 2028 indexation is announced
    assert "Indexatie 2027" in page and "3,20%" in page


def test_r6_page_shows_only_the_active_organisations_licence(
    catalogue, time_machine, staff_user, client
):
    mine = MembershipFactory(role=Role.VIEWER)
    other = MembershipFactory()
    time_machine.move_to(at(date(2026, 8, 14)), tick=False)
    licence(catalogue, mine.organisation, base=1, users=3)
    other_agreement = licence(catalogue, other.organisation, base=1, users=7)
    approved_round(staff_user)
    time_machine.move_to(at(date(2026, 9, 22)), tick=False)
    client.force_login(mine.user)

    page = client.get(reverse(PAGE)).content.decode()

    assert "€ 76,50" in page and "€ 78,95" in page
    # The other organisation's totals (39 + 7 × 12.50 → 40.25 + 7 × 12.90) never show.
    assert "€ 126,50" not in page and "€ 130,55" not in page
    assert other_agreement.number not in page


def test_r6_page_queries_do_not_grow_with_the_licence(catalogue, time_machine, staff_user, client):
    small, large = MembershipFactory(), MembershipFactory()
    time_machine.move_to(at(date(2026, 8, 14)), tick=False)
    licence(catalogue, small.organisation, base=1)
    licence(
        catalogue, large.organisation, base=1, users=9, administrations=4, archive=2, view_only=1
    )
    approved_round(staff_user)
    time_machine.move_to(at(date(2026, 10, 1)), tick=False)

    counts = []
    for membership in (small, large):
        client.force_login(membership.user)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(PAGE)).status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]


def test_r6_page_asks_for_a_login(client, db):
    response = client.get(reverse(PAGE))

    assert response.status_code == 302 and "login" in response["Location"]


# --- R6: the September mailing ------------------------------------------------------------------


def billing_people(organisation, **emails):
    """Members by role: admin and billing get the mailing, member and viewer do not."""
    for role, email in emails.items():
        MembershipFactory(organisation=organisation, role=role, user=UserFactory(email=email))


@pytest.fixture
def customers(catalogue, time_machine, staff_user):
    """Two customers with billing contacts, one whose licence ends in December, one without."""
    time_machine.move_to(at(date(2026, 8, 14)), tick=False)
    bakker = OrganisationFactory(legal_name="Bakkerij Bol", billing_email="facturen@bol.nl")
    billing_people(bakker, admin="FACTUREN@bol.nl", billing="geld@bol.nl", member="bak@bol.nl")
    MembershipFactory(organisation=bakker, role=Role.VIEWER, user=UserFactory(email="kijk@bol.nl"))
    gone = UserFactory(email="weg@bol.nl", is_active=False)
    MembershipFactory(organisation=bakker, role=Role.BILLING, user=gone)
    licence(catalogue, bakker, base=1, users=3)

    smid = OrganisationFactory(legal_name="Smederij Stuk", billing_email="admin@smid.nl")
    billing_people(smid, admin="baas@smid.nl")
    licence(catalogue, smid, base=1, users=7)

    leaving = OrganisationFactory(legal_name="Vertrekt B.V.", billing_email="fin@weg.nl")
    give_mandate(leaving)
    agreement_create(
        organisation=leaving,
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
        quantities={catalogue["base"]: 1},
    )
    OrganisationFactory(legal_name="Zonder Licentie", billing_email="niets@leeg.nl")
    return bakker, smid


def run_mailing_action(day: date) -> str:
    """The registered calendar action for ``day``, in a transaction as the kernel runs it."""
    action = next(a for a in registry.actions() if a.name == "billing.indexation_mailing")
    if not action.is_due(day):
        return "not due"
    with transaction.atomic():
        return action.run(day)


def mails_by_address(mailbox) -> dict[str, list]:
    found: dict[str, list] = {}
    for message in mailbox:
        for address in message.to:
            found.setdefault(address.lower(), []).append(message)
    return found


def test_r6_september_mailing_goes_to_each_billing_contact_once_with_its_own_prices(
    customers, staff_user, time_machine, mailbox, django_capture_on_commit_callbacks
):
    approved_round(staff_user)
    time_machine.move_to(at(date(2026, 9, 2), hour=2), tick=False)

    with django_capture_on_commit_callbacks(execute=True):
        calendar_run_range(start=date(2026, 9, 2), end=date(2026, 9, 3))
    with django_capture_on_commit_callbacks(execute=True):
        calendar_run_range(start=date(2026, 9, 2), end=date(2026, 9, 4))

    mails = mails_by_address(mailbox)
    assert sorted(mails) == [
        "admin@smid.nl",
        "baas@smid.nl",
        "facturen@bol.nl",
        "geld@bol.nl",
    ]
    assert all(len(messages) == 1 for messages in mails.values())
    bakker_mail = mails["geld@bol.nl"][0]
    assert "1 januari 2027" in bakker_mail.subject
    assert "€ 76,50 → € 78,95" in bakker_mail.body  # 39 + 3 × 12.50 → 40.25 + 3 × 12.90
    assert "€ 12,50 → € 12,90" in bakker_mail.body
    assert "3,20%" in bakker_mail.body and "/indexatie/" in bakker_mail.body
    assert "€ 130,55" not in bakker_mail.body
    smid_mail = mails["baas@smid.nl"][0]
    assert "€ 126,50 → € 130,55" in smid_mail.body
    html = smid_mail.alternatives[0][0]
    assert "€ 130,55" in html and "€ 78,95" not in html
    assert IndexationRound.objects.get().mailing_sent_at is not None
    assert AuditEvent.objects.filter(action="billing.indexation_mailing_sent").count() == 1


def test_r6_mailing_waits_for_september(
    customers, staff_user, mailbox, django_capture_on_commit_callbacks
):
    approved_round(staff_user)

    with django_capture_on_commit_callbacks(execute=True):
        in_august = run_mailing_action(date(2026, 8, 31))
    assert in_august == "not due" and mailbox == []
    assert indexation_mailing_send(year=2027, on=date(2026, 8, 31)) == 0

    with django_capture_on_commit_callbacks(execute=True):
        outcome = run_mailing_action(date(2026, 9, 1))

    assert outcome == "indexatiemailing 2027 naar 2 organisatie(s)"
    assert len(mailbox) == 4  # facturen@bol.nl and FACTUREN@bol.nl are one address


def test_r6_mailing_waits_for_approval_and_a_late_approval_still_mails(
    customers, staff_user, time_machine, mailbox, django_capture_on_commit_callbacks
):
    indexation_round = record(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        for day in (date(2026, 9, 1), date(2026, 9, 30), date(2026, 10, 9)):
            assert run_mailing_action(day) == "geen indexatiemailing 2027 te versturen"
    assert mailbox == []

    time_machine.move_to(at(date(2026, 10, 10)), tick=False)
    indexation_approve(round=indexation_round, staff_user=staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        run_mailing_action(date(2026, 10, 10))
        run_mailing_action(date(2026, 10, 11))

    assert len(mailbox) == 4
    assert len({address for message in mailbox for address in message.to}) == 4


def test_r6_no_mailing_after_the_new_year(customers, staff_user, mailbox):
    approved_round(staff_user)

    assert indexation_mailing_send(year=2027, on=date(2027, 1, 1)) == 0
    assert IndexationRound.objects.get().mailing_sent_at is None


def test_r6_mailing_roles_are_the_portals_billing_roles():
    assert {str(role) for role in PERMISSIONS["manage_billing"]} == BILLING_CONTACT_ROLES
    assert {Role.ADMIN.value, Role.BILLING.value} == BILLING_CONTACT_ROLES
    assert Membership._meta.get_field("role").max_length >= max(map(len, BILLING_CONTACT_ROLES))


# --- R6 on PostgreSQL: two calendars at once mail once ------------------------------------------


class CalendarThread:
    """Runs the calendar for one day in a thread with its own connection."""

    def __init__(self, day: date, wrapper):
        self.day = day
        self.wrapper = wrapper
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            with connection.execute_wrapper(self.wrapper):
                calendar_run_range(start=self.day, end=self.day)
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()

    def join(self):
        self.thread.join(WAIT_SECONDS)
        assert not self.thread.is_alive(), "calendar thread did not finish in time"
        if self.error is not None:
            raise self.error


def locks_round(sql: str) -> bool:
    return 'FROM "billing_indexationround"' in sql and "FOR UPDATE" in sql


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r6_two_calendars_at_once_on_postgresql_mail_each_contact_once(
    customers, staff_user, time_machine, mailbox
):
    approved_round(staff_user)
    time_machine.move_to(at(date(2026, 9, 3), hour=2), tick=False)
    first_locked, second_reached = threading.Event(), threading.Event()
    held = False

    def hold_after_lock(execute, sql, params, many, context):
        nonlocal held
        result = execute(sql, params, many, context)
        if not held and locks_round(sql):
            held = True
            first_locked.set()
            if not second_reached.wait(WAIT_SECONDS):
                raise TimeoutError("the second calendar never reached the round")
        return result

    def signal_before_lock(execute, sql, params, many, context):
        if locks_round(sql):
            second_reached.set()
        return execute(sql, params, many, context)

    first = CalendarThread(date(2026, 9, 2), hold_after_lock)
    first.thread.start()
    try:
        assert first_locked.wait(WAIT_SECONDS), "the first calendar never locked the round"
        second = CalendarThread(date(2026, 9, 3), signal_before_lock)
        second.thread.start()
        assert second_reached.wait(WAIT_SECONDS), "the second calendar never got there"
    finally:
        second_reached.set()
    first.join()
    second.join()

    mails = mails_by_address(mailbox)
    assert sorted(mails) == ["admin@smid.nl", "baas@smid.nl", "facturen@bol.nl", "geld@bol.nl"]
    assert all(len(messages) == 1 for messages in mails.values())


# --- Back office ------------------------------------------------------------------------------------


def test_r5_admin_records_the_figure_and_drafts_the_prices(catalogue, staff_client, august):
    response = staff_client.post(
        reverse("admin:billing_indexationround_add"),
        {"year": "2027", "cpi_change": "3,2", "source": SOURCE},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    indexation_round = IndexationRound.objects.get(year=2027)
    assert indexation_round.cpi_change == Decimal("3.20")
    assert prices_of(indexation_round.price_list)["base"] == Decimal("40.25")
    listing = staff_client.get(reverse("admin:billing_indexationround_changelist"))
    assert "Prijslijst 2027 (geïndexeerd)" in listing.content.decode()
    change = staff_client.get(
        reverse("admin:billing_indexationround_change", args=[indexation_round.pk])
    ).content.decode()
    assert "€ 39,00" in change and "€ 40,25" in change


def test_r5_admin_imports_the_cbs_file(catalogue, staff_client, august):
    upload = SimpleUploadedFile("83131NED.json", SAMPLE.read_bytes(), "application/json")

    response = staff_client.post(
        reverse("admin:billing_indexationround_add"),
        {"year": "2027", "cpi_change": "", "source": "", "cbs_file": upload},
    )

    assert response.status_code == 302
    assert IndexationRound.objects.get(year=2027).cpi_change == Decimal("3.20")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cbs_file": SimpleUploadedFile("x.json", b"{kapot", "application/json")}, "geen geldig"),
        ({"cpi_change": "-100", "source": SOURCE}, "nul of negatief"),
        ({"cpi_change": "3,2", "source": ""}, "Vul het CPI-cijfer en de bron in"),
    ],
)
def test_r5_admin_shows_a_bad_figure_or_file_and_stores_nothing(
    catalogue, staff_client, august, data, message
):
    response = staff_client.post(
        reverse("admin:billing_indexationround_add"),
        {"year": "2027", "cpi_change": "", "source": "", **data},
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert nothing_stored()


def test_r5_admin_approves_with_the_goedkeuren_action(catalogue, staff_client, august, staff_user):
    indexation_round = record(staff_user)

    response = staff_client.post(
        reverse("admin:billing_indexationround_changelist"),
        {"action": "approve", "_selected_action": [indexation_round.pk]},
        follow=True,
    )

    assert "goedgekeurd" in response.content.decode()
    indexation_round.refresh_from_db()
    assert indexation_round.status == IndexationRound.Status.APPROVED
    assert indexation_round.price_list.status == PriceList.Status.APPROVED
    change = staff_client.get(
        reverse("admin:billing_indexationround_change", args=[indexation_round.pk])
    ).content.decode()
    assert 'name="cpi_change"' not in change  # approved: read-only
