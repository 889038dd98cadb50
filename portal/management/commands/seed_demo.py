"""Demo data: a Dutch and Belgian customer base to click through. Safe to run again."""

from datetime import date
from decimal import Decimal

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.utils import encrypt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from stdnum.nl import btw as nl_btw

from afas_sb import clock
from afas_sb.calendars import first_of_month
from billing.services.mandates import mandate_sign
from billing.services.runs import billing_run_start
from licensing.models import (
    Administration,
    Agreement,
    Component,
    Organisation,
    Price,
    PriceList,
    Product,
    Termination,
    TermsVersion,
)
from licensing.selectors import live_agreement
from licensing.services.administrations import administration_create
from licensing.services.agreements import agreement_create
from licensing.services.terminations import (
    agreement_terminate_by_customer,
    agreement_terminate_by_vendor,
)
from portal.models import Membership, Role

DEMO_PASSWORD = "Demo-wachtwoord-2026"  # noqa: S105 (demo only, printed in the README)
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 (demo only, in the README)
STAFF_EMAIL = "staff@sb.example.nl"

COMPONENTS = [
    # code, name, kind, unit, monthly unit price (2026)
    ("base", "Basislicentie AFAS SB", "base", "licentie", "39.00"),
    ("users", "Gebruiker", "user", "gebruiker", "12.50"),
    ("administrations", "Extra administratie", "administration", "administratie", "9.95"),
    ("archive", "Archieflicentie", "archive", "administratie", "2.50"),
    ("view_only", "Inkijklicentie", "view_only", "licentie", "7.50"),
]
TERMS = [
    (
        "2026.1",
        date(2026, 1, 1),
        "Jaarlijkse actualisatie; verduidelijking van de opzegtermijn.",
        False,
    ),
    (
        "2026.2",
        date(2026, 7, 1),
        "Nieuwe subverwerker voor e-mail; Peppol voor Belgische klanten.",
        True,
    ),
]
ENTREPRENEURS = [
    # legal name, kvk, country, street, postcode, city, peppol (scheme, id) or None
    (
        "Bakkerij De Gouden Korst B.V.",
        "30123456",
        "NL",
        "Oudegracht 112",
        "3511 AV",
        "Utrecht",
        None,
    ),
    ("Fietsenmakerij Van Dijk", "01234567", "NL", "Vismarkt 9", "9712 CA", "Groningen", None),
    (
        "Studio Noord Design B.V.",
        "34567890",
        "NL",
        "NDSM-plein 28",
        "1033 WB",
        "Amsterdam",
        ("0106", "34567890"),
    ),
    (
        "Hoveniersbedrijf Groen & Zn.",
        "17654321",
        "NL",
        "Stratumsedijk 40",
        "5611 NE",
        "Eindhoven",
        None,
    ),
    (
        "Brasserie Het Anker BV",
        "0712345630",
        "BE",
        "Grote Markt 7",
        "2800",
        "Mechelen",
        ("0208", "0712345630"),
    ),
]
FIRMS = [
    (
        "Boekhoudkantoor Jansen & De Vries",
        "32112233",
        "NL",
        "Utrechtseweg 55",
        "3818 EB",
        "Amersfoort",
    ),
    ("Accountants Noord B.V.", "01987654", "NL", "Zaailand 80", "8911 BN", "Leeuwarden"),
    ("Fiduciaire Van den Broeck BV", "0798765405", "BE", "Meir 24", "2000", "Antwerpen"),
]
CLIENTS = [
    # firm kvk, legal name, kvk, country, street, postcode, city, billed via firm?
    (
        "32112233",
        "Kapsalon Knip & Krul",
        "61122334",
        "NL",
        "Langestraat 14",
        "3811 AD",
        "Amersfoort",
        True,
    ),
    (
        "32112233",
        "Installatiebedrijf Bos B.V.",
        "62233445",
        "NL",
        "Kapelweg 3",
        "3818 BL",
        "Amersfoort",
        False,
    ),
    ("32112233", "Yogastudio Zen", "63344556", "NL", "Hof 21", "3811 CJ", "Amersfoort", True),
    (
        "01987654",
        "Melkveehouderij De Terp",
        "01444555",
        "NL",
        "Terpweg 2",
        "9086 AA",
        "Wirdum",
        True,
    ),
    (
        "01987654",
        "Zeilmakerij Harlingen",
        "01555666",
        "NL",
        "Noorderhaven 30",
        "8861 AL",
        "Harlingen",
        False,
    ),
    (
        "0798765405",
        "Chocolaterie Lindeboom",
        "0723456781",
        "BE",
        "Kammenstraat 18",
        "2000",
        "Antwerpen",
        True,
    ),
    (
        "0798765405",
        "Drukkerij Peeters",
        "0734567835",
        "BE",
        "Lange Nieuwstraat 5",
        "2000",
        "Antwerpen",
        False,
    ),
]
# Demo accounts (checksum-valid, not real) for the direct debit mandates, by KvK. R12: every
# entrepreneur billed directly pays by debit; of the firms only Jansen & De Vries chose debit,
# the others pay by transfer.
DEMO_IBANS = {
    "30123456": "NL03RABO0312456789",
    "01234567": "NL67INGB0006543210",
    "34567890": "NL31ABNA0459371826",
    "17654321": "NL18SNSB0938475610",
    "0712345630": "BE39068250123419",
    "32112233": "NL17TRIO0390751234",
    "62233445": "NL56ASNB0707172737",
    "01555666": "NL60KNAB0255512345",
    "0734567835": "BE77001456789042",
}
PEOPLE = [
    # e-mail, name, organisation kvk, role, subscription contact, breach contact
    ("demo@goudenkorst.nl", "Sanne de Bakker", "30123456", Role.ADMIN, True, True),
    ("boekhouding@goudenkorst.nl", "Pieter Smit", "30123456", Role.BILLING, False, False),
    ("verkoop@goudenkorst.nl", "Fatima El Amrani", "30123456", Role.MEMBER, False, True),
    ("stagiair@goudenkorst.nl", "Lucas Visser", "30123456", Role.VIEWER, False, False),
    ("jan@fietsenvandijk.nl", "Jan van Dijk", "01234567", Role.ADMIN, True, False),
    ("eva@studionoord.nl", "Eva Mulder", "34567890", Role.ADMIN, True, True),
    ("ruud@groenzn.nl", "Ruud Groen", "17654321", Role.ADMIN, True, False),
    ("els@hetanker.be", "Els Janssens", "0712345630", Role.ADMIN, True, True),
    ("accountant@jansendevries.nl", "Marleen Jansen", "32112233", Role.ADMIN, True, True),
    ("assistent@jansendevries.nl", "Tom de Vries", "32112233", Role.MEMBER, False, False),
    ("info@accountantsnoord.nl", "Hylke Postma", "01987654", Role.ADMIN, True, False),
    ("an@vandenbroeck.be", "An Van den Broeck", "0798765405", Role.ADMIN, True, True),
    ("marco@knipenkrul.nl", "Marco Bos", "61122334", Role.ADMIN, True, False),
    ("inge@bos-installatie.nl", "Inge Bos", "62233445", Role.ADMIN, True, False),
    # Sanne also keeps the books of her sister's yoga studio: two organisations.
    ("demo@goudenkorst.nl", "Sanne de Bakker", "63344556", Role.ADMIN, True, False),
]


def _nl_vat(kvk: str) -> str:
    """A checksum-valid Dutch VAT id derived from a number, for demo rows only."""
    base = int(kvk) * 7 % 1_000_000_000
    while True:
        candidate = f"NL{base:09d}B01"
        if nl_btw.is_valid(candidate):
            return candidate
        base += 1


def _vat(kvk: str, country: str) -> str:
    return _nl_vat(kvk) if country == "NL" else f"BE{kvk}"


class Command(BaseCommand):
    help = "Create (or refresh) the demo customer base. Idempotent."

    def handle(self, *args, **options):
        if not settings.DEMO_DATA_ALLOWED:
            raise CommandError(
                "seed_demo maakt accounts met bekende wachtwoorden en draait niet in productie."
            )
        with transaction.atomic():
            organisations = self._organisations()
            users = self._people(organisations)
            codes = self._staff()
            components = self._catalogue()
            self._terms()
            self._mandates(organisations)
            self._agreements(organisations, components)
            self._lifecycle(organisations, users)
        # This month's invoices, as the calendar makes them on the 1st (idempotent).
        billing_run_start(period_start=first_of_month(clock.today()))
        self._report(users, codes)

    def _organisations(self) -> dict[str, Organisation]:
        result = {}
        for name, kvk, country, street, postcode, city, peppol in ENTREPRENEURS:
            result[kvk] = self._org(
                kvk,
                country,
                kind=Organisation.Kind.ENTREPRENEUR,
                legal_name=name,
                street=street,
                postcode=postcode,
                city=city,
                peppol=peppol,
            )
        for name, kvk, country, street, postcode, city in FIRMS:
            result[kvk] = self._org(
                kvk,
                country,
                kind=Organisation.Kind.ACCOUNTANCY_FIRM,
                legal_name=name,
                street=street,
                postcode=postcode,
                city=city,
            )
        for firm_kvk, name, kvk, country, street, postcode, city, via_firm in CLIENTS:
            firm = result[firm_kvk]
            result[kvk] = self._org(
                kvk,
                country,
                kind=Organisation.Kind.ENTREPRENEUR,
                legal_name=name,
                street=street,
                postcode=postcode,
                city=city,
                accountancy_firm=firm,
                billed_via=firm if via_firm else None,
            )
        return result

    def _org(self, kvk, country, *, peppol=None, legal_name, **fields) -> Organisation:
        domain = legal_name.lower().split()[0].strip(".,&")
        organisation = Organisation.objects.filter(country=country, kvk_number=kvk).first()
        organisation = organisation or Organisation(country=country, kvk_number=kvk)
        values = {
            "legal_name": legal_name,
            "vat_id": _vat(kvk, country),
            "billing_email": f"facturen@{domain}.{country.lower()}",
            "peppol_scheme": peppol[0] if peppol else "",
            "peppol_endpoint_id": peppol[1] if peppol else "",
            **fields,
        }
        for field, value in values.items():
            setattr(organisation, field, value)
        organisation.full_clean()  # demo data obeys the same validation as real data
        organisation.save()
        return organisation

    def _people(self, organisations) -> list:
        User = get_user_model()
        users = {}
        for email, name, kvk, role, subscription, breach in PEOPLE:
            user = users.get(email) or self._user(User, email, name)
            users[email] = user
            Membership.objects.update_or_create(
                user=user,
                organisation=organisations[kvk],
                defaults={
                    "role": role,
                    "is_subscription_contact": subscription,
                    "is_breach_contact": breach,
                },
            )
        return list(users.values())

    def _user(self, User, email, name, **extra):
        user, created = User.objects.get_or_create(
            email=email, defaults={"full_name": name, **extra}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        return user

    def _staff(self) -> list[str]:
        User = get_user_model()
        staff = self._user(User, STAFF_EMAIL, "Back Office", is_staff=True, is_superuser=True)
        Authenticator.objects.get_or_create(
            user=staff,
            type=Authenticator.Type.TOTP,
            defaults={"data": {"secret": encrypt(DEMO_TOTP_SECRET)}},
        )
        return RecoveryCodes.activate(staff).get_unused_codes()

    def _catalogue(self) -> dict[str, Component]:
        product, _ = Product.objects.update_or_create(
            code="afas-sb", defaults={"name": "AFAS SB", "description": "Online boekhouden"}
        )
        components = {}
        for position, (code, name, kind, unit, _price) in enumerate(COMPONENTS, start=1):
            components[code], _ = Component.objects.update_or_create(
                code=code,
                defaults={
                    "product": product,
                    "name": name,
                    "kind": kind,
                    "unit": unit,
                    "position": position,
                },
            )
        price_list, created = PriceList.objects.get_or_create(
            valid_from=date(2026, 1, 1),
            status=PriceList.Status.APPROVED,
            defaults={"name": "Prijslijst 2026", "approved_at": clock.now()},
        )
        if created:
            Price.objects.bulk_create(
                Price(price_list=price_list, component=components[code], unit_price=Decimal(price))
                for code, _name, _kind, _unit, price in COMPONENTS
            )
        return components

    def _terms(self):
        for number, effective, summary, major in TERMS:
            TermsVersion.objects.get_or_create(
                number=number,
                defaults={
                    "effective_date": effective,
                    "summary": summary,
                    "full_text": f"Algemene voorwaarden AFAS SB, versie {number}.\n\n{summary}",
                    "is_major": major,
                    "published_at": clock.now(),
                },
            )

    def _mandates(self, organisations):
        """Before the agreements: a direct customer's licence starts only with a mandate (R12)."""
        for kvk, organisation in sorted(organisations.items()):
            iban = DEMO_IBANS.get(kvk)
            if iban is None:
                continue
            if organisation.mandates.exists() or not organisation.is_active:
                continue  # seed again, change nothing: also not after a return or a revocation
            admin = (
                Membership.objects.filter(organisation=organisation, role=Role.ADMIN)
                .select_related("user")
                .order_by("pk")
                .first()
            )
            mandate_sign(
                organisation=organisation,
                account_holder=organisation.legal_name,
                iban=iban,
                accepted=True,
                user=admin.user if admin else None,
                ip=None,
            )

    def _agreements(self, organisations, components):
        """Every organisation gets an agreement; quantities vary a little by size."""
        for index, (_kvk, organisation) in enumerate(sorted(organisations.items())):
            if organisation.agreements.exists():  # also an ended one: seed again, change nothing
                continue
            users = 2 + index % 5
            quantities = {components["base"]: 1, components["users"]: users}
            if organisation.is_accountancy_firm:
                quantities[components["users"]] = 6 + index % 4
                quantities[components["administrations"]] = 1 + index % 3
            elif index % 3 == 0:
                quantities[components["administrations"]] = 1
            agreement_create(
                organisation=organisation,
                start_date=date(2025, 1 + index % 12, 1),
                quantities=quantities,
            )

    def _lifecycle(self, organisations, users):
        """Licences in every state: a termination in progress, one ended, client administrations."""
        by_email = {user.email: user for user in users}
        bike_shop = live_agreement(organisation=organisations["01234567"])
        if bike_shop is not None and bike_shop.status == Agreement.Status.ACTIVE:
            agreement_terminate_by_customer(
                agreement=bike_shop,
                user=by_email["jan@fietsenvandijk.nl"],
                note="Stopt met de zaak",
            )
        gardener = live_agreement(organisation=organisations["17654321"])
        if gardener is not None:
            agreement_terminate_by_vendor(
                agreement=gardener,
                reason=Termination.Reason.BANKRUPTCY,
                note="Faillissement uitgesproken (demo)",
                staff_user=None,
            )
        firm = organisations["32112233"]
        if not Administration.objects.filter(firm=firm).exists():
            accountant = by_email["accountant@jansendevries.nl"]
            for kvk, name, billed_to_firm in [
                ("61122334", "Kapsalon Knip & Krul – boekhouding", True),
                ("61122334", "Kapsalon Knip & Krul – holding", True),
                ("62233445", "Installatiebedrijf Bos – 2026", False),
            ]:
                administration_create(
                    firm=firm,
                    client=organisations[kvk],
                    name=name,
                    billed_to_firm=billed_to_firm,
                    user=accountant,
                )

    def _report(self, users, codes):
        out = self.stdout.write
        out(
            self.style.SUCCESS(
                f"Demo data ready: {Organisation.objects.count()} organisations, "
                f"{len(users) + 1} users."
            )
        )
        out("")
        out(f"Portal  http://127.0.0.1:8000/   password for every demo user: {DEMO_PASSWORD}")
        out("  demo@goudenkorst.nl          entrepreneur admin (two organisations: switcher)")
        out("  boekhouding@goudenkorst.nl   billing role;  stagiair@goudenkorst.nl  viewer")
        out("  accountant@jansendevries.nl  accountancy firm admin (sees the firm's clients)")
        out("  els@hetanker.be              Belgian customer")
        out(
            "  jan@fietsenvandijk.nl        termination in progress;  ruud@groenzn.nl  licence ended"
        )
        out(f"Admin   http://127.0.0.1:8000/admin/   {STAFF_EMAIL} / {DEMO_PASSWORD}")
        out(f"  second factor: TOTP secret {DEMO_TOTP_SECRET} (python manage.py demo_totp prints")
        out(f"  the current code) or an unused recovery code: {' '.join(codes[:5])}")
