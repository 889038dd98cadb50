"""Every way a licence ends (§3.6): by the customer (R14), by the vendor (R15),
automatically for non-payment (R13), and what happens after the last day (R16).

A ``Termination`` names the last day of service (``effective_date``). A
customer's termination is *scheduled* until that day has passed; the nightly
calendar then makes it *effective* (``terminations_apply_due``). The vendor's
and the non-payment termination take effect at once.

Locks are always taken in one order — Organisation, Agreement, Termination —
so two services never wait on each other in a circle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import actor_kind_for, audit_record
from afas_sb.calendars import add_months, last_of_month, next_month_start, working_days_before
from afas_sb.errors import Conflict, DomainError
from afas_sb.mail import send_templated_mail

from ..models import Agreement, Organisation, Termination, TermsVersion
from .terms import terms_clear_previous, terms_keep_previous_for_termination

logger = logging.getLogger(__name__)

# R14: "drie werkdagen voor de nieuwe factuurperiode" (§3.6.1).
NOTICE_WORKING_DAYS = 3

# R18: all customer data is kept for one year after the end (§3.6.3).
RETENTION_MONTHS = 12

VENDOR_REASONS = (
    Termination.Reason.BREACH,
    Termination.Reason.SURSEANCE,
    Termination.Reason.BANKRUPTCY,
)

LIVE_TERMINATION = (Termination.Status.SCHEDULED, Termination.Status.EFFECTIVE)

# portal.models.Role.ADMIN; licensing sits below portal and does not import it.
_ADMIN_ROLE = "admin"


# --- Dates (pure functions) ------------------------------------------------------------


@dataclass(frozen=True)
class TerminationDates:
    """What a termination requested on ``requested_on`` means, for the page and the service.

    ``cutoff`` is the last day to avoid the next invoice period; ``end_if_on_time``
    is the last day of service for a request made on or before it, and
    ``end_date`` the last day of service for this request.
    """

    requested_on: date
    next_period_start: date
    cutoff: date
    end_if_on_time: date
    end_if_late: date
    end_date: date
    agreed_end_date: date | None

    @property
    def on_time(self) -> bool:
        return self.requested_on <= self.cutoff

    @property
    def limited_by_agreed_end(self) -> bool:
        """The agreement's own end date comes first; the notice rule does not matter."""
        return self.agreed_end_date is not None and self.end_date == self.agreed_end_date


def termination_dates(*, agreement: Agreement, requested_on: date) -> TerminationDates:
    """The R14 dates for a termination requested on ``requested_on``; see termination_end_date."""
    # An agreement that has not started yet runs at least its first period:
    # the last day of service can never lie before the first (end_date >= start_date).
    reference = max(requested_on, agreement.start_date)
    next_period_start = next_month_start(reference)
    cutoff = working_days_before(next_period_start, NOTICE_WORKING_DAYS)
    end_if_on_time = last_of_month(reference)
    end_if_late = last_of_month(next_period_start)
    end_date = end_if_on_time if requested_on <= cutoff else end_if_late
    if agreement.end_date is not None and agreement.end_date < end_date:
        end_date = agreement.end_date
    return TerminationDates(
        requested_on=requested_on,
        next_period_start=next_period_start,
        cutoff=cutoff,
        end_if_on_time=end_if_on_time,
        end_if_late=end_if_late,
        end_date=end_date,
        agreed_end_date=agreement.end_date,
    )


def termination_end_date(*, agreement: Agreement, requested_on: date) -> date:
    """The last day of service when the customer terminates on ``requested_on`` (R14, §3.6.1).

    Invoice periods are calendar months, invoiced monthly in advance on the
    1st (R7). A request made no later than the 3rd Dutch working day before
    the first day of the next period (the *cutoff*) ends the licence at the
    end of the current period; a later request ends it at the end of the next
    period, which has then already been committed to. Working days are those
    of the Algemene termijnenwet (no weekends, no public holidays).

    Worked example, next period 1 December 2026 (a Tuesday):
    3 working days before it are Mon 30 Nov, Fri 27 Nov, Thu 26 Nov, so the
    cutoff is Thursday 26 November 2026.

    * requested on 26 Nov 2026 (the cutoff itself) -> last day 30 Nov 2026;
    * requested on 27 Nov 2026 (the day after)     -> last day 31 Dec 2026;
    * requested on 1 Dec 2026 (December already invoiced) -> last day 31 Dec 2026
      (the next cutoff, for 1 January 2027, is Tuesday 29 December 2026).

    An agreed end date earlier than the computed day wins (R1). An agreement
    that starts in the future is treated as if the request came on its start
    date, so its first period is its minimum term.

    NEVER CHANGE the result of this function for a given input without a rule
    change in the terms (§3.6.1) and a test naming the rule: customers were
    promised these end dates and invoices were (not) issued because of them.
    """
    return termination_dates(agreement=agreement, requested_on=requested_on).end_date


def data_kept_until(retention_starts_on: date) -> date:
    """The last day customer data is kept: one year after the day after the end (R18)."""
    return add_months(retention_starts_on, RETENTION_MONTHS) - timedelta(days=1)


# --- The customer terminates (R14) -----------------------------------------------------


def agreement_terminate_by_customer(
    *, agreement: Agreement, user, note: str = "", over_terms_version: TermsVersion | None = None
) -> Termination:
    """Record the customer's termination at once; the licence runs until the R14 end date.

    With ``over_terms_version`` the customer terminates over that change of the
    terms (R20): the terms it ran under keep applying for two more months.
    A repeat returns the live termination unchanged (no second mail).
    """
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
        existing = _live_termination(agreement)
        if existing is not None:
            return existing
        if not agreement.is_live:
            raise Conflict(
                _("Overeenkomst %(number)s is al beëindigd.") % {"number": agreement.number},
                code="agreement_terminated",
            )
        end_date = termination_end_date(agreement=agreement, requested_on=clock.today())
        over_terms = over_terms_version is not None
        termination = Termination.objects.create(
            agreement=agreement,
            kind=Termination.Kind.TERMS_CHANGE if over_terms else Termination.Kind.CUSTOMER,
            reason=Termination.Reason.TERMS_CHANGE
            if over_terms
            else Termination.Reason.CUSTOMER_REQUEST,
            note=note.strip(),
            requested_at=clock.now(),
            requested_by=user,
            effective_date=end_date,
            status=Termination.Status.SCHEDULED,
        )
        agreement.status = Agreement.Status.TERMINATING
        agreement.save(update_fields=["status"])
        if over_terms:
            terms_keep_previous_for_termination(
                agreement=agreement,
                new_version=over_terms_version,
                terminated_on=clock.today(),
                actor=user,
            )
        audit_record(
            action="licensing.termination_requested",
            actor_kind=actor_kind_for(user),
            actor_user=user,
            organisation_id=agreement.organisation_id,
            target=termination,
            reason=termination.note,
            data={"agreement": agreement.number, "effective_date": end_date.isoformat()},
        )
        transaction.on_commit(
            lambda: _mail_customer(termination, user, "licensing/email/termination_confirmed")
        )
    return termination


def termination_withdraw(*, termination: Termination, user) -> Termination:
    """Withdraw a scheduled termination, possible up to and including its last day."""
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update().get(pk=termination.agreement_id)
        termination = Termination.objects.select_for_update().get(pk=termination.pk)
        if termination.status == Termination.Status.WITHDRAWN:
            return termination
        if (
            termination.status != Termination.Status.SCHEDULED
            or clock.today() > termination.effective_date
        ):
            raise Conflict(
                _(
                    "Je licentie is geëindigd op %(date)s; de opzegging kan niet meer "
                    "worden ingetrokken."
                )
                % {"date": _long_date(termination.effective_date)},
                code="termination_effective",
            )
        termination.status = Termination.Status.WITHDRAWN
        termination.withdrawn_at = clock.now()
        termination.withdrawn_by = user
        termination.save(update_fields=["status", "withdrawn_at", "withdrawn_by"])
        if agreement.status == Agreement.Status.TERMINATING:
            agreement.status = Agreement.Status.ACTIVE
            agreement.save(update_fields=["status"])
        if termination.kind == Termination.Kind.TERMS_CHANGE:
            # Staying on means accepting the change: the newest terms apply again.
            terms_clear_previous(agreement=agreement, actor=user)
        audit_record(
            action="licensing.termination_withdrawn",
            actor_kind=actor_kind_for(user),
            actor_user=user,
            organisation_id=agreement.organisation_id,
            target=termination,
            data={
                "agreement": agreement.number,
                "effective_date": termination.effective_date.isoformat(),
            },
        )
        transaction.on_commit(
            lambda: _mail_customer(termination, user, "licensing/email/termination_withdrawn")
        )
    return termination


# --- The vendor terminates (R15, R13) ---------------------------------------------------


def agreement_terminate_by_vendor(
    *, agreement: Agreement, reason: str, note: str, staff_user
) -> Termination:
    """End the agreement today, for breach, suspension of payments or bankruptcy (R15).

    Where an accountancy firm serves or pays for the customer, the firm's
    contacts are told (§3.6.2). A repeat on an ended agreement returns its
    termination and tells no one again.
    """
    if reason not in VENDOR_REASONS:
        raise DomainError(
            _("Kies als reden: tekortkoming, surseance van betaling of faillissement."),
            code="invalid_reason",
        )
    termination, created = _terminate_at_once(
        agreement=agreement,
        kind=Termination.Kind.VENDOR,
        reason=reason,
        note=note.strip(),
        on=clock.today(),
        actor=staff_user,
        actor_kind=ActorKind.STAFF,
    )
    if created:
        transaction.on_commit(lambda: _mail_firms(termination))
    return termination


def agreement_terminate_for_non_payment(*, agreement: Agreement, on: date) -> Termination:
    """End the agreement on ``on`` because two subscription invoices are open on the 28th (R13).

    No one is told: "Er wordt hierover geen contact met je opgenomen" (§3.6.2).
    Idempotent: a second call returns the termination of the first.
    """
    termination, _created = _terminate_at_once(
        agreement=agreement,
        kind=Termination.Kind.NON_PAYMENT,
        reason=Termination.Reason.NON_PAYMENT,
        note="",
        on=on,
        actor=None,
        actor_kind=ActorKind.CALENDAR,
    )
    return termination


def _terminate_at_once(
    *, agreement, kind, reason, note, on: date, actor, actor_kind
) -> tuple[Termination, bool]:
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=agreement.organisation_id)
        agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
        existing = _live_termination(agreement, lock=True)
        if existing is not None and existing.status == Termination.Status.EFFECTIVE:
            return existing, False
        if existing is None and not agreement.is_live:
            raise Conflict(
                _("Overeenkomst %(number)s is al beëindigd.") % {"number": agreement.number},
                code="agreement_terminated",
            )
        if existing is not None:
            # A customer's pending termination gives way: the vendor ends it sooner.
            existing.status = Termination.Status.WITHDRAWN
            existing.withdrawn_at = clock.now()
            existing.withdrawn_by = actor
            existing.save(update_fields=["status", "withdrawn_at", "withdrawn_by"])
            audit_record(
                action="licensing.termination_superseded",
                actor_kind=actor_kind,
                actor_user=actor,
                organisation_id=organisation.pk,
                target=existing,
                data={"agreement": agreement.number, "superseded_by": kind},
            )
        # The last day can never lie before the first (an agreement not yet started).
        last_day = max(on, agreement.start_date)
        if agreement.end_date is not None:
            last_day = min(last_day, agreement.end_date)
        termination = Termination.objects.create(
            agreement=agreement,
            kind=kind,
            reason=reason,
            note=note,
            requested_at=clock.now(),
            requested_by=actor,
            effective_date=last_day,
            status=Termination.Status.EFFECTIVE,
        )
        audit_record(
            action="licensing.agreement_terminated_at_once",
            actor_kind=actor_kind,
            actor_user=actor,
            organisation_id=organisation.pk,
            target=termination,
            reason=note,
            data={
                "agreement": agreement.number,
                "kind": kind,
                "reason": reason,
                "effective_date": last_day.isoformat(),
            },
        )
        _end_agreement(
            organisation, agreement, termination.effective_date, actor_kind=actor_kind, actor=actor
        )
    return termination, True


# --- After the last day (R16, R18) ------------------------------------------------------


def terminations_apply_due(*, today: date) -> int:
    """Make every scheduled termination whose last day lies before ``today`` effective.

    Idempotent and safe to run concurrently: each termination is handled in
    its own transaction under row locks (Organisation, Agreement, Termination)
    and re-checked once locked, so a second runner finds it done. Returns how
    many this run applied.
    """
    due = list(
        Termination.objects.filter(status=Termination.Status.SCHEDULED, effective_date__lt=today)
        .order_by("pk")
        .values_list("pk", "agreement_id", "agreement__organisation_id")
    )
    applied = 0
    for termination_id, agreement_id, organisation_id in due:
        with transaction.atomic():
            organisation = Organisation.objects.select_for_update().get(pk=organisation_id)
            agreement = Agreement.objects.select_for_update().get(pk=agreement_id)
            termination = Termination.objects.select_for_update().get(pk=termination_id)
            if (
                termination.status != Termination.Status.SCHEDULED
                or termination.effective_date >= today
            ):
                continue  # withdrawn or applied by someone else meanwhile
            termination.status = Termination.Status.EFFECTIVE
            termination.save(update_fields=["status"])
            audit_record(
                action="licensing.termination_effective",
                actor_kind=ActorKind.CALENDAR,
                organisation_id=organisation.pk,
                target=termination,
                data={
                    "agreement": agreement.number,
                    "effective_date": termination.effective_date.isoformat(),
                },
            )
            _end_agreement(
                organisation, agreement, termination.effective_date, actor_kind=ActorKind.CALENDAR
            )
            applied += 1
    return applied


def agreements_end_at_agreed_date(*, today: date) -> int:
    """R1: an agreement with an agreed end date ends after that day, without a termination.

    Idempotent and safe to run concurrently, like ``terminations_apply_due``.
    """
    due = list(
        Agreement.objects.filter(status=Agreement.Status.ACTIVE, end_date__lt=today)
        .order_by("pk")
        .values_list("pk", "organisation_id")
    )
    ended = 0
    for agreement_id, organisation_id in due:
        with transaction.atomic():
            organisation = Organisation.objects.select_for_update().get(pk=organisation_id)
            agreement = Agreement.objects.select_for_update().get(pk=agreement_id)
            if agreement.status != Agreement.Status.ACTIVE or not agreement.end_date < today:
                continue
            audit_record(
                action="licensing.agreement_ended_on_agreed_date",
                actor_kind=ActorKind.CALENDAR,
                organisation_id=organisation.pk,
                target=agreement,
                data={"end_date": agreement.end_date.isoformat()},
            )
            _end_agreement(
                organisation, agreement, agreement.end_date, actor_kind=ActorKind.CALENDAR
            )
            ended += 1
    return ended


def _end_agreement(
    organisation: Organisation,
    agreement: Agreement,
    last_day: date,
    *,
    actor_kind: str,
    actor=None,
) -> None:
    """The agreement ends on ``last_day``; the organisation too when nothing runs on.

    Callers hold the locks on ``organisation`` and ``agreement``.
    """
    agreement.status = Agreement.Status.TERMINATED
    agreement.end_date = last_day
    agreement.save(update_fields=["status", "end_date"])
    still_live = (
        Agreement.objects.filter(
            organisation=organisation,
            status__in=[Agreement.Status.ACTIVE, Agreement.Status.TERMINATING],
        )
        .exclude(pk=agreement.pk)
        .exists()
    )
    if still_live:
        return
    # R16: no access from the day after; R18: the retention year starts then.
    organisation.status = Organisation.Status.TERMINATED
    organisation.retention_starts_on = last_day + timedelta(days=1)
    organisation.save(update_fields=["status", "retention_starts_on", "updated_at"])
    audit_record(
        action="licensing.organisation_terminated",
        actor_kind=actor_kind,
        actor_user=actor,
        organisation_id=organisation.pk,
        target=organisation,
        data={"retention_starts_on": organisation.retention_starts_on.isoformat()},
    )


def _live_termination(agreement: Agreement, *, lock: bool = False) -> Termination | None:
    queryset = Termination.objects.filter(agreement=agreement, status__in=LIVE_TERMINATION)
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


# --- Mail -------------------------------------------------------------------------------


def _mail_customer(termination: Termination, user, template: str) -> None:
    """To the person who acted and the organisation's subscription contact."""
    agreement = termination.agreement
    organisation = agreement.organisation
    contact_emails = organisation.memberships.filter(is_subscription_contact=True).values_list(
        "user__email", flat=True
    )
    recipients = _unique([getattr(user, "email", ""), *contact_emails])
    if not recipients:
        return
    subjects = {
        "licensing/email/termination_confirmed": _("Bevestiging opzegging licentie %(number)s"),
        "licensing/email/termination_withdrawn": _("Opzegging licentie %(number)s ingetrokken"),
    }
    send_templated_mail(
        to=recipients,
        subject=subjects[template] % {"number": agreement.number},
        template=template,
        context={
            "termination": termination,
            "agreement": agreement,
            "organisation": organisation,
            "user_name": user.get_full_name() if user is not None else "",
            "data_kept_until": data_kept_until(termination.effective_date + timedelta(days=1)),
        },
    )


def _mail_firms(termination: Termination) -> None:
    """R15: the accountancy firm that serves or pays for the customer hears of it."""
    agreement = termination.agreement
    organisation = agreement.organisation
    firms = []
    for firm in (organisation.accountancy_firm, agreement.invoice_to):
        if (
            firm is not None
            and firm.is_accountancy_firm
            and firm.pk != organisation.pk
            and firm not in firms
        ):
            firms.append(firm)
    for firm in firms:
        recipients = _unique(
            firm.memberships.filter(Q(is_subscription_contact=True) | Q(role=_ADMIN_ROLE))
            .order_by("pk")
            .values_list("user__email", flat=True)
        )
        if not recipients:
            logger.warning("accountancy firm without contacts", extra={"firm": firm.pk})
            continue
        send_templated_mail(
            to=recipients,
            subject=_("Licentie van %(client)s beëindigd") % {"client": organisation.legal_name},
            template="licensing/email/vendor_termination_firm",
            context={
                "termination": termination,
                "agreement": agreement,
                "organisation": organisation,
                "firm": firm,
                "pays": agreement.invoice_to_id == firm.pk,
            },
        )


def _unique(emails) -> list[str]:
    seen: dict[str, str] = {}
    for email in emails:
        if email and email.lower() not in seen:
            seen[email.lower()] = email
    return list(seen.values())


def _long_date(day: date) -> str:
    return date_format(day, "j F Y")
