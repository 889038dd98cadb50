"""The portal's Administraties page for accountancy firms (R2, R17) and the back office screens."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licensing.models import (
    Administration,
    AdministrationTransfer,
    ChangeSource,
    LicenceChange,
)
from licensing.services import administrations as services
from licensing.services.agreements import agreement_create
from tests.factories import FirmFactory, MembershipFactory, OrganisationFactory

from .test_administrations import (  # noqa: F401 (fixtures)
    START,
    World,
    _march_2026,
    catalogue,
    quantity,
    snapshot,
)

PAGE = reverse("portal:administrations")
ADMINISTRATION_ROUTES = [
    "administration_archive",
    "administration_delete",
    "administration_view_only",
    "administration_export_delete",
    "administration_transfer",
]


@pytest.fixture
def world(catalogue):  # noqa: F811
    return World(catalogue)


@pytest.fixture
def firm_client(client, world):
    client.force_login(world.admin)
    return client


def _create(http, world, **data):
    payload = {"client": world.client.pk, "name": "Jansen Holding", "billed_to": "firm", **data}
    return http.post(reverse("portal:administration_create"), payload)


# --- The page ------------------------------------------------------------------------------


def test_r2_firm_page_lists_administrations_by_client_with_kind_and_payer(firm_client, world):
    world.create(name="Jansen Holding", billed_to_firm=True)
    world.create(name="Jansen Werkmaatschappij", billed_to_firm=False)
    other_client = OrganisationFactory(accountancy_firm=world.firm, legal_name="Pietersen B.V.")
    world.create(name="Pietersen 2026", client=other_client)

    full = firm_client.get(PAGE).content.decode()
    # The list card only: the organisation switcher and the form also name clients.
    page = full[full.index("<main") : full.index('id="create-title"')]

    assert page.index(world.client.legal_name) < page.index("Jansen Holding")
    assert page.index("Jansen Werkmaatschappij") < page.index("Pietersen B.V.")
    assert page.index("Pietersen B.V.") < page.index("Pietersen 2026")
    assert world.firm_agreement.number in page
    assert world.client_agreement.number in page
    assert "Administratie aanmaken" in full


def test_r2_create_through_the_portal_counts_on_the_chosen_agreement(firm_client, world):
    response = _create(firm_client, world, billed_to="client")

    assert response.status_code == 302
    administration = Administration.objects.get()
    assert administration.agreement == world.client_agreement
    assert quantity(world.client_agreement, world.components["standard"]) == 1
    change = LicenceChange.objects.get(
        agreement=world.client_agreement, source=ChangeSource.ADMINISTRATION
    )
    assert change.actor_user == world.admin
    assert "Jansen Holding" in firm_client.get(PAGE).content.decode()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("client_of_other_firm", "Kies een klant van je kantoor."),
        ("empty_name", "Geef de administratie een naam."),
        ("no_client_agreement", "Kies &#x27;factuur naar kantoor&#x27;"),
    ],
)
def test_r2_create_with_bad_input_shows_a_dutch_error_and_changes_nothing(
    firm_client, world, case, message
):
    data = {}
    if case == "client_of_other_firm":
        data["client"] = OrganisationFactory(accountancy_firm=FirmFactory()).pk
    elif case == "empty_name":
        data["name"] = "  "
    elif case == "no_client_agreement":
        data["client"] = OrganisationFactory(accountancy_firm=world.firm).pk
        data["billed_to"] = "client"
    before = snapshot(world)

    response = _create(firm_client, world, **data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert snapshot(world) == before


def test_r2_firm_without_a_live_agreement_is_told_and_cannot_create(client, world):
    firm = FirmFactory()
    admin = MembershipFactory(organisation=firm, role="admin").user
    own_client = OrganisationFactory(accountancy_firm=firm)
    client.force_login(admin)

    page = client.get(PAGE).content.decode()
    response = client.post(
        reverse("portal:administration_create"),
        {"client": own_client.pk, "name": "Jansen", "billed_to": "firm"},
    )

    assert "Je kantoor heeft geen lopende licentie" in page
    assert response.status_code == 400
    assert "heeft geen lopende overeenkomst. Zonder licentie" in response.content.decode()
    assert not Administration.objects.exists()


def test_r2_entrepreneurs_cannot_reach_the_page(client, world):
    client.force_login(world.client_admin)
    administration = world.create()

    assert client.get(PAGE).status_code == 404
    assert _create(client, world).status_code == 404
    for route in ADMINISTRATION_ROUTES:
        assert client.post(reverse(f"portal:{route}", args=[administration.pk])).status_code == 404
    assert Administration.objects.count() == 1


def test_r2_viewer_of_a_firm_reads_but_cannot_change(client, world):
    viewer = MembershipFactory(organisation=world.firm, role="viewer").user
    administration = world.create()
    client.force_login(viewer)
    before = snapshot(world)

    page = client.get(PAGE).content.decode()
    create = _create(client, world)
    delete = client.post(reverse("portal:administration_delete", args=[administration.pk]))

    assert administration.name in page
    assert "Administratie aanmaken" not in page
    assert reverse("portal:administration_delete", args=[administration.pk]) not in page
    assert (create.status_code, delete.status_code) == (403, 403)
    assert snapshot(world) == before


def test_r2_firm_cannot_see_or_touch_another_firms_administrations(client, catalogue):  # noqa: F811
    a, b = World(catalogue), World(catalogue)
    theirs = b.create(name="Geheim van kantoor B")
    b.terminate_client()
    transfer_b = services.administration_transfer_request(
        administration=theirs, to_organisation=b.client, user=b.admin
    )
    client.force_login(a.admin)
    before = (snapshot(a), snapshot(b))

    page = client.get(PAGE).content.decode()
    statuses = {
        route: client.post(reverse(f"portal:{route}", args=[theirs.pk])).status_code
        for route in ADMINISTRATION_ROUTES
    }
    statuses |= {
        route: client.post(reverse(f"portal:{route}", args=[transfer_b.pk])).status_code
        for route in (
            "administration_transfer_accept",
            "administration_transfer_decline",
            "administration_transfer_cancel",
        )
    }

    assert "Geheim van kantoor B" not in page
    assert set(statuses.values()) == {404}, statuses
    assert (snapshot(a), snapshot(b)) == before


# --- Archive, delete and the options after termination ------------------------------------


def test_r17_archive_asks_first_then_converts(firm_client, world):
    administration = world.create()
    url = reverse("portal:administration_archive", args=[administration.pk])

    confirm = firm_client.get(url)
    assert "1 administratie minder en 1 archieflicentie meer" in confirm.content.decode()
    assert Administration.objects.get().kind == Administration.Kind.STANDARD

    response = firm_client.post(url)

    assert response.status_code == 302
    assert Administration.objects.get().kind == Administration.Kind.ARCHIVE
    assert quantity(world.firm_agreement, world.components["archive"]) == 1


def test_r17_delete_asks_first_then_deletes(firm_client, world):
    administration = world.create()
    url = reverse("portal:administration_delete", args=[administration.pk])

    assert "Definitief verwijderen" in firm_client.get(url).content.decode()
    firm_client.post(url)

    assert Administration.objects.get().status == Administration.Status.DELETED
    assert quantity(world.firm_agreement, world.components["standard"]) == 2


def test_r17_options_after_termination_show_only_for_a_terminated_client(firm_client, world):
    administration = world.create()
    view_only = reverse("portal:administration_view_only", args=[administration.pk])

    assert view_only not in firm_client.get(PAGE).content.decode()
    refused = firm_client.post(view_only, follow=True)
    assert "pas als de klant de licentie heeft opgezegd" in refused.content.decode()

    world.terminate_client()
    page = firm_client.get(PAGE).content.decode()

    assert "Licentie opgezegd" in page
    for route in ("administration_view_only", "administration_export_delete"):
        assert reverse(f"portal:{route}", args=[administration.pk]) in page
    assert reverse("portal:administration_transfer", args=[administration.pk]) in page


def test_r17a_view_only_through_the_portal(firm_client, world):
    administration = world.create(billed_to_firm=False)
    world.terminate_client()

    firm_client.post(reverse("portal:administration_view_only", args=[administration.pk]))

    administration.refresh_from_db()
    assert administration.kind == Administration.Kind.VIEW_ONLY
    assert administration.agreement == world.firm_agreement
    assert quantity(world.firm_agreement, world.components["view_only"]) == 1


def test_r17b_export_and_delete_through_the_portal(firm_client, world):
    administration = world.create()
    world.terminate_client()
    url = reverse("portal:administration_export_delete", args=[administration.pk])

    assert "Exporteren en verwijderen" in firm_client.get(url).content.decode()
    firm_client.post(url)

    administration.refresh_from_db()
    assert administration.exported_at is not None
    assert administration.status == Administration.Status.DELETED


def test_r17c_transfer_to_another_firm_by_kvk_accepted_by_its_admin(client, firm_client, world):
    administration = world.create()
    world.terminate_client()
    other = FirmFactory(legal_name="Nieuw Kantoor")
    other_admin = MembershipFactory(organisation=other, role="admin").user
    other_agreement = agreement_create(
        organisation=other, start_date=START, quantities={world.components["base"]: 1}
    )
    url = reverse("portal:administration_transfer", args=[administration.pk])

    unknown = firm_client.post(url, {"destination": "firm", "kvk_number": "99999999"})
    assert "We vinden geen ander accountantskantoor met dit KvK-nummer." in unknown.content.decode()
    assert not AdministrationTransfer.objects.exists()

    firm_client.post(url, {"destination": "firm", "kvk_number": other.kvk_number})
    transfer = AdministrationTransfer.objects.get()
    assert transfer.to_organisation == other
    assert "Overdracht aangevraagd" in firm_client.get(PAGE).content.decode()

    client.force_login(other_admin)
    incoming = client.get(PAGE).content.decode()
    assert administration.name in incoming
    client.post(reverse("portal:administration_transfer_accept", args=[transfer.pk]))

    administration.refresh_from_db()
    assert administration.firm == other
    assert quantity(other_agreement, world.components["standard"]) == 1
    assert quantity(world.firm_agreement, world.components["standard"]) == 2


def test_r17c_client_sees_the_offer_on_the_same_page_and_declines(client, world):
    administration = world.create()
    world.terminate_client()
    transfer = services.administration_transfer_request(
        administration=administration, to_organisation=world.client, user=world.admin
    )
    client.force_login(world.client_admin)

    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Aangeboden overdrachten" in page.content.decode()
    assert administration.name in page.content.decode()

    response = client.post(reverse("portal:administration_transfer_decline", args=[transfer.pk]))

    transfer.refresh_from_db()
    assert transfer.status == AdministrationTransfer.Status.DECLINED
    assert response["Location"] == reverse("portal:dashboard")
    assert client.get(PAGE).status_code == 404


def test_r17c_the_sending_firm_cannot_accept_its_own_offer(firm_client, world):
    administration = world.create()
    world.terminate_client()
    transfer = services.administration_transfer_request(
        administration=administration, to_organisation=world.client, user=world.admin
    )

    response = firm_client.post(
        reverse("portal:administration_transfer_accept", args=[transfer.pk])
    )

    assert response.status_code == 404
    transfer.refresh_from_db()
    assert transfer.status == AdministrationTransfer.Status.PENDING


def test_r17c_firm_cancels_its_pending_transfer(firm_client, world):
    administration = world.create()
    world.terminate_client()
    transfer = services.administration_transfer_request(
        administration=administration, to_organisation=world.client, user=world.admin
    )

    firm_client.post(reverse("portal:administration_transfer_cancel", args=[transfer.pk]))

    transfer.refresh_from_db()
    assert transfer.status == AdministrationTransfer.Status.CANCELLED


# --- Cost and the back office -----------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_r2_page_queries_do_not_grow_with_administrations(firm_client, world):
    world.create()
    world.terminate_client()
    small = _queries(firm_client, PAGE)

    for n in range(10):
        client_n = OrganisationFactory(accountancy_firm=world.firm)
        administration = world.create(name=f"Administratie {n}", client=client_n)
        services.administration_transfer_request(
            administration=administration, to_organisation=client_n, user=world.admin
        )

    assert _queries(firm_client, PAGE) == small


def test_staff_find_administrations_and_transfers_in_the_back_office(staff_client, world):
    administration = world.create(name="Zoekbare administratie")
    world.terminate_client()
    services.administration_transfer_request(
        administration=administration, to_organisation=world.client, user=world.admin
    )

    listing = staff_client.get(
        reverse("admin:licensing_administration_changelist"), {"q": world.firm.legal_name}
    )
    detail = staff_client.get(
        reverse("admin:licensing_administration_change", args=[administration.pk])
    )
    transfers = staff_client.get(
        reverse("admin:licensing_administrationtransfer_changelist"), {"status": "pending"}
    )

    assert "Zoekbare administratie" in listing.content.decode()
    assert world.firm_agreement.number in listing.content.decode()
    assert detail.status_code == 200
    assert "Zoekbare administratie" in transfers.content.decode()
    add = staff_client.get(reverse("admin:licensing_administration_add"))
    assert add.status_code == 403
