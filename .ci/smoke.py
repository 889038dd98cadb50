"""Quick-start smoke test: after migrate + seed_demo, every main page answers.

Runs against whatever database DATABASE_URL names (CI: a fresh SQLite file),
with the development settings `make run` uses. Exits non-zero on the first
page that does not answer as expected. Then it plays the collections demo
(`demo_collections`, about 20 s on SQLite) on today's real date, which the
tests cannot (they pin the date), and checks what its customer sees.
"""

import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "afas_sb.settings.dev")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from portal.navigation import AREAS  # noqa: E402

CUSTOMER = "demo@goudenkorst.nl"
DEMO_DEBTOR = "lotte@hetboeket.nl"  # made by demo_collections; her debits bounce (R13)
PASSWORD = "Demo-wachtwoord-2026"


def check(client: Client, path: str, status: int = 200, contains: str = "") -> None:
    response = client.get(path)
    body = response.content.decode(errors="replace")
    if response.status_code != status or (contains and contains not in body):
        print(f"FAIL {path}: {response.status_code}, expected {status} containing {contains!r}")
        sys.exit(1)
    print(f"ok   {path} ({response.status_code})")


def main() -> None:
    anonymous = Client()
    check(anonymous, "/healthz", contains='"status": "ok"')
    check(anonymous, "/accounts/login/", contains="Inloggen")
    check(anonymous, "/", status=302)

    customer = Client()
    login = customer.post("/accounts/login/", {"login": CUSTOMER, "password": PASSWORD})
    if login.status_code != 302:
        print(f"FAIL demo login for {CUSTOMER}: {login.status_code}")
        sys.exit(1)
    check(customer, "/", contains="Bakkerij De Gouden Korst B.V.")
    check(customer, "/persoonlijke-gegevens/", contains="Contactpersonen")
    for slug in AREAS:
        check(customer, reverse(f"portal:{slug}"))
    check(customer, reverse("portal:termination"))
    check(customer, reverse("portal:administrations"), status=404)  # not a firm
    check(customer, "/api/schema/", contains="openapi")

    staff = get_user_model().objects.get(email="staff@sb.example.nl")
    check(Client(), "/admin/", status=302)
    assert staff.is_staff
    print("smoke: all pages answer")
    collections_demo()


def collections_demo() -> None:
    """R12/R13 on today's date: batches, AM04 returns, the 28th rule; a second run adds nothing."""
    out = io.StringIO()
    call_command("demo_collections", stdout=out)
    story = out.getvalue()
    for expected in ("kalender: batch SB-DD-", "storno AM04", "om over te maken", "R13: "):
        if expected not in story:
            print(f"FAIL demo_collections: no {expected!r} in its story:\n{story}")
            sys.exit(1)
    again = io.StringIO()
    call_command("demo_collections", stdout=again)
    if "Niets nieuws" not in again.getvalue():
        print(f"FAIL demo_collections a second time:\n{again.getvalue()}")
        sys.exit(1)
    customer = Client()
    login = customer.post("/accounts/login/", {"login": DEMO_DEBTOR, "password": PASSWORD})
    if login.status_code != 302:
        print(f"FAIL demo login for {DEMO_DEBTOR}: {login.status_code}")
        sys.exit(1)
    check(customer, reverse("portal:facturen"), contains="AM04")
    check(customer, "/")
    print("smoke: collections demo played")


if __name__ == "__main__":
    main()
