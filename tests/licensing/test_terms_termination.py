"""R20: a customer may terminate over a change of the terms; the old terms then apply two
more months. Through the portal, from the Voorwaarden page to the withdrawal."""

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from licensing.models import Termination, TermsVersion
from licensing.services.agreements import agreement_create
from licensing.services.terms import terms_publish
from tests.factories import give_mandate, make_catalogue

pytestmark = pytest.mark.django_db(transaction=True)


def _version(number, effective):
    version = TermsVersion.objects.create(
        number=number, effective_date=effective, summary=f"Versie {number}", full_text="..."
    )
    return terms_publish(version=version, staff_user=None)


@pytest.fixture
def announced_change(org_admin):
    """The customer runs under 2026.1; 2027.1 is published and takes effect on 1 January."""
    catalogue = make_catalogue()
    with time_machine.travel(date(2026, 11, 2)):
        old = _version("2026.1", date(2026, 1, 1))
        give_mandate(org_admin.organisation)
        agreement = agreement_create(
            organisation=org_admin.organisation,
            start_date=date(2026, 1, 1),
            quantities={catalogue["base"]: 1},
        )
        new = _version("2027.1", date(2027, 1, 1))
    return agreement, old, new


@time_machine.travel(date(2026, 11, 20))
def test_r20_customer_terminates_over_a_change_and_keeps_the_old_terms_two_months(
    org_admin_client, announced_change
):
    agreement, old, new = announced_change

    terms_page = org_admin_client.get(reverse("portal:voorwaarden")).content.decode()
    assert "Opzeggen vanwege deze wijziging" in terms_page
    url = f"{reverse('portal:termination')}?voorwaarden={new.pk}"
    form_page = org_admin_client.get(url).content.decode()
    assert "Je zegt op vanwege de nieuwe voorwaarden (versie 2027.1)" in form_page
    assert "tot en met 20 januari 2027" in form_page

    response = org_admin_client.post(
        url, {"confirm": "on", "end_date": "2026-11-30", "voorwaarden": new.pk}
    )

    assert response.status_code == 302
    termination = Termination.objects.get(agreement=agreement)
    assert termination.kind == Termination.Kind.TERMS_CHANGE
    assert termination.effective_date == date(2026, 11, 30)
    agreement.refresh_from_db()
    assert agreement.previous_terms_version == old
    assert agreement.previous_terms_until == date(2027, 1, 20)
    assert "Tot en met 20 januari 2027 geldt voor jou nog versie 2026.1" in (
        org_admin_client.get(reverse("portal:voorwaarden")).content.decode()
    )


@time_machine.travel(date(2026, 11, 20))
def test_r20_withdrawing_the_termination_accepts_the_new_terms_again(
    org_admin_client, announced_change
):
    agreement, _old, new = announced_change
    url = f"{reverse('portal:termination')}?voorwaarden={new.pk}"
    org_admin_client.post(url, {"confirm": "on", "end_date": "2026-11-30", "voorwaarden": new.pk})

    org_admin_client.post(reverse("portal:termination_withdraw"))

    agreement.refresh_from_db()
    assert agreement.previous_terms_version is None
    assert agreement.previous_terms_until is None
    assert Termination.objects.get(agreement=agreement).status == Termination.Status.WITHDRAWN


@time_machine.travel(date(2026, 11, 20))
def test_r20_an_older_or_unknown_version_gives_an_ordinary_termination(
    org_admin_client, announced_change
):
    agreement, old, _new = announced_change
    url = f"{reverse('portal:termination')}?voorwaarden={old.pk}"

    page = org_admin_client.get(url).content.decode()
    org_admin_client.post(url, {"confirm": "on", "end_date": "2026-11-30", "voorwaarden": old.pk})

    assert "Je zegt op vanwege de nieuwe voorwaarden" not in page
    assert Termination.objects.get(agreement=agreement).kind == Termination.Kind.CUSTOMER
    agreement.refresh_from_db()
    assert agreement.previous_terms_until is None
