"""The yearly CPI indexation (R5, R6; terms §3.2).

§3.2: "We indexeren jaarlijks de prijzen en voeren dit door vanaf de eerste
factuur in het volgende kalenderjaar. Wij houden hierbij rekening met het
Consumentenprijsindexcijfer (CPI), de jaarmutatie van juli van het huidige
jaar. Indexeringsinformatie wordt vanaf de laatste week van september ook
vermeld op de indexeringpagina op de klantportal. Daarnaast wordt er in
september ook een mailing verstuurd over de indexering."

One ``IndexationRound`` per year. ``year`` is the year whose first invoice
carries the new prices; its figure is CBS's year-on-year CPI change of July of
the year before. The course of a round:

1. From 1 August (the July figure exists only once July is over) staff record
   the figure with its source (``indexation_record_cpi``) or import it from a
   CBS OData file (``indexation_import_cbs``). That drafts next year's price
   list: every price valid on 31 December × (1 + CPI/100), rounded to cents.
   Re-recording before approval recomputes the draft.
2. Staff review the draft in the price-list admin and approve the round
   (``indexation_approve``), at the latest on 31 December. The approved list
   is valid from 1 January, so ``licensing.selectors.price_list_on`` prices the
   first invoice of the new year with it, without any switch-over job (R5).
3. From the Monday of the last week of September the portal's indexation page
   shows each customer its old and new prices (``indexation_announced_on``).
4. The calendar mails every billing contact once (``indexation_mailing_send``,
   run daily from 1 September by billing/indexation_calendar.py).

Billing sits below the portal (DESIGN.md: dependencies point one way), so the
mailing reaches portal memberships through ``User.memberships`` and compares
roles by their stored values, without importing the portal.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.errors import Conflict, DomainError, NotFound
from afas_sb.mail import send_templated_mail
from afas_sb.money import ZERO, quantize, to_decimal
from licensing.models import Agreement, LicenceLine, Organisation, Price, PriceList, Termination
from licensing.selectors import price_list_on

from ..models import IndexationRound

logger = logging.getLogger(__name__)

# The CPI month: July of the year before the new prices (§3.2 "juli van het huidige jaar").
CPI_MONTH = 7
# A year-on-year change fits IndexationRound.cpi_change (5 digits, 2 decimals).
CPI_MAX = Decimal("999.99")
CPI_PLACES = Decimal("0.01")
SOURCE_MAX_LENGTH = 255

# Stored values of portal.models.Role for the people who get billing mail;
# portal.tenancy.PERMISSIONS["manage_billing"] holds the same set (a test keeps them equal).
BILLING_CONTACT_ROLES = frozenset({"admin", "billing"})
LIVE_AGREEMENT = (Agreement.Status.ACTIVE, Agreement.Status.TERMINATING)
LIVE_TERMINATION = (Termination.Status.SCHEDULED, Termination.Status.EFFECTIVE)
MAIL_LANGUAGE = "nl"
MAILING_BATCH_SIZE = 200

# CBS OData import. A StatLine download of a whole table runs to tens of
# megabytes; staff download the one month they need (the admin shows the URL).
CBS_MAX_BYTES = 10 * 1024 * 1024
CBS_DEFAULT_TABLE = "83131NED"
# "Alle bestedingen": the headline CPI in tables with a spending-category dimension.
CBS_ALL_SPENDING = "T001112"
CBS_CATEGORY_FIELD = "Bestedingscategorieen"
CBS_PERIOD_FIELD = "Perioden"
# 83131NED calls it JaarmutatieCPI_5, 70936ned JaarmutatieCPI_1: the suffix is a column number.
CBS_CHANGE_FIELD = re.compile(r"^JaarmutatieCPI_\d+$")
CBS_TABLE_IN_URL = re.compile(r"/(\d{5}[A-Z]{3})/", re.IGNORECASE)


# --- Dates -----------------------------------------------------------------------------------


def indexation_cpi_month(year: int) -> date:
    """July of the year before ``year``: the month whose CPI change indexes ``year``'s prices."""
    return date(year - 1, CPI_MONTH, 1)


def indexation_effective_from(year: int) -> date:
    """1 January of ``year``: the first invoice of the calendar year carries the new prices (R5)."""
    return date(year, 1, 1)


def indexation_announced_on(year: int) -> date:
    """The Monday of the last week of September before ``year`` (R6): the portal page opens.

    §3.2: "vanaf de laatste week van september". The last week of September is
    the last Monday-to-Sunday week with at least four of its days in
    September, as ISO 8601 gives a week to the month that holds its Thursday:
    its Monday is three days before the last Thursday of September. That
    Monday always falls between 21 and 27 September (2026: 21 September, 2027:
    27 September, 2028: 25 September).

    Why not the week that holds 30 September: in a year where 30 September is
    a Monday (2024, 2030) that "week" has one September day and the page would
    open on the last day of the month; where it is a Wednesday (2026) only
    three. "Vanaf" is a promise about the latest day the information is there,
    and this Monday is never later than that reading's Monday, so either
    reader of the terms finds the page in time.

    Never change the result for a year whose date has passed: customers were told it.
    """
    last_day = date(year - 1, 9, 30)
    last_thursday = last_day - timedelta(days=(last_day.weekday() - 3) % 7)
    return last_thursday - timedelta(days=3)


def indexation_mailing_window(year: int) -> tuple[date, date]:
    """The days on which the calendar may send ``year``'s mailing: 1 September to 31 December.

    §3.2 says the mailing goes out in September. When staff approve the round
    only after September, the mailing goes out on the next calendar day
    anyway: the new prices still apply from January, and a late notice serves
    the customer better than none. From 1 January the prices are in force and
    the invoice shows them; no mailing is sent any more (approval is refused
    from then on, see ``indexation_approve``).
    """
    return date(year - 1, 9, 1), date(year - 1, 12, 31)


# --- Recording the figure and drafting next year's prices ------------------------------------


def indexation_record_cpi(
    *, year: int, cpi_change: Decimal | int | str, source: str, staff_user
) -> IndexationRound:
    """Record CBS's July CPI change for ``year`` and draft the indexed price list for review.

    Each price of the list valid on 31 December of ``year`` - 1 becomes
    ``quantize(price × (1 + CPI/100))`` in a draft list "Prijslijst <year>
    (geïndexeerd)", valid from 1 January of ``year``. Before approval a new
    figure recomputes the draft (prices edited by hand in the draft are then
    overwritten: the recorded figure decides); after approval it is refused.

    A negative figure lowers the prices. §3.2 says "We indexeren jaarlijks de
    prijzen" and "Wij houden hierbij rekening met het Consumentenprijsindexcijfer
    (CPI), de jaarmutatie van juli": indexing means following the index, and
    the text sets no floor ("nooit lager", "minimaal 0%") anywhere. A floor
    would be an unwritten advantage for the vendor in the vendor's own terms,
    and an unclear clause is read against the party that wrote it. So prices
    follow a negative CPI down exactly as they follow a positive one up; a
    change of -100% or less, which would make prices zero or negative, is
    refused.
    """
    cpi_change, source = _clean_input(year=year, cpi_change=cpi_change, source=source)
    with transaction.atomic():
        indexation_round, created = _lock_or_create_round(
            year=year, cpi_change=cpi_change, source=source
        )
        price_list = _lock_price_list(indexation_round)
        _check_not_approved(indexation_round, price_list)
        base = _base_price_list(year)
        _check_no_other_approved_list(year=year, own=price_list)
        base_prices = list(base.prices.select_related("component").order_by("component_id"))
        new_prices = {
            price.component_id: indexed_price(price.unit_price, cpi_change) for price in base_prices
        }
        if (
            price_list is not None
            and indexation_round.cpi_change == cpi_change
            and indexation_round.source == source
            and _prices_of(price_list) == new_prices
        ):
            return indexation_round  # the same figure again: nothing to redo
        previous = (
            None
            if created
            else {"cpi_change": str(indexation_round.cpi_change), "source": indexation_round.source}
        )
        price_list = _write_draft(
            indexation_round, price_list, base=base, new_prices=new_prices, cpi=cpi_change
        )
        indexation_round.cpi_month = indexation_cpi_month(year)
        indexation_round.cpi_change = cpi_change
        indexation_round.source = source
        indexation_round.price_list = price_list
        indexation_round.save(update_fields=["cpi_month", "cpi_change", "source", "price_list"])
        audit_record(
            action="billing.indexation_cpi_recorded",
            actor_kind=ActorKind.STAFF,
            actor_user=staff_user,
            target=indexation_round,
            data={
                "year": year,
                "cpi_change": str(cpi_change),
                "source": source,
                "previous": previous,
                "base_price_list_id": base.pk,
                "price_list_id": price_list.pk,
                "prices": {str(k): str(v) for k, v in new_prices.items()},
            },
        )
    return indexation_round


def indexation_check_cpi(
    *, year: int, cpi_change: Decimal | int | str, source: str
) -> tuple[Decimal, str]:
    """The checks of ``indexation_record_cpi``, without writing: for a form to show errors first.

    Returns the cleaned figure and source. The service runs the same checks
    again under its locks, so a form that passed them may still be refused.
    """
    cpi_change, source = _clean_input(year=year, cpi_change=cpi_change, source=source)
    indexation_round = (
        IndexationRound.objects.select_related("price_list").filter(year=year).first()
    )
    price_list = indexation_round.price_list if indexation_round is not None else None
    if indexation_round is not None:
        _check_not_approved(indexation_round, price_list)
    _base_price_list(year)
    _check_no_other_approved_list(year=year, own=price_list)
    return cpi_change, source


def indexed_price(unit_price: Decimal, cpi_change: Decimal) -> Decimal:
    """One indexed unit price: × (1 + CPI/100), rounded once to cents, half away from zero."""
    return quantize(unit_price * (1 + cpi_change / 100))


def _clean_input(*, year: int, cpi_change, source: str) -> tuple[Decimal, str]:
    cpi_change = _clean_cpi(cpi_change)
    source = _clean_source(source)
    _check_recording_window(year)
    return cpi_change, source


def _clean_cpi(value) -> Decimal:
    try:
        cpi = to_decimal(value)
    except (TypeError, ValueError):
        raise DomainError(
            _("Vul de CPI-jaarmutatie in als getal in procenten, bijvoorbeeld 3,2."),
            code="cpi_invalid",
        ) from None
    if cpi <= -100:
        raise DomainError(
            _(
                "Een CPI-jaarmutatie van %(cpi)s%% kan niet: de prijzen zouden nul of negatief "
                "worden."
            )
            % {"cpi": number_format(cpi)},
            code="cpi_out_of_range",
        )
    if cpi > CPI_MAX:
        raise DomainError(
            _("Een CPI-jaarmutatie van meer dan %(max)s%% kan niet worden vastgelegd.")
            % {"max": number_format(CPI_MAX)},
            code="cpi_out_of_range",
        )
    if cpi != cpi.quantize(CPI_PLACES):
        raise DomainError(
            _("De CPI-jaarmutatie heeft hoogstens twee decimalen, bijvoorbeeld 3,25."),
            code="cpi_precision",
        )
    return cpi.quantize(CPI_PLACES)


def _clean_source(source: str) -> str:
    source = " ".join((source or "").split())
    if not source:
        raise DomainError(
            _(
                "Vul de bron van het CPI-cijfer in, bijvoorbeeld "
                "'CBS StatLine 83131NED, jaarmutatie CPI juli 2026'."
            ),
            code="source_missing",
        )
    if len(source) > SOURCE_MAX_LENGTH:
        raise DomainError(
            _("De bron is te lang: maximaal %(max)s tekens.") % {"max": SOURCE_MAX_LENGTH},
            code="source_too_long",
        )
    return source


def _check_recording_window(year: int) -> None:
    """The July figure exists from August; from 1 January the year's first invoice has gone out."""
    today = clock.today()
    if today < date(year - 1, CPI_MONTH + 1, 1):
        raise DomainError(
            _(
                "De CPI-jaarmutatie van juli %(prev)s is nog niet bekend. De indexatie voor "
                "%(year)s kan vanaf 1 augustus %(prev)s worden vastgelegd."
            )
            % {"prev": year - 1, "year": year},
            code="cpi_not_yet_known",
        )
    _check_before_new_year(year, today)


def _check_before_new_year(year: int, today: date) -> None:
    if today >= indexation_effective_from(year):
        raise Conflict(
            _(
                "%(year)s is al begonnen: de eerste factuur van het jaar is met de geldende "
                "prijzen verstuurd. De indexatie voor %(year)s kan niet meer worden vastgelegd "
                "of goedgekeurd."
            )
            % {"year": year},
            code="indexation_too_late",
        )


def _lock_or_create_round(
    *, year: int, cpi_change: Decimal, source: str
) -> tuple[IndexationRound, bool]:
    """The year's round, locked; created as a draft when it is the first figure for the year."""
    existing = IndexationRound.objects.select_for_update().filter(year=year).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            created = IndexationRound.objects.create(
                year=year,
                cpi_month=indexation_cpi_month(year),
                cpi_change=cpi_change,
                source=source,
            )
            return created, True
    except IntegrityError:
        # Another request created it a moment ago: wait for it and continue from its row.
        return IndexationRound.objects.select_for_update().get(year=year), False


def _lock_price_list(indexation_round: IndexationRound) -> PriceList | None:
    if indexation_round.price_list_id is None:
        return None
    return PriceList.objects.select_for_update().get(pk=indexation_round.price_list_id)


def _check_not_approved(indexation_round: IndexationRound, price_list: PriceList | None) -> None:
    # Staff may also have approved the draft list itself in the price-list admin.
    if indexation_round.status == IndexationRound.Status.APPROVED or (
        price_list is not None and price_list.status == PriceList.Status.APPROVED
    ):
        raise Conflict(
            _(
                "De indexatie voor %(year)s is al goedgekeurd; het CPI-cijfer kan niet meer "
                "worden gewijzigd."
            )
            % {"year": indexation_round.year},
            code="indexation_approved",
        )


def _base_price_list(year: int) -> PriceList:
    """The approved list valid on 31 December: the prices the indexation starts from."""
    last_day = date(year - 1, 12, 31)
    base = price_list_on(last_day)
    if base is None:
        raise DomainError(
            _(
                "Er is geen goedgekeurde prijslijst die op %(date)s geldt; daar rekent de "
                "indexatie mee. Keur eerst de prijslijst van %(prev)s goed."
            )
            % {"date": date_format(last_day, "j F Y"), "prev": year - 1},
            code="no_base_price_list",
        )
    if not base.prices.exists():
        raise DomainError(
            _("De prijslijst '%(name)s' heeft geen prijzen om te indexeren.") % {"name": base.name},
            code="no_base_prices",
        )
    return base


def _check_no_other_approved_list(*, year: int, own: PriceList | None) -> None:
    """Only one approved list per start date (a database constraint): say so in Dutch first."""
    others = PriceList.objects.filter(
        status=PriceList.Status.APPROVED, valid_from=indexation_effective_from(year)
    )
    if own is not None:
        others = others.exclude(pk=own.pk)
    clash = others.first()
    if clash is not None:
        raise Conflict(
            _(
                "Er is al een goedgekeurde prijslijst vanaf 1 januari %(year)s (%(name)s). "
                "Een geïndexeerde prijslijst kan daar niet naast komen."
            )
            % {"year": year, "name": clash.name},
            code="price_list_exists",
        )


def _prices_of(price_list: PriceList) -> dict[int, Decimal]:
    return dict(price_list.prices.values_list("component_id", "unit_price"))


def _write_draft(
    indexation_round: IndexationRound,
    price_list: PriceList | None,
    *,
    base: PriceList,
    new_prices: dict[int, Decimal],
    cpi: Decimal,
) -> PriceList:
    year = indexation_round.year
    fields = {
        "name": f"Prijslijst {year} (geïndexeerd)",
        "valid_from": indexation_effective_from(year),
        "note": (
            f"Indexatie {year}: prijzen van '{base.name}' × (1 + {cpi}%), "
            "afgerond op centen. Concept tot goedkeuring van de indexatieronde."
        ),
    }
    if price_list is None:
        price_list = PriceList.objects.create(status=PriceList.Status.DRAFT, **fields)
    else:
        for name, value in fields.items():
            setattr(price_list, name, value)
        price_list.save(update_fields=list(fields))
        price_list.prices.all().delete()
    Price.objects.bulk_create(
        Price(price_list=price_list, component_id=component_id, unit_price=unit_price)
        for component_id, unit_price in new_prices.items()
    )
    return price_list


# --- Importing the figure from CBS -------------------------------------------------------------


def indexation_import_cbs(*, year: int, json_bytes: bytes, staff_user) -> IndexationRound:
    """Record the figure from a CBS StatLine OData JSON file (TypedDataSet or UntypedDataSet).

    Reads ``{"value": [row, ...]}`` (OData v3 and v4 both put the rows there),
    takes the row of period ``<year-1>MM07`` and its year-on-year CPI change
    (``JaarmutatieCPI_<n>``: ``_5`` in 83131NED, ``_1`` in 70936ned). Where the
    table has spending categories, only "Alle bestedingen" (T001112) counts.
    The file is parsed with ``json`` only, numbers as Decimal (never a float),
    and limited in size. A bad file or a missing month is refused with a Dutch
    message before anything is stored.
    """
    cpi_change, source = indexation_read_cbs(year=year, json_bytes=json_bytes)
    return indexation_record_cpi(
        year=year, cpi_change=cpi_change, source=source, staff_user=staff_user
    )


def indexation_read_cbs(*, year: int, json_bytes: bytes) -> tuple[Decimal, str]:
    """The July figure for ``year`` and a source line from a CBS OData file; nothing is stored."""
    rows, table = _cbs_rows(json_bytes)
    period = f"{year - 1}MM{CPI_MONTH:02d}"
    field, cpi_change = _cbs_july_change(rows, period=period, year=year)
    month = date_format(indexation_cpi_month(year), "F Y")
    source = (
        f"CBS StatLine {table}, jaarmutatie CPI {month} ({period}, {field}), "
        f"geïmporteerd op {date_format(clock.today(), 'j F Y')}"
    )
    return cpi_change, source


def _cbs_rows(json_bytes: bytes) -> tuple[list[dict], str]:
    if not isinstance(json_bytes, bytes | bytearray):
        raise DomainError(_("Upload het CBS-bestand als JSON-bestand."), code="cbs_invalid")
    if len(json_bytes) > CBS_MAX_BYTES:
        raise DomainError(
            _(
                "Het CBS-bestand is te groot (maximaal %(mb)s MB). Download alleen de maand "
                "juli, zoals de link in het beheer aangeeft."
            )
            % {"mb": CBS_MAX_BYTES // (1024 * 1024)},
            code="cbs_too_large",
        )
    try:
        document = json.loads(
            bytes(json_bytes).decode("utf-8-sig"),
            parse_float=Decimal,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DomainError(
            _("Het bestand is geen geldig JSON-bestand van CBS StatLine."), code="cbs_invalid"
        ) from None
    rows = document.get("value") if isinstance(document, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise DomainError(
            _(
                "Het bestand heeft niet de vorm van een CBS OData-download: er ontbreekt de "
                "lijst 'value' met rijen."
            ),
            code="cbs_invalid",
        )
    context = document.get("odata.metadata") or document.get("@odata.context") or ""
    match = CBS_TABLE_IN_URL.search(context) if isinstance(context, str) else None
    return rows, (match.group(1).upper() if match else CBS_DEFAULT_TABLE)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _cbs_july_change(rows: list[dict], *, period: str, year: int) -> tuple[str, Decimal]:
    found: list[tuple[str, Decimal]] = []
    for row in rows:
        if str(row.get(CBS_PERIOD_FIELD, "")).strip() != period:
            continue
        category = row.get(CBS_CATEGORY_FIELD)
        if category is not None and str(category).strip() != CBS_ALL_SPENDING:
            continue
        found += [
            (key, _cbs_number(value, period=period))
            for key, value in row.items()
            if CBS_CHANGE_FIELD.match(key)
        ]
    if not found:
        raise DomainError(
            _(
                "Het bestand bevat geen jaarmutatie CPI van juli %(prev)s (periode %(period)s, "
                "alle bestedingen), die de indexatie voor %(year)s nodig heeft."
            )
            % {"prev": year - 1, "period": period, "year": year},
            code="cbs_month_missing",
        )
    if len({value for _key, value in found}) > 1:
        raise DomainError(
            _("Het bestand geeft voor %(period)s meer dan één jaarmutatie CPI; kies één tabel.")
            % {"period": period},
            code="cbs_ambiguous",
        )
    return min(found)


def _cbs_number(value, *, period: str) -> Decimal:
    """A typed number (Decimal), or an untyped string such as '   3.2'; CBS's '.' means empty."""
    if isinstance(value, bool) or value is None:
        number = None
    elif isinstance(value, int | Decimal):
        number = Decimal(value)
    else:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():
        raise DomainError(
            _("De jaarmutatie CPI voor %(period)s is in het bestand leeg of geen getal.")
            % {"period": period},
            code="cbs_value_invalid",
        )
    return number


# --- Approval ------------------------------------------------------------------------------------


def indexation_approve(*, round: IndexationRound, staff_user) -> IndexationRound:
    """Approve the round and its price list: from 1 January of ``year`` the list prices invoices.

    Nothing else has to happen on 1 January: ``price_list_on`` picks the
    approved list valid on a period's first day (R4, R5). A repeat is
    harmless. Refused from 1 January of ``year`` on, because that year's first
    invoices then already went out at the old prices (R5 would be broken for
    them), and when the draft was moved off 1 January or emptied in the
    price-list admin.
    """
    with transaction.atomic():
        try:
            indexation_round = IndexationRound.objects.select_for_update().get(pk=round.pk)
        except IndexationRound.DoesNotExist:
            raise NotFound(_("Deze indexatieronde bestaat niet meer.")) from None
        price_list = _lock_price_list(indexation_round)
        if indexation_round.status == IndexationRound.Status.APPROVED:
            return indexation_round
        year = indexation_round.year
        _check_before_new_year(year, clock.today())
        if price_list is None or not price_list.prices.exists():
            raise DomainError(
                _(
                    "De indexatie voor %(year)s heeft nog geen prijslijst met prijzen. Leg eerst "
                    "het CPI-cijfer vast."
                )
                % {"year": year},
                code="no_price_list",
            )
        if price_list.valid_from != indexation_effective_from(year):
            raise DomainError(
                _(
                    "De geïndexeerde prijslijst moet gelden vanaf 1 januari %(year)s, niet vanaf "
                    "%(date)s. Pas de datum aan in de prijslijst of leg het CPI-cijfer opnieuw vast."
                )
                % {"year": year, "date": date_format(price_list.valid_from, "j F Y")},
                code="price_list_wrong_date",
            )
        _check_no_other_approved_list(year=year, own=price_list)
        now = clock.now()
        if price_list.status != PriceList.Status.APPROVED:
            price_list.status = PriceList.Status.APPROVED
            price_list.approved_at = now
            price_list.approved_by = staff_user
            try:
                with transaction.atomic():
                    price_list.save(update_fields=["status", "approved_at", "approved_by"])
            except IntegrityError:
                # An approved list for 1 January appeared since the check above.
                raise Conflict(
                    _("Er is intussen al een goedgekeurde prijslijst vanaf 1 januari %(year)s.")
                    % {"year": year},
                    code="price_list_exists",
                ) from None
        indexation_round.status = IndexationRound.Status.APPROVED
        indexation_round.approved_at = now
        indexation_round.approved_by = staff_user
        indexation_round.save(update_fields=["status", "approved_at", "approved_by"])
        audit_record(
            action="billing.indexation_approved",
            actor_kind=ActorKind.STAFF,
            actor_user=staff_user,
            target=indexation_round,
            data={
                "year": year,
                "cpi_change": str(indexation_round.cpi_change),
                "price_list_id": price_list.pk,
            },
        )
    return indexation_round


# --- What changes for a customer ---------------------------------------------------------------


@dataclass(frozen=True)
class IndexedLine:
    component_name: str
    unit: str
    quantity: int
    old_unit_price: Decimal | None
    new_unit_price: Decimal | None

    @property
    def old_amount(self) -> Decimal | None:
        return (
            None if self.old_unit_price is None else quantize(self.old_unit_price * self.quantity)
        )

    @property
    def new_amount(self) -> Decimal | None:
        return (
            None if self.new_unit_price is None else quantize(self.new_unit_price * self.quantity)
        )


@dataclass(frozen=True)
class IndexationComparison:
    """A licence's monthly price at the old and the indexed prices, per component."""

    agreement: Agreement
    lines: list[IndexedLine]

    @property
    def old_total(self) -> Decimal:
        """Σ of the rounded line amounts, as the invoice adds them up (R4)."""
        return sum((line.old_amount or ZERO for line in self.lines), ZERO)

    @property
    def new_total(self) -> Decimal:
        return sum((line.new_amount or ZERO for line in self.lines), ZERO)

    @property
    def difference(self) -> Decimal:
        return self.new_total - self.old_total


def indexation_round_for(year: int, *, approved: bool = True) -> IndexationRound | None:
    rounds = IndexationRound.objects.select_related("price_list").filter(year=year)
    if approved:
        rounds = rounds.filter(status=IndexationRound.Status.APPROVED)
    return rounds.first()


def indexation_comparisons(
    *, round: IndexationRound, agreements: Iterable[Agreement]
) -> dict[int, IndexationComparison]:
    """Old and new prices of each agreement's licence (quantities of today), by agreement id.

    Old: the approved list valid on 31 December before the round's year, as the
    December invoice is priced. New: the round's list. Three queries, whatever
    the number of agreements.
    """
    agreements = list(agreements)
    old_list = price_list_on(date(round.year - 1, 12, 31))
    list_ids = [pl.pk for pl in (old_list,) if pl is not None]
    if round.price_list_id is not None:
        list_ids.append(round.price_list_id)
    prices: dict[tuple[int, int], Decimal] = {
        (price_list_id, component_id): unit_price
        for price_list_id, component_id, unit_price in Price.objects.filter(
            price_list_id__in=list_ids
        ).values_list("price_list_id", "component_id", "unit_price")
    }
    lines_by_agreement: dict[int, list[LicenceLine]] = {a.pk: [] for a in agreements}
    for line in (
        LicenceLine.objects.filter(agreement__in=[a.pk for a in agreements], quantity__gt=0)
        .select_related("component")
        .order_by("agreement_id", "component__position", "component__name")
    ):
        lines_by_agreement[line.agreement_id].append(line)
    old_id = old_list.pk if old_list is not None else None
    return {
        agreement.pk: IndexationComparison(
            agreement=agreement,
            lines=[
                IndexedLine(
                    component_name=line.component.name,
                    unit=line.component.unit,
                    quantity=line.quantity,
                    old_unit_price=prices.get((old_id, line.component_id)),
                    new_unit_price=prices.get((round.price_list_id, line.component_id)),
                )
                for line in lines_by_agreement[agreement.pk]
            ],
        )
        for agreement in agreements
    }


def indexation_comparison(*, round: IndexationRound, agreement: Agreement) -> IndexationComparison:
    return indexation_comparisons(round=round, agreements=[agreement])[agreement.pk]


def agreements_indexed(*, year: int):
    """Live agreements that still run on 1 January of ``year``: their prices change.

    An agreement that ends before then (agreed end date or a termination
    taking effect) never gets an invoice at the new prices, so its contacts
    are not mailed about them.
    """
    first_day = indexation_effective_from(year)
    ends_before = Termination.objects.filter(
        agreement=OuterRef("pk"), status__in=LIVE_TERMINATION, effective_date__lt=first_day
    )
    return (
        Agreement.objects.filter(
            status__in=LIVE_AGREEMENT, organisation__status=Organisation.Status.ACTIVE
        )
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=first_day))
        .exclude(Exists(ends_before))
    )


# --- The September mailing (R6) ------------------------------------------------------------------


def indexation_mailing_send(*, year: int, on: date) -> int:
    """Mail ``year``'s new prices to every billing contact, once per round (R6).

    Run by the calendar for day ``on`` (see ``indexation_mailing_window``):
    nothing before 1 September, nothing before the round is approved, nothing
    after 31 December. The round's row is locked and ``mailing_sent_at`` set
    in the calendar's transaction; the mails go out after it commits. A second
    or concurrent run (another day, another process) waits for the lock, finds
    ``mailing_sent_at`` and sends nothing. A crash between the commit and the
    last mail loses mails rather than sending any twice. Returns the number of
    organisations mailed (0 when there was nothing to do).
    """
    first, last = indexation_mailing_window(year)
    if not first <= on <= last:
        return 0
    with transaction.atomic():
        indexation_round = (
            IndexationRound.objects.select_for_update()
            .filter(year=year, status=IndexationRound.Status.APPROVED)
            .first()
        )
        if indexation_round is None or indexation_round.mailing_sent_at is not None:
            return 0
        agreement_ids = list(
            agreements_indexed(year=year).order_by("pk").values_list("pk", flat=True)
        )
        indexation_round.mailing_sent_at = clock.now()
        indexation_round.save(update_fields=["mailing_sent_at"])
        audit_record(
            action="billing.indexation_mailing_sent",
            actor_kind=ActorKind.CALENDAR,
            target=indexation_round,
            data={"year": year, "on": on.isoformat(), "agreements": len(agreement_ids)},
        )
        transaction.on_commit(lambda: _send_mailing(indexation_round, agreement_ids))
    return len(agreement_ids)


def billing_contacts(*, organisation_ids: Iterable[int]) -> dict[int, list[str]]:
    """Addresses per organisation: its invoice address, then active beheerders and financieel."""
    organisation_ids = list(organisation_ids)
    contacts: dict[int, list[str]] = {pk: [] for pk in organisation_ids}
    for pk, email in Organisation.objects.filter(pk__in=organisation_ids).values_list(
        "pk", "billing_email"
    ):
        if email:
            contacts[pk].append(email)
    people = (
        get_user_model()
        .objects.filter(
            is_active=True,
            memberships__organisation_id__in=organisation_ids,
            memberships__role__in=BILLING_CONTACT_ROLES,
        )
        .order_by("memberships__organisation_id", "email")
        .values_list("memberships__organisation_id", "email")
    )
    for pk, email in people:
        contacts[pk].append(email)
    return {pk: _unique_addresses(addresses) for pk, addresses in contacts.items()}


def _unique_addresses(addresses: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for address in addresses:
        key = address.strip().lower()
        if key and key not in seen:
            seen.add(key)
            unique.append(address.strip())
    return unique


def _send_mailing(indexation_round: IndexationRound, agreement_ids: list[int]) -> None:
    # The portal sits above billing: its page is reached by URL name, not by import.
    portal_url = settings.SITE_URL + reverse("portal:indexation")
    year = indexation_round.year
    with translation.override(MAIL_LANGUAGE):
        subject = _("Nieuwe prijzen per 1 januari %(year)s") % {"year": year}
    for start in range(0, len(agreement_ids), MAILING_BATCH_SIZE):
        batch = list(
            Agreement.objects.filter(pk__in=agreement_ids[start : start + MAILING_BATCH_SIZE])
            .select_related("organisation")
            .order_by("pk")
        )
        comparisons = indexation_comparisons(round=indexation_round, agreements=batch)
        contacts = billing_contacts(organisation_ids=[a.organisation_id for a in batch])
        for agreement in batch:
            for address in contacts[agreement.organisation_id]:
                try:
                    send_templated_mail(
                        to=[address],
                        subject=subject,
                        template="billing/email/indexation_mailing",
                        context={
                            "round": indexation_round,
                            "organisation": agreement.organisation,
                            "comparison": comparisons[agreement.pk],
                            "effective_from": indexation_effective_from(year),
                            "cpi_month": indexation_cpi_month(year),
                            "announced_on": indexation_announced_on(year),
                            "portal_url": portal_url,
                        },
                        language=MAIL_LANGUAGE,
                    )
                except Exception:
                    # Recorded as sent already: one failing address must not stop the rest.
                    logger.exception(
                        "indexation mailing not delivered",
                        extra={"year": year, "organisation_id": agreement.organisation_id},
                    )
