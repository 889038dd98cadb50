"""Client administrations of an accountancy firm (R2, R17; terms §3.1, §3.6.1, §3.6.3).

Through the public services in licensing.services.administrations. Every
quantity change must show up on the right agreement, in the licence history
with source "administration", and in the audit trail with the person who acted.
"""

import threading
from datetime import date

import pytest
import time_machine
from django.db import connection

from afas_sb import clock
from afas_sb.audit.models import AuditEvent
from afas_sb.errors import Conflict, DomainError, PermissionDenied
from licensing.models import (
    Administration,
    AdministrationTransfer,
    ChangeSource,
    Component,
    LicenceChange,
    LicenceLine,
    Product,
)
from licensing.services import administrations as services
from licensing.services.agreements import agreement_create
from licensing.services.terminations import (
    agreement_terminate_by_customer,
    agreement_terminate_for_non_payment,
)
from tests.factories import FirmFactory, MembershipFactory, OrganisationFactory, give_mandate

START = date(2026, 1, 1)
WAIT_SECONDS = 10


# --- Set-up shared with the portal tests ---------------------------------------------------


@pytest.fixture(autouse=True)
def _march_2026():
    """A working day well inside the agreements' first year; time runs on."""
    with time_machine.travel(clock.start_of_day(date(2026, 3, 10)).replace(hour=10), tick=True):
        yield


@pytest.fixture
def catalogue(db):
    product = Product.objects.create(code="afas-sb", name="AFAS SB")

    def component(code, kind, position):
        return Component.objects.create(
            product=product,
            code=code,
            name=code.capitalize(),
            kind=kind,
            unit=kind,
            position=position,
        )

    return {
        "base": component("basis", Component.Kind.BASE, 1),
        "user": component("gebruikers", Component.Kind.USER, 2),
        "standard": component("administraties", Component.Kind.ADMINISTRATION, 3),
        "archive": component("archief", Component.Kind.ARCHIVE, 4),
        "view_only": component("inkijk", Component.Kind.VIEW_ONLY, 5),
    }


class World:
    """A firm with its admin and agreement, and a client with its own agreement."""

    def __init__(self, catalogue):
        self.components = catalogue
        self.firm = FirmFactory()
        self.admin = MembershipFactory(organisation=self.firm, role="admin").user
        self.firm_agreement = agreement_create(
            organisation=self.firm,
            start_date=START,
            quantities={catalogue["base"]: 1, catalogue["standard"]: 2},
        )
        self.client = OrganisationFactory(accountancy_firm=self.firm)
        self.client_admin = MembershipFactory(organisation=self.client, role="admin").user
        give_mandate(self.client)  # a direct customer of its own (R12)
        self.client_agreement = agreement_create(
            organisation=self.client, start_date=START, quantities={catalogue["base"]: 1}
        )

    def create(self, name="Bakkerij Jansen 2026", *, billed_to_firm=True, client=None):
        return services.administration_create(
            firm=self.firm,
            client=client or self.client,
            name=name,
            billed_to_firm=billed_to_firm,
            user=self.admin,
        )

    def terminate_client(self, *, at_once=False):
        """The client terminates (agreement terminating), or its licence ends today (terminated)."""
        if at_once:
            agreement_terminate_for_non_payment(agreement=self.client_agreement, on=clock.today())
        else:
            agreement_terminate_by_customer(agreement=self.client_agreement, user=self.client_admin)
        self.client_agreement.refresh_from_db()


@pytest.fixture
def world(catalogue):
    return World(catalogue)


def quantity(agreement, component) -> int:
    line = LicenceLine.objects.filter(agreement=agreement, component=component).first()
    return line.quantity if line else 0


def counts(world) -> dict:
    """Every quantity of every component on both agreements: "nothing changed" is this unchanged."""
    return {
        (agreement.pk, key): quantity(agreement, component)
        for agreement in (world.firm_agreement, world.client_agreement)
        for key, component in world.components.items()
    }


def snapshot(world) -> tuple:
    return (
        counts(world),
        LicenceChange.objects.count(),
        AuditEvent.objects.count(),
        list(Administration.objects.values_list("pk", "kind", "status", "agreement_id", "firm_id")),
        list(AdministrationTransfer.objects.values_list("pk", "status")),
    )


# --- R2: creating an administration ----------------------------------------------------------


def test_r2_create_billed_to_firm_counts_one_administration_on_the_firm_agreement(world):
    administration = world.create()

    assert administration.agreement == world.firm_agreement
    assert administration.kind == Administration.Kind.STANDARD
    assert administration.status == Administration.Status.ACTIVE
    assert quantity(world.firm_agreement, world.components["standard"]) == 3
    change = LicenceChange.objects.filter(agreement=world.firm_agreement).first()
    assert (change.old_quantity, change.new_quantity) == (2, 3)
    assert change.source == ChangeSource.ADMINISTRATION
    assert change.actor_user == world.admin
    assert "Bakkerij Jansen 2026" in change.note
    event = AuditEvent.objects.get(action="licensing.administration_created")
    assert event.actor_user == world.admin
    assert event.organisation_id == world.firm.pk
    assert event.data["billed_to"] == "firm"


def test_r2_create_billed_to_client_counts_on_the_clients_own_agreement(world):
    administration = world.create(billed_to_firm=False)

    assert administration.agreement == world.client_agreement
    assert quantity(world.client_agreement, world.components["standard"]) == 1
    assert quantity(world.firm_agreement, world.components["standard"]) == 2
    assert AuditEvent.objects.get(action="licensing.administration_created").data["billed_to"] == (
        "client"
    )


def test_r2_create_strips_the_name(world):
    assert world.create(name="  Jansen  ").name == "Jansen"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("client_of_other_firm", "is geen klant van"),
        ("no_firm_agreement", "heeft geen lopende overeenkomst. Zonder licentie"),
        ("no_client_agreement", "Kies 'factuur naar kantoor'"),
        ("empty_name", "Geef de administratie een naam."),
        ("no_component", "Er is geen actief licentieonderdeel 'Administratie'"),
        ("two_components", "meerdere actieve licentieonderdelen 'Administratie'"),
        ("not_a_member", "Je hebt geen toegang tot de administraties van"),
    ],
)
def test_r2_create_with_bad_input_is_refused_in_dutch_and_changes_nothing(world, case, message):
    kwargs = {
        "firm": world.firm,
        "client": world.client,
        "name": "Nieuwe administratie",
        "billed_to_firm": True,
        "user": world.admin,
    }
    if case == "client_of_other_firm":
        kwargs["client"] = OrganisationFactory(accountancy_firm=FirmFactory())
    elif case == "no_firm_agreement":
        agreement_terminate_for_non_payment(agreement=world.firm_agreement, on=clock.today())
    elif case == "no_client_agreement":
        kwargs["client"] = OrganisationFactory(accountancy_firm=world.firm)
        kwargs["billed_to_firm"] = False
    elif case == "empty_name":
        kwargs["name"] = "   "
    elif case == "no_component":
        world.components["standard"].is_active = False
        world.components["standard"].save()
    elif case == "two_components":
        Component.objects.create(
            product=world.components["standard"].product,
            code="administraties-2",
            name="Administratie (oud)",
            kind=Component.Kind.ADMINISTRATION,
            unit="administratie",
        )
    elif case == "not_a_member":
        kwargs["user"] = world.client_admin
    before = snapshot(world)

    with pytest.raises(DomainError) as raised:
        services.administration_create(**kwargs)

    assert message in raised.value.message
    assert snapshot(world) == before


# --- R17: archive and delete -------------------------------------------------------------------


def test_r17_convert_to_archive_moves_one_administration_to_an_archive_licence(world):
    administration = world.create()

    services.administration_convert_to_archive(administration=administration, user=world.admin)
    again = services.administration_convert_to_archive(
        administration=administration, user=world.admin
    )

    assert again.kind == Administration.Kind.ARCHIVE
    assert quantity(world.firm_agreement, world.components["standard"]) == 2
    assert quantity(world.firm_agreement, world.components["archive"]) == 1
    changes = LicenceChange.objects.filter(
        source=ChangeSource.ADMINISTRATION, note__contains="archieflicentie"
    )
    assert changes.count() == 2  # −1 administration, +1 archive; the repeat added nothing
    assert AuditEvent.objects.filter(action="licensing.administration_archived").count() == 1


def test_r17_only_a_standard_administration_becomes_an_archive(world):
    administration = world.create()
    world.terminate_client()
    services.administration_take_view_only(administration=administration, user=world.admin)

    with pytest.raises(Conflict, match="Alleen een gewone administratie"):
        services.administration_convert_to_archive(administration=administration, user=world.admin)


def test_r17_delete_counts_one_less_and_a_repeat_is_harmless(world):
    administration = world.create()

    services.administration_delete(administration=administration, user=world.admin)
    services.administration_delete(administration=administration, user=world.admin)

    administration.refresh_from_db()
    assert administration.status == Administration.Status.DELETED
    assert administration.ended_at is not None
    assert quantity(world.firm_agreement, world.components["standard"]) == 2
    assert AuditEvent.objects.filter(action="licensing.administration_deleted").count() == 1


def test_r17_delete_of_an_archive_counts_one_archive_less(world):
    administration = world.create()
    services.administration_convert_to_archive(administration=administration, user=world.admin)

    services.administration_delete(administration=administration, user=world.admin)

    assert quantity(world.firm_agreement, world.components["archive"]) == 0
    assert quantity(world.firm_agreement, world.components["standard"]) == 2


# --- R17a–c: after the client terminated --------------------------------------------------------


def test_r17a_view_only_moves_the_unit_from_the_clients_agreement_to_the_firms(world):
    administration = world.create(billed_to_firm=False)
    world.terminate_client()

    services.administration_take_view_only(administration=administration, user=world.admin)
    services.administration_take_view_only(administration=administration, user=world.admin)

    administration.refresh_from_db()
    assert administration.kind == Administration.Kind.VIEW_ONLY
    assert administration.agreement == world.firm_agreement
    assert quantity(world.client_agreement, world.components["standard"]) == 0
    assert quantity(world.firm_agreement, world.components["view_only"]) == 1
    assert quantity(world.firm_agreement, world.components["standard"]) == 2
    event = AuditEvent.objects.get(action="licensing.administration_view_only")
    assert event.actor_user == world.admin
    assert event.data["from"] == {"kind": "standard", "agreement": world.client_agreement.number}


def test_r17a_a_terminated_client_agreement_keeps_its_final_counts(world):
    administration = world.create(billed_to_firm=False)
    world.terminate_client(at_once=True)

    services.administration_take_view_only(administration=administration, user=world.admin)

    # The ended agreement bills nothing more; its last counts stay as billed.
    assert quantity(world.client_agreement, world.components["standard"]) == 1
    assert quantity(world.firm_agreement, world.components["view_only"]) == 1


def test_r17_options_after_termination_are_refused_while_the_client_is_active(world):
    administration = world.create()
    before = snapshot(world)

    for service in (
        services.administration_take_view_only,
        services.administration_export_and_delete,
    ):
        with pytest.raises(Conflict, match="pas als de klant de licentie heeft opgezegd"):
            service(administration=administration, user=world.admin)

    assert snapshot(world) == before


def test_r17b_export_and_delete_records_the_export_before_deleting(world):
    administration = world.create()
    world.terminate_client()

    services.administration_export_and_delete(administration=administration, user=world.admin)
    services.administration_export_and_delete(administration=administration, user=world.admin)

    administration.refresh_from_db()
    assert administration.exported_at is not None
    assert administration.status == Administration.Status.DELETED
    assert administration.exported_at <= administration.ended_at
    assert quantity(world.firm_agreement, world.components["standard"]) == 2
    actions = list(
        AuditEvent.objects.filter(action__startswith="licensing.administration_")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "licensing.administration_created",
        "licensing.administration_exported",
        "licensing.administration_deleted",
    ]


def _other_firm_with_admin(world, with_agreement=True):
    other = FirmFactory()
    other_admin = MembershipFactory(organisation=other, role="admin").user
    agreement = None
    if with_agreement:
        agreement = agreement_create(
            organisation=other, start_date=START, quantities={world.components["base"]: 1}
        )
    return other, other_admin, agreement


def test_r17c_transfer_to_another_firm_accepted_moves_the_quantity(world):
    administration = world.create()
    world.terminate_client()
    other, other_admin, other_agreement = _other_firm_with_admin(world)

    transfer = services.administration_transfer_request(
        administration=administration, to_organisation=other, user=world.admin
    )
    assert transfer.status == AdministrationTransfer.Status.PENDING
    services.administration_transfer_accept(transfer=transfer, user=other_admin)
    services.administration_transfer_accept(transfer=transfer, user=other_admin)

    transfer.refresh_from_db()
    administration.refresh_from_db()
    assert transfer.status == AdministrationTransfer.Status.ACCEPTED
    assert transfer.decided_by == other_admin
    assert transfer.decided_at is not None
    assert administration.firm == other
    assert administration.agreement == other_agreement
    assert administration.status == Administration.Status.ACTIVE
    assert quantity(world.firm_agreement, world.components["standard"]) == 2
    assert quantity(other_agreement, world.components["standard"]) == 1
    accepted = AuditEvent.objects.get(action="licensing.administration_transfer_accepted")
    assert accepted.actor_user == other_admin
    assert accepted.organisation_id == other.pk
    assert AuditEvent.objects.get(
        action="licensing.administration_transfer_requested"
    ).actor_user == (world.admin)


def test_r17c_transfer_to_the_client_ends_it_at_the_firm_and_counts_on_the_clients_licence(world):
    administration = world.create()
    services.administration_convert_to_archive(administration=administration, user=world.admin)
    world.terminate_client(at_once=True)
    # The client goes on alone, on a new agreement of its own.
    new_agreement = agreement_create(
        organisation=world.client, start_date=START, quantities={world.components["base"]: 1}
    )

    transfer = services.administration_transfer_request(
        administration=administration, to_organisation=world.client, user=world.admin
    )
    services.administration_transfer_accept(transfer=transfer, user=world.client_admin)

    administration.refresh_from_db()
    assert administration.status == Administration.Status.TRANSFERRED
    assert administration.ended_at is not None
    assert administration.firm == world.firm
    assert quantity(world.firm_agreement, world.components["archive"]) == 0
    # The client works on in it: an ordinary administration of its own.
    assert quantity(new_agreement, world.components["standard"]) == 1


def test_r17c_decline_leaves_everything_as_it_was(world):
    administration = world.create()
    world.terminate_client()
    other, other_admin, _agreement = _other_firm_with_admin(world)
    transfer = services.administration_transfer_request(
        administration=administration, to_organisation=other, user=world.admin
    )
    before = counts(world)

    services.administration_transfer_decline(transfer=transfer, user=other_admin)
    services.administration_transfer_decline(transfer=transfer, user=other_admin)

    transfer.refresh_from_db()
    administration.refresh_from_db()
    assert transfer.status == AdministrationTransfer.Status.DECLINED
    assert transfer.decided_by == other_admin
    assert administration.firm == world.firm
    assert counts(world) == before
    assert (
        AuditEvent.objects.filter(action="licensing.administration_transfer_declined").count() == 1
    )
    with pytest.raises(Conflict, match="al afgehandeld"):
        services.administration_transfer_accept(transfer=transfer, user=other_admin)


@pytest.mark.parametrize("who", ["sending_firm_admin", "receiver_member", "stranger"])
def test_r17c_only_the_receiving_organisations_admin_can_accept(world, who):
    administration = world.create()
    world.terminate_client()
    other, _other_admin, _agreement = _other_firm_with_admin(world)
    transfer = services.administration_transfer_request(
        administration=administration, to_organisation=other, user=world.admin
    )
    user = {
        "sending_firm_admin": world.admin,
        "receiver_member": MembershipFactory(organisation=other, role="member").user,
        "stranger": MembershipFactory(role="admin").user,
    }[who]
    before = snapshot(world)

    for service in (
        services.administration_transfer_accept,
        services.administration_transfer_decline,
    ):
        with pytest.raises(PermissionDenied, match="Alleen een beheerder van"):
            service(transfer=transfer, user=user)

    assert snapshot(world) == before


def test_r17c_accept_without_a_live_agreement_is_refused_and_changes_nothing(world):
    administration = world.create()
    world.terminate_client()
    other, other_admin, _none = _other_firm_with_admin(world, with_agreement=False)
    transfer = services.administration_transfer_request(
        administration=administration, to_organisation=other, user=world.admin
    )
    before = snapshot(world)

    with pytest.raises(DomainError, match="heeft geen lopende overeenkomst"):
        services.administration_transfer_accept(transfer=transfer, user=other_admin)

    assert snapshot(world) == before


def test_r17c_one_pending_transfer_per_administration(world):
    administration = world.create()
    world.terminate_client()
    other, _admin, _agreement = _other_firm_with_admin(world)

    first = services.administration_transfer_request(
        administration=administration, to_organisation=other, user=world.admin
    )
    repeat = services.administration_transfer_request(
        administration=administration, to_organisation=other, user=world.admin
    )
    with pytest.raises(Conflict, match="Er staat al een overdracht open"):
        services.administration_transfer_request(
            administration=administration, to_organisation=world.client, user=world.admin
        )

    assert repeat == first
    assert AdministrationTransfer.objects.count() == 1


def test_r17c_a_pending_transfer_blocks_other_changes_until_cancelled(world):
    administration = world.create()
    world.terminate_client()
    other, _admin, _agreement = _other_firm_with_admin(world)
    transfer = services.administration_transfer_request(
        administration=administration, to_organisation=other, user=world.admin
    )

    with pytest.raises(Conflict, match="Annuleer die eerst"):
        services.administration_delete(administration=administration, user=world.admin)
    services.administration_transfer_cancel(transfer=transfer, user=world.admin)
    services.administration_delete(administration=administration, user=world.admin)

    transfer.refresh_from_db()
    assert transfer.status == AdministrationTransfer.Status.CANCELLED
    assert transfer.decided_by == world.admin
    assert quantity(world.firm_agreement, world.components["standard"]) == 2


@pytest.mark.parametrize("receiver", ["own_firm", "other_entrepreneur"])
def test_r17c_transfer_goes_only_to_the_client_or_another_firm(world, receiver):
    administration = world.create()
    to_organisation = world.firm if receiver == "own_firm" else OrganisationFactory()

    with pytest.raises(DomainError, match="alleen naar de klant zelf of naar een ander"):
        services.administration_transfer_request(
            administration=administration, to_organisation=to_organisation, user=world.admin
        )

    assert not AdministrationTransfer.objects.exists()


def test_r17_ended_administration_cannot_change_any_more(world):
    administration = world.create()
    services.administration_delete(administration=administration, user=world.admin)

    with pytest.raises(Conflict, match="is verwijderd"):
        services.administration_convert_to_archive(administration=administration, user=world.admin)


def test_r17_terminated_client_ids_reads_the_latest_agreements(world):
    active_client = OrganisationFactory(accountancy_firm=world.firm)
    give_mandate(active_client)
    agreement_create(
        organisation=active_client, start_date=START, quantities={world.components["base"]: 1}
    )
    without_agreement = OrganisationFactory(accountancy_firm=world.firm)
    world.terminate_client()

    ended = services.terminated_client_ids(clients=[world.client, active_client, without_agreement])

    assert ended == {world.client.pk}


# --- Concurrency -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r2_two_creates_racing_on_one_agreement_are_both_counted(catalogue):
    world = World(catalogue)
    barrier = threading.Barrier(2, timeout=WAIT_SECONDS)
    errors: list[BaseException] = []

    def create(name):
        try:
            barrier.wait()
            world.create(name=name)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(f"Race {n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)
        assert not thread.is_alive(), "a create did not finish in time"

    assert errors == []
    assert Administration.objects.count() == 2
    assert quantity(world.firm_agreement, catalogue["standard"]) == 4
    steps = sorted(
        LicenceChange.objects.filter(
            agreement=world.firm_agreement, source=ChangeSource.ADMINISTRATION
        ).values_list("old_quantity", "new_quantity")
    )
    assert steps == [(2, 3), (3, 4)]


def test_r17c_the_receiving_firm_is_mailed_about_the_offer(
    world, django_capture_on_commit_callbacks, mailbox
):
    administration = world.create()
    world.terminate_client()
    other, other_admin, _agreement = _other_firm_with_admin(world)
    mailbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.administration_transfer_request(
            administration=administration, to_organisation=other, user=world.admin
        )

    assert [message.to for message in mailbox] == [[other_admin.email]]
    assert administration.name in mailbox[0].subject
    assert "/administraties/" in mailbox[0].body
