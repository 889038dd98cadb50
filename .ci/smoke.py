"""Quick-start smoke test: after migrate + seed_demo, every main page answers.

Runs against whatever database DATABASE_URL names (CI: a fresh SQLite file),
with the development settings `make run` uses. Exits non-zero on the first
page that does not answer as expected.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "afas_sb.settings.dev")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from portal.navigation import AREAS  # noqa: E402

CUSTOMER = "demo@goudenkorst.nl"
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


if __name__ == "__main__":
    main()
