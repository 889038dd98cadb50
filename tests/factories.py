import factory
from django.contrib.auth import get_user_model

from licensing.models import Organisation
from portal.models import Membership, Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"persoon{n}@example.nl")
    full_name = factory.Faker("name", locale="nl_NL")
    password = factory.django.Password("Sterk-wachtwoord-2026")

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        """A verified primary address, as allauth requires to log in."""
        if not create:
            return
        from allauth.account.models import EmailAddress

        EmailAddress.objects.get_or_create(
            user=obj, email=obj.email, defaults={"verified": True, "primary": True}
        )


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    kind = Organisation.Kind.ENTREPRENEUR
    legal_name = factory.Sequence(lambda n: f"Ondernemer {n} B.V.")
    kvk_number = factory.Sequence(lambda n: f"{10000000 + n:08d}")
    country = "NL"
    street = "Kerkstraat 1"
    postcode = "1234 AB"
    city = "Utrecht"
    billing_email = factory.Sequence(lambda n: f"facturen{n}@example.nl")


class FirmFactory(OrganisationFactory):
    kind = Organisation.Kind.ACCOUNTANCY_FIRM
    legal_name = factory.Sequence(lambda n: f"Accountantskantoor {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = Role.ADMIN


def make_catalogue(*, valid_from=None, prices=None):
    """The AFAS SB product with its components and an approved price list.

    Returns {code: Component}. ``prices`` overrides unit prices per code.
    """
    from datetime import date
    from decimal import Decimal

    from licensing.models import Component, Price, PriceList, Product

    product, _ = Product.objects.get_or_create(code="afas-sb", defaults={"name": "AFAS SB"})
    rows = [
        ("base", "Basislicentie", "base", "licentie", "39.00"),
        ("users", "Gebruiker", "user", "gebruiker", "12.50"),
        ("administrations", "Extra administratie", "administration", "administratie", "9.95"),
        ("archive", "Archieflicentie", "archive", "administratie", "2.50"),
        ("view_only", "Inkijklicentie", "view_only", "licentie", "7.50"),
    ]
    components = {}
    for position, (code, name, kind, unit, _price) in enumerate(rows, start=1):
        components[code], _ = Component.objects.get_or_create(
            code=code,
            defaults={
                "product": product,
                "name": name,
                "kind": kind,
                "unit": unit,
                "position": position,
            },
        )
    price_list = PriceList.objects.create(
        name="Prijslijst",
        valid_from=valid_from or date(2026, 1, 1),
        status=PriceList.Status.APPROVED,
    )
    overrides = prices or {}
    Price.objects.bulk_create(
        Price(
            price_list=price_list,
            component=components[code],
            unit_price=Decimal(overrides.get(code, price)),
        )
        for code, _name, _kind, _unit, price in rows
    )
    return components


DEFAULT_MANDATE_IBAN = "NL18RABO0123459876"  # valid checksum; BIC RABONL2U


def give_mandate(organisation, iban=DEFAULT_MANDATE_IBAN):
    """A signed direct debit mandate through the real service (R12: a direct customer needs one
    before its agreement starts). The same IBAN again returns the active mandate."""
    from billing.services.mandates import mandate_sign

    return mandate_sign(
        organisation=organisation,
        account_holder=organisation.legal_name[:70],
        iban=iban,
        accepted=True,
        user=None,
        ip=None,
    )


def mandate_if_required(organisation):
    """give_mandate only for a direct entrepreneur without an active mandate (R12)."""
    from billing.services.mandates import mandate_required_but_missing

    if mandate_required_but_missing(organisation=organisation):
        return give_mandate(organisation)
    return None
