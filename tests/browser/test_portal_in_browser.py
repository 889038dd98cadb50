"""The newcomer's path in a real browser: Debian's headless Chromium driven by Playwright."""

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server(transactional_db, live_server):
    """The live server with the demo data, loaded before the browser starts: once
    Playwright runs, ORM calls in the test get a connection of their own context."""
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    return live_server


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the
    # test makes between browser steps are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: run `make test`, which installs Debian's chromium.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()
    connections.close_all()


def test_demo_customer_logs_in_and_sees_the_dashboard(server, browser):
    page = browser.new_page(locale="en-US")  # an English browser still gets Dutch

    page.goto(server.url + "/")
    assert page.url.startswith(server.url + "/accounts/login/")
    page.get_by_label("E-mailadres").fill("demo@goudenkorst.nl")
    page.get_by_label("Wachtwoord").fill("Demo-wachtwoord-2026")
    page.get_by_role("button", name="Inloggen").click()

    page.wait_for_url(server.url + "/")
    assert page.get_by_role("heading", name="Welkom, Sanne").is_visible()
    assert (
        page.get_by_role("main")
        .get_by_text("Bakkerij De Gouden Korst B.V.", exact=True)
        .is_visible()
    )
    nav = page.get_by_role("navigation", name="Hoofdmenu")
    for label in [
        "Dashboard",
        "Licentie",
        "Facturen",
        "Betaalgegevens",
        "Meldingen",
        "Wensenlijst",
        "Cursussen",
        "Privacy",
        "Voorwaarden",
    ]:
        assert nav.get_by_role("link", name=label, exact=True).is_visible()

    # Sanne also runs her sister's yoga studio: the switcher changes organisation.
    page.get_by_role("combobox", name="Organisatie").select_option(label="Yogastudio Zen")
    expect(page.get_by_text("Je werkt nu voor Yogastudio Zen.")).to_be_visible(timeout=20_000)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)


def test_wrong_password_shows_a_dutch_message(server, browser):
    page = browser.new_page()

    page.goto(server.url + "/accounts/login/")
    page.get_by_label("E-mailadres").fill("demo@goudenkorst.nl")
    page.get_by_label("Wachtwoord").fill("niet-het-wachtwoord")
    page.get_by_role("button", name="Inloggen").click()

    assert page.get_by_role("alert").inner_text().strip() == (
        "Het door jou opgegeven e-mailadres en/of wachtwoord is niet correct."
    )


def _log_in(page, server, email):
    page.goto(server.url + "/accounts/login/")
    page.get_by_label("E-mailadres").fill(email)
    page.get_by_label("Wachtwoord").fill("Demo-wachtwoord-2026")
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(server.url + "/")


def test_r14_demo_customer_terminates_and_sees_the_right_end_date(server, browser):
    from django.utils import translation
    from django.utils.formats import date_format

    from afas_sb import clock
    from licensing.models import Agreement
    from licensing.services.terminations import termination_dates

    agreement = Agreement.objects.get(organisation__kvk_number="30123456")
    end = termination_dates(agreement=agreement, requested_on=clock.today()).end_date
    with translation.override("nl"):
        shown = date_format(end, "l j F Y")
        short = date_format(end, "j F Y")
    page = browser.new_page()
    _log_in(page, server, "demo@goudenkorst.nl")

    page.get_by_role("link", name="Licentie opzeggen").click()
    expect(page.get_by_test_id("end-date")).to_have_text(shown)
    page.get_by_label("Ik zeg de licentie op").check()
    page.get_by_role("button", name=f"Licentie opzeggen per {short}").click()

    expect(page.get_by_text(f"Je licentie is opgezegd; de laatste dag is {short}.")).to_be_visible(
        timeout=20_000
    )
    expect(page.get_by_role("button", name="Opzegging intrekken")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "termination.png", full_page=True)


def test_r10_demo_customer_downloads_an_invoice_pdf(server, browser, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    page = browser.new_page()
    _log_in(page, server, "demo@goudenkorst.nl")

    page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Facturen").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="PDF").first.click()
    download = download_info.value
    target = tmp_path / download.suggested_filename
    download.save_as(target)

    assert download.suggested_filename.endswith(".pdf")
    assert target.read_bytes().startswith(b"%PDF")
