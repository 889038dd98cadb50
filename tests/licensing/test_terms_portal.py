"""R20 in the portal: the Voorwaarden page, accepting, suggestions, the dashboard notice."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licensing.models import TermsAcceptance, TermsSuggestion, TermsVersion
from licensing.services.agreements import agreement_create
from licensing.services.terms import (
    terms_accept,
    terms_keep_previous_for_termination,
    terms_publish,
    terms_suggest,
)
from portal import navigation
from portal.tenancy import get_access
from portal.terms_views import terms_notice_context
from tests.factories import FirmFactory, MembershipFactory, OrganisationFactory, give_mandate

pytestmark = pytest.mark.django_db

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TODAY = date(2026, 6, 15)
PAGE = "portal:voorwaarden"


def at(day: date):
    return time_machine.travel(datetime.combine(day, time(12), tzinfo=AMSTERDAM), tick=False)


@pytest.fixture(autouse=True)
def _today():
    with at(TODAY):
        yield


def version(number: str, effective: date, *, major=False, publish_on: date | None = TODAY):
    terms = TermsVersion.objects.create(
        number=number,
        effective_date=effective,
        summary=f"Samenvatting {number}: betaaltermijn naar 14 dagen.",
        full_text=f"Volledige tekst {number}: artikel 3.3 Facturatie.",
        is_major=major,
    )
    if publish_on is None:
        return terms
    with at(publish_on):
        return terms_publish(version=terms, staff_user=None)


@pytest.fixture
def live_customer(org_admin):
    """org_admin's organisation with a live agreement, under version 2026.1."""
    old = version("2026.1", date(2026, 1, 1), publish_on=date(2025, 12, 1))
    give_mandate(org_admin.organisation)
    agreement_create(
        organisation=org_admin.organisation, start_date=date(2026, 1, 1), quantities={}
    )
    return org_admin, old


def member_client(client, organisation, role):
    membership = MembershipFactory(organisation=organisation, role=role)
    client.force_login(membership.user)
    return client, membership


# --- The page ------------------------------------------------------------------------------------


def test_terms_page_shows_an_empty_state_before_any_version_is_published(org_admin_client):
    version("2026.9", date(2026, 9, 1), publish_on=None)  # a draft is never shown

    response = org_admin_client.get(reverse(PAGE))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Er is nog geen versie van de voorwaarden gepubliceerd" in page
    assert "2026.9" not in page


def test_r20_terms_page_shows_the_applicable_version_and_the_accept_banner(client, live_customer):
    org_admin, old = live_customer
    new = version("2026.2", date(2026, 7, 1), major=True)
    client.force_login(org_admin.user)

    response = client.get(reverse(PAGE))

    page = response.content.decode()
    assert response.context["applicable"] == old
    assert response.context["newest"] == new
    assert response.context["pending"] == new
    assert "Nieuwe voorwaarden: versie 2026.2" in page
    assert reverse("portal:terms_accept", args=[new.pk]) in page
    assert ">Accepteren</button>" in page
    assert "Samenvatting 2026.2" in page
    assert "Volledige tekst 2026.2" in page and "<details>" in page
    assert "1 juli 2026" in page
    assert "Grote wijziging" in page


def test_r20_accept_button_accepts_for_the_organisation_and_the_banner_goes(client, live_customer):
    org_admin, _ = live_customer
    new = version("2026.2", date(2026, 7, 1))
    client.force_login(org_admin.user)

    response = client.post(reverse("portal:terms_accept", args=[new.pk]), follow=True)

    acceptance = TermsAcceptance.objects.get()
    assert (acceptance.organisation, acceptance.terms_version, acceptance.user) == (
        org_admin.organisation,
        new,
        org_admin.user,
    )
    assert response.context["pending"] is None
    assert "Je hebt versie 2026.2 van de voorwaarden geaccepteerd" in response.content.decode()
    assert ">Accepteren</button>" not in response.content.decode()


@pytest.mark.parametrize("role", ["member", "billing", "viewer"])
def test_r20_only_admins_see_and_use_the_accept_button(client, live_customer, role):
    org_admin, _ = live_customer
    new = version("2026.2", date(2026, 7, 1))
    client, _ = member_client(client, org_admin.organisation, role)

    page = client.get(reverse(PAGE)).content.decode()
    response = client.post(reverse("portal:terms_accept", args=[new.pk]))

    assert "Nieuwe voorwaarden: versie 2026.2" in page
    assert ">Accepteren</button>" not in page
    assert response.status_code == 403
    assert TermsAcceptance.objects.count() == 0


def test_r20_a_draft_version_cannot_be_accepted(org_admin_client, live_customer):
    draft = version("2026.2", date(2026, 7, 1), publish_on=None)

    response = org_admin_client.post(reverse("portal:terms_accept", args=[draft.pk]))

    assert response.status_code == 404
    assert TermsAcceptance.objects.count() == 0


def test_r20_terms_page_shows_the_previous_version_until_the_date_after_terminating_over_a_change(
    client, live_customer
):
    org_admin, old = live_customer
    new = version("2026.2", TODAY)
    agreement = org_admin.organisation.agreements.get()
    terms_keep_previous_for_termination(agreement=agreement, new_version=new, terminated_on=TODAY)
    client.force_login(org_admin.user)

    response = client.get(reverse(PAGE))

    page = response.content.decode()
    assert response.context["applicable"] == old
    assert response.context["keeps_previous_until"] == date(2026, 8, 15)
    assert "Tot en met 15 augustus 2026 geldt voor jou nog versie 2026.1" in page
    with at(date(2026, 8, 16)):
        client.force_login(org_admin.user)  # the session of June has expired by now
        assert client.get(reverse(PAGE)).context["applicable"] == new


# --- Suggestions ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ["admin", "member", "billing"])
def test_r20_suggestion_from_the_page_is_stored_shown_and_mailed_to_support(client, mailbox, role):
    org_admin = MembershipFactory(is_subscription_contact=True)
    new = version("2026.2", date(2026, 7, 1))
    if role != "admin":
        client, _ = member_client(client, org_admin.organisation, role)
    else:
        client.force_login(org_admin.user)

    response = client.post(
        reverse("portal:terms_suggest"),
        {"version": new.pk, "text": "Noem de betaaltermijn ook in de samenvatting."},
        follow=True,
    )

    suggestion = TermsSuggestion.objects.get()
    assert suggestion.organisation == org_admin.organisation
    assert suggestion.terms_version == new
    page = response.content.decode()
    assert "Bedankt voor je verbetervoorstel" in page
    assert "Noem de betaaltermijn ook in de samenvatting." in page
    assert [message.to for message in mailbox] == [[settings.SUPPORT_EMAIL]]


@pytest.mark.parametrize("text", ["", "   "])
def test_r20_empty_suggestion_from_the_page_is_refused_in_dutch_and_nothing_stored(
    org_admin_client, mailbox, text
):
    new = version("2026.2", date(2026, 7, 1))

    response = org_admin_client.post(
        reverse("portal:terms_suggest"), {"version": new.pk, "text": text}
    )

    assert response.status_code == 200
    assert "Schrijf eerst je verbetervoorstel" in response.content.decode()
    assert TermsSuggestion.objects.count() == 0
    assert mailbox == []


def test_r20_viewer_reads_the_terms_but_cannot_send_a_suggestion(client, org_admin):
    new = version("2026.2", date(2026, 7, 1))
    client, _ = member_client(client, org_admin.organisation, "viewer")

    page = client.get(reverse(PAGE)).content.decode()
    response = client.post(reverse("portal:terms_suggest"), {"version": new.pk, "text": "Hoi"})

    assert "Samenvatting 2026.2" in page
    assert 'action="/voorwaarden/verbetervoorstel/"' not in page
    assert response.status_code == 403
    assert TermsSuggestion.objects.count() == 0


def test_r20_suggestion_about_a_draft_is_refused(org_admin_client):
    version("2026.2", date(2026, 7, 1))
    draft = version("2026.3", date(2026, 12, 1), publish_on=None)

    response = org_admin_client.post(
        reverse("portal:terms_suggest"), {"version": draft.pk, "text": "Over het concept"}
    )

    assert "bestaat niet (meer)" in response.content.decode()
    assert TermsSuggestion.objects.count() == 0


# --- Tenant isolation ----------------------------------------------------------------------------


def test_r20_terms_page_never_shows_another_organisations_suggestion_or_acceptance(
    client, org_admin
):
    new = version("2026.2", date(2026, 7, 1))
    other = MembershipFactory(is_subscription_contact=True)
    terms_suggest(
        organisation=other.organisation, version=new, user=other.user, text="Geheim voorstel B"
    )
    terms_accept(organisation=other.organisation, version=new, user=other.user)
    terms_suggest(
        organisation=org_admin.organisation, version=new, user=org_admin.user, text="Voorstel A"
    )
    client.force_login(org_admin.user)

    response = client.get(reverse(PAGE))

    page = response.content.decode()
    assert "Voorstel A" in page
    assert "Geheim voorstel B" not in page
    assert response.context["pending"] == new  # B's acceptance is not A's


def test_r20_accountant_sees_a_clients_terms_read_only(client):
    firm = FirmFactory()
    accountant = MembershipFactory(organisation=firm, is_subscription_contact=True)
    client_org = OrganisationFactory(accountancy_firm=firm)
    MembershipFactory(organisation=client_org, is_subscription_contact=True)
    new = version("2026.2", date(2026, 7, 1))
    client.force_login(accountant.user)
    client.post(reverse("portal:switch_organisation"), {"organisation": client_org.pk})

    page = client.get(reverse(PAGE)).content.decode()
    accept = client.post(reverse("portal:terms_accept", args=[new.pk]))
    suggest = client.post(reverse("portal:terms_suggest"), {"version": new.pk, "text": "Hoi"})

    assert "Samenvatting 2026.2" in page
    assert ">Accepteren</button>" not in page
    assert (accept.status_code, suggest.status_code) == (403, 403)
    assert TermsAcceptance.objects.count() == TermsSuggestion.objects.count() == 0


# --- Navigation and dashboard notice --------------------------------------------------------


def test_voorwaarden_navigation_leads_to_the_terms_page_not_a_placeholder(org_admin_client):
    response = org_admin_client.get(reverse("portal:dashboard"))

    nav = response.context["nav_items"]
    assert [label for _, label, _ in nav][-2:] == ["Voorwaarden", "Persoonlijke gegevens"]
    assert ("voorwaarden", "Voorwaarden", "/voorwaarden/") in [
        (slug, str(label), url) for slug, label, url in nav
    ]
    page = org_admin_client.get("/voorwaarden/")
    assert page.templates[0].name == "portal/terms/terms.html"
    assert navigation.AREAS["voorwaarden"].placeholder is False
    assert all(
        area.placeholder
        for slug, area in navigation.AREAS.items()
        if slug not in ("voorwaarden", "licentie", "facturen", "indexation", "betaalgegevens")
    )


def test_r20_dashboard_notice_shows_a_pending_version(rf, client, live_customer):
    org_admin, old = live_customer
    request = rf.get("/")
    request.user = org_admin.user
    request.session = {}
    access = get_access(request)

    assert terms_notice_context(access)["terms_pending"] == old
    notice = render_to_string("portal/includes/terms_notice.html", terms_notice_context(access))
    assert "Nieuwe voorwaarden" in notice and "Bekijk en accepteer" in notice
    assert reverse(PAGE) in notice

    terms_accept(organisation=org_admin.organisation, version=old, user=org_admin.user)
    notice = render_to_string("portal/includes/terms_notice.html", terms_notice_context(access))
    assert notice.strip() == ""


# --- Cost ---------------------------------------------------------------------------------------


def test_terms_page_queries_do_not_grow_with_versions_and_suggestions(client, live_customer):
    org_admin, _ = live_customer
    client.force_login(org_admin.user)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(PAGE)).status_code == 200
        return len(captured)

    small = queries()
    for n in range(2, 8):
        new = version(f"2027.{n}", date(2027, n, 1))
        terms_accept(organisation=org_admin.organisation, version=new, user=org_admin.user)
        terms_suggest(
            organisation=org_admin.organisation, version=new, user=org_admin.user, text=f"V{n}"
        )

    assert queries() == small
