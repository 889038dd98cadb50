"""The SB application pushes counts (R3), billed from next month (R11), refused after the end (R16)."""

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from rest_framework.test import APIRequestFactory

from afas_sb import clock
from afas_sb.audit.models import ActorKind, AuditEvent
from afas_sb.errors import DomainError
from licensing.authentication import SBApplication, ServiceTokenAuthentication
from licensing.models import (
    Agreement,
    ChangeSource,
    Component,
    CountEvent,
    LicenceChange,
    LicenceLine,
    Product,
    ServiceToken,
)
from licensing.services.agreements import agreement_create
from licensing.services.counts import licence_counts_record
from licensing.services.terminations import (
    agreement_terminate_by_customer,
    agreement_terminate_for_non_payment,
)
from licensing.services.tokens import service_token_create, service_token_revoke
from tests.factories import OrganisationFactory, UserFactory, give_mandate

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
KVK = "30123456"


# --- Set-up helpers (shared with the other test_counts_* modules) ---------------------


def make_catalogue() -> dict[str, Component]:
    """The AFAS SB product with its components; there is no catalogue service, so rows."""
    product = Product.objects.create(code="afas-sb", name="AFAS SB")
    specs = [
        ("base", "Basislicentie", Component.Kind.BASE, "licentie"),
        ("users", "Gebruikers", Component.Kind.USER, "gebruiker"),
        ("administrations", "Administraties", Component.Kind.ADMINISTRATION, "administratie"),
        ("archives", "Archieflicenties", Component.Kind.ARCHIVE, "archief"),
    ]
    components = {
        code: Component.objects.create(
            product=product, code=code, name=name, kind=kind, unit=unit, position=position
        )
        for position, (code, name, kind, unit) in enumerate(specs)
    }
    Component.objects.create(
        product=product,
        code="legacy-seats",
        name="Oude plaatsen",
        kind=Component.Kind.OTHER,
        unit="plaats",
        position=99,
        is_active=False,
    )
    return components


def make_agreement(components, *, kvk=KVK, users=2, administrations=1) -> Agreement:
    organisation = OrganisationFactory(kvk_number=kvk, legal_name=f"Bakkerij {kvk} B.V.")
    give_mandate(organisation)
    return agreement_create(
        organisation=organisation,
        start_date=date(2026, 1, 1),
        quantities={
            components["base"]: 1,
            components["users"]: users,
            components["administrations"]: administrations,
        },
    )


def terminate(agreement) -> None:
    """Ends the agreement today (R13's automatic termination: no mail, no user needed)."""
    agreement_terminate_for_non_payment(agreement=agreement, on=clock.today())


def make_token(environment="production") -> tuple[ServiceToken, str]:
    return service_token_create(name="SB productie", environment=environment)


def push(client, raw_token, body=None, *, raw=None, content_type="application/json"):
    headers = {"Authorization": f"Bearer {raw_token}"} if raw_token else {}
    return client.post(
        reverse("sb_api:licence-counts"),
        data=raw if raw is not None else json.dumps(body),
        content_type=content_type,
        headers=headers,
    )


def stored_state(agreement) -> dict:
    """Everything a push may write; equal before and after means nothing was stored."""
    return {
        "events": CountEvent.objects.count(),
        "changes": LicenceChange.objects.count(),
        "audit": AuditEvent.objects.count(),
        "lines": dict(
            LicenceLine.objects.filter(agreement=agreement).values_list(
                "component__code", "quantity"
            )
        ),
    }


def quantities(agreement) -> dict[str, int]:
    return stored_state(agreement)["lines"]


# --- Fixtures -------------------------------------------------------------------------


@pytest.fixture
def components(db):
    return make_catalogue()


@pytest.fixture
def agreement(components):
    return make_agreement(components)


@pytest.fixture
def token(db):
    return make_token()


@pytest.fixture
def raw_token(token):
    return token[1]


def body(event_id="ev-1", *, agreement="SB0000001", counts=None, **extra):
    data = {"event_id": event_id, "counts": counts if counts is not None else {"users": 5}}
    if agreement is not None:
        data["agreement"] = agreement
    data.update(extra)
    return data


# --- Happy path -----------------------------------------------------------------------


def test_r3_counts_push_records_the_change_from_the_sb_application(client, agreement, raw_token):
    response = push(client, raw_token, body(agreement=agreement.number))

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["event_id"] == "ev-1"
    assert data["agreement"] == agreement.number
    assert data["quantities"] == {"base": 1, "users": 5, "administrations": 1}
    assert data["changes"] == [{"component": "users", "old_quantity": 2, "new_quantity": 5}]
    event = CountEvent.objects.get()
    change = LicenceChange.objects.get(count_event=event)
    assert (change.component.code, change.old_quantity, change.new_quantity) == ("users", 2, 5)
    assert change.source == ChangeSource.SB_APPLICATION
    assert change.actor_user is None
    assert event.token.prefix == raw_token[:8]
    assert event.response_body == data
    assert quantities(agreement)["users"] == 5
    received = AuditEvent.objects.get(action="licensing.counts_received")
    assert received.actor_kind == ActorKind.SB_APPLICATION
    assert received.organisation_id == agreement.organisation_id
    changed = AuditEvent.objects.filter(action="licensing.quantities_changed").first()
    assert changed.actor_kind == ActorKind.SB_APPLICATION
    assert changed.data == {"users": [2, 5]}


def test_r3_counts_push_by_kvk_number_changes_the_live_agreement(client, agreement, raw_token):
    response = push(
        client,
        raw_token,
        body(agreement=None, organisation_kvk="3012 3456", counts={"administrations": 4}),
    )

    assert response.status_code == 201, response.content
    assert response.json()["agreement"] == agreement.number
    assert quantities(agreement)["administrations"] == 4


def test_r3_counts_push_accepts_lower_case_agreement_number(client, agreement, raw_token):
    response = push(client, raw_token, body(agreement=agreement.number.lower()))

    assert response.status_code == 201, response.content
    assert response.json()["agreement"] == agreement.number


def test_r3_counts_push_with_unchanged_counts_stores_the_event_without_history(
    client, agreement, raw_token
):
    response = push(client, raw_token, body(agreement=agreement.number, counts={"users": 2}))

    assert response.status_code == 201, response.content
    assert response.json()["changes"] == []
    assert CountEvent.objects.count() == 1
    assert not LicenceChange.objects.filter(source=ChangeSource.SB_APPLICATION).exists()


def test_r3_counts_push_zero_for_a_component_not_held_writes_no_history(
    client, agreement, raw_token
):
    response = push(
        client, raw_token, body(agreement=agreement.number, counts={"archives": 0, "users": 3})
    )

    assert response.status_code == 201, response.content
    assert response.json()["changes"] == [
        {"component": "users", "old_quantity": 2, "new_quantity": 3}
    ]
    assert "archives" not in quantities(agreement)


def test_r3_counts_push_of_a_new_component_adds_a_line(client, agreement, raw_token):
    response = push(client, raw_token, body(agreement=agreement.number, counts={"archives": 2}))

    assert response.status_code == 201, response.content
    assert response.json()["quantities"]["archives"] == 2
    assert response.json()["changes"] == [
        {"component": "archives", "old_quantity": 0, "new_quantity": 2}
    ]


def test_r3_counts_push_to_a_terminating_agreement_still_counts(client, agreement, raw_token):
    # Opgezegd but not yet ended: the customer still uses SB until the last day.
    agreement_terminate_by_customer(agreement=agreement, user=UserFactory())
    agreement.refresh_from_db()
    assert agreement.status == Agreement.Status.TERMINATING

    response = push(client, raw_token, body(agreement=agreement.number))

    assert response.status_code == 201, response.content


# --- Idempotency ----------------------------------------------------------------------


def test_r3_same_event_twice_is_one_change_with_the_identical_answer(client, agreement, raw_token):
    first = push(client, raw_token, body(agreement=agreement.number))
    after_first = stored_state(agreement)

    second = push(client, raw_token, body(agreement=agreement.number))

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.content == first.content
    assert stored_state(agreement) == after_first
    assert CountEvent.objects.count() == 1
    assert LicenceChange.objects.filter(source=ChangeSource.SB_APPLICATION).count() == 1


def test_r3_same_event_again_after_termination_gets_the_first_answer(client, agreement, raw_token):
    first = push(client, raw_token, body(agreement=agreement.number))
    terminate(agreement)

    again = push(client, raw_token, body(agreement=agreement.number))

    assert again.status_code == 200
    assert again.content == first.content


def test_r3_same_event_id_with_other_counts_is_a_conflict_and_stores_nothing(
    client, agreement, raw_token
):
    push(client, raw_token, body(agreement=agreement.number, counts={"users": 5}))
    before = stored_state(agreement)

    response = push(client, raw_token, body(agreement=agreement.number, counts={"users": 6}))

    assert response.status_code == 409
    assert response.json()["code"] == "event_id_reused"
    assert "ev-1" in response.json()["message"]
    assert stored_state(agreement) == before
    assert quantities(agreement)["users"] == 5


# --- Unknown customer, ended agreement ------------------------------------------------


@pytest.mark.parametrize(
    "identifier",
    [{"agreement": "SB9999999"}, {"agreement": None, "organisation_kvk": "87654321"}],
    ids=["agreement", "kvk"],
)
def test_r3_unknown_customer_is_404_and_nothing_stored(client, agreement, raw_token, identifier):
    before = stored_state(agreement)

    response = push(client, raw_token, body(**identifier))

    assert response.status_code == 404
    data = response.json()
    assert data["code"] == "unknown_customer"
    assert ("SB9999999" in data["message"]) or ("87654321" in data["message"])
    assert stored_state(agreement) == before


@pytest.mark.parametrize("by", ["agreement", "kvk"])
def test_r16_terminated_agreement_refuses_counts_with_409_and_stores_nothing(
    client, agreement, raw_token, by
):
    terminate(agreement)
    before = stored_state(agreement)
    identifier = (
        {"agreement": agreement.number}
        if by == "agreement"
        else {"agreement": None, "organisation_kvk": KVK}
    )

    response = push(client, raw_token, body(**identifier))

    assert response.status_code == 409
    assert response.json()["code"] == "agreement_terminated"
    assert "beëindigd" in response.json()["message"]
    assert stored_state(agreement) == before


def test_r16_counts_refused_once_the_last_day_has_passed_before_the_nightly_run(
    client, agreement, raw_token, time_machine
):
    time_machine.move_to(datetime(2026, 3, 10, 12, 0, tzinfo=AMSTERDAM), tick=False)
    last_day = agreement_terminate_by_customer(
        agreement=agreement, user=UserFactory()
    ).effective_date

    time_machine.move_to(datetime.combine(last_day, time(23, 30), tzinfo=AMSTERDAM), tick=False)
    on_last_day = push(client, raw_token, body("ev-last-day", agreement=agreement.number))
    # Just after midnight: the nightly run has not yet marked the agreement terminated.
    time_machine.move_to(
        datetime.combine(last_day + timedelta(days=1), time(0, 30), tzinfo=AMSTERDAM), tick=False
    )
    assert Agreement.objects.get(pk=agreement.pk).status == Agreement.Status.TERMINATING
    before = stored_state(agreement)
    after_end = push(client, raw_token, body("ev-after-end", agreement=agreement.number))

    assert on_last_day.status_code == 201, on_last_day.content
    assert after_end.status_code == 409
    assert "beëindigd" in after_end.json()["message"]
    assert stored_state(agreement) == before


def test_r16_organisation_without_any_agreement_is_refused(client, components, raw_token):
    OrganisationFactory(kvk_number="11223344")

    response = push(client, raw_token, body(agreement=None, organisation_kvk="11223344"))

    assert response.status_code == 409
    assert response.json()["code"] == "no_live_agreement"
    assert CountEvent.objects.count() == 0


# --- Bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body(counts={"users": -1}), "counts"),
        (body(counts={"users": 5.5}), "counts"),
        (body(counts={"users": 5.0}), "counts"),
        (body(counts={"users": "5"}), "counts"),
        (body(counts={"users": True}), "counts"),
        (body(counts={"users": None}), "counts"),
        (body(counts={}), "counts"),
        (body(counts=[5]), "counts"),
        (body(agreement=None), "non_field_errors"),
        (body(organisation_kvk=KVK), "non_field_errors"),
        (body(event_id=""), "event_id"),
        (body(event_id="x" * 101), "event_id"),
        ({"agreement": "SB0000001", "counts": {"users": 1}}, "event_id"),
    ],
    ids=[
        "negative",
        "fraction",
        "float",
        "string",
        "boolean",
        "null",
        "empty-counts",
        "counts-not-an-object",
        "no-identifier",
        "both-identifiers",
        "empty-event-id",
        "long-event-id",
        "missing-event-id",
    ],
)
def test_r3_invalid_body_is_400_with_field_errors_and_nothing_stored(
    client, agreement, raw_token, payload, field
):
    before = stored_state(agreement)

    response = push(client, raw_token, payload)

    assert response.status_code == 400, response.content
    data = response.json()
    assert data["code"] == "invalid"
    assert field in data["errors"]
    # The message names the first problem, so a log line alone says what was wrong.
    if field != "non_field_errors":
        assert data["message"].startswith(f"{field}: ")
    assert data["message"].rsplit(": ", 1)[-1] in str(data["errors"])
    assert stored_state(agreement) == before


def test_r3_negative_count_names_the_problem_in_dutch(client, agreement, raw_token):
    response = push(client, raw_token, body(counts={"users": -1, "administrations": 2.5}))

    assert response.json()["errors"]["counts"] == {
        "users": ["Een aantal moet 0 of meer zijn."],
        "administrations": ["Een aantal is een geheel getal (een JSON-getal, geen tekst)."],
    }


def test_r3_both_identifiers_message_says_to_send_one(client, agreement, raw_token):
    response = push(client, raw_token, body(organisation_kvk=KVK))

    assert response.json()["errors"]["non_field_errors"] == [
        "Geef óf het overeenkomstnummer (agreement) óf het KvK-nummer (organisation_kvk) mee."
    ]


def test_r3_unknown_components_are_400_listing_them_and_nothing_stored(
    client, agreement, raw_token
):
    before = stored_state(agreement)

    response = push(
        client,
        raw_token,
        body(
            agreement=agreement.number,
            counts={"users": 3, "seats": 1, "legacy-seats": 2, "modules": 4},
        ),
    )

    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "unknown_component"
    # Every unknown code at once, inactive ones included; the known ones as a hint.
    assert data["message"].startswith("Onbekende onderdelen: legacy-seats, modules, seats.")
    assert "users" in data["message"]
    assert stored_state(agreement) == before


@pytest.mark.parametrize(
    "raw",
    ['{"event_id": "ev-1", "counts": {"users": 5}', "", "not json", "{'event_id': 1}"],
    ids=["truncated", "empty", "text", "python-repr"],
)
def test_r3_malformed_json_is_400_with_a_readable_message_and_nothing_stored(
    client, agreement, raw_token, raw
):
    before = stored_state(agreement)

    response = push(client, raw_token, raw=raw)

    assert response.status_code == 400, response.content
    data = response.json()
    if raw:
        assert data["code"] == "malformed_json"
        assert data["message"].startswith("De body is geen geldige JSON (regel 1, kolom ")
    else:
        # An empty body parses as no data: every required field is missing.
        assert data["code"] == "invalid"
    assert stored_state(agreement) == before


def test_r3_invalid_utf8_is_400_not_a_server_error(client, agreement, raw_token):
    response = push(client, raw_token, raw=b'{"event_id": "\xff"}')

    assert response.status_code == 400
    assert response.json() == {
        "message": "De body is geen geldige JSON: stuur een JSON-object in UTF-8.",
        "code": "malformed_json",
    }


def test_r3_json_array_body_is_400(client, agreement, raw_token):
    response = push(client, raw_token, [body()])

    assert response.status_code == 400
    assert "non_field_errors" in response.json()["errors"]


def test_r3_form_encoded_body_is_refused_with_415(client, agreement, raw_token):
    before = stored_state(agreement)

    response = push(client, raw_token, raw="event_id=ev-1", content_type="text/plain")

    assert response.status_code == 415
    assert set(response.json()) == {"message", "code"}
    assert stored_state(agreement) == before


# --- Authentication -------------------------------------------------------------------


def _revoked_token():
    token, raw = make_token()
    service_token_revoke(token=token)
    return raw


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer", "invalid_header"),
        ("Bearer two parts", "invalid_header"),
        ("Bearer not-a-real-token", "invalid_token"),
        ("Token {raw}", "not_authenticated"),
        ("Basic dXNlcjpwYXNz", "not_authenticated"),
        ("Bearer {revoked}", "token_revoked"),
    ],
    ids=["none", "empty", "spaces", "wrong", "other-keyword", "basic", "revoked"],
)
def test_r3_counts_push_without_a_valid_token_is_401_and_stores_nothing(
    client, agreement, raw_token, header, code
):
    headers = {}
    if header is not None:
        headers["Authorization"] = header.format(raw=raw_token, revoked=_revoked_token())
    before = stored_state(agreement)

    response = client.post(
        reverse("sb_api:licence-counts"),
        data=json.dumps(body(agreement=agreement.number)),
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    data = response.json()
    assert set(data) == {"message", "code"}
    assert data["code"] == code
    assert stored_state(agreement) == before


def test_r3_portal_session_is_not_a_service_token(org_admin_client, agreement):
    response = push(org_admin_client, None, body(agreement=agreement.number))

    assert response.status_code == 401
    assert CountEvent.objects.count() == 0


def test_r3_authentication_makes_the_sb_application_the_caller(token):
    service_token, raw = token
    request = APIRequestFactory().post("/", HTTP_AUTHORIZATION=f"Bearer {raw}")

    user, auth = ServiceTokenAuthentication().authenticate(request)

    assert isinstance(user, SBApplication)
    assert user.is_authenticated and not user.is_staff
    assert user.environment == ServiceToken.Environment.PRODUCTION
    assert auth == service_token


def test_r3_token_last_used_is_written_at_most_once_a_minute(
    client, agreement, token, time_machine
):
    service_token, raw = token
    start = datetime(2026, 3, 2, 9, 0, tzinfo=AMSTERDAM)
    time_machine.move_to(start, tick=False)
    push(client, raw, body("ev-a", agreement=agreement.number))
    service_token.refresh_from_db()
    assert service_token.last_used_at == start

    time_machine.move_to(start + timedelta(seconds=59), tick=False)
    push(client, raw, body("ev-b", agreement=agreement.number))
    service_token.refresh_from_db()
    assert service_token.last_used_at == start

    time_machine.move_to(start + timedelta(minutes=2), tick=False)
    push(client, raw, body("ev-c", agreement=agreement.number))
    service_token.refresh_from_db()
    assert service_token.last_used_at == start + timedelta(minutes=2)


# --- Billing from next month (R11) ----------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "applies_from"),
    [
        (datetime(2026, 3, 15, 10, 0, tzinfo=AMSTERDAM), "2026-04-01"),
        (datetime(2026, 12, 15, 10, 0, tzinfo=AMSTERDAM), "2027-01-01"),
        # 00:30 in Amsterdam is still the previous day in UTC: the business date decides.
        (datetime(2026, 4, 1, 0, 30, tzinfo=AMSTERDAM), "2026-05-01"),
    ],
    ids=["15th", "december", "just-after-midnight"],
)
def test_r11_count_change_is_current_now_and_billed_from_next_month(
    client, agreement, raw_token, time_machine, moment, applies_from
):
    time_machine.move_to(moment, tick=False)

    response = push(client, raw_token, body(agreement=agreement.number, counts={"users": 7}))

    assert response.status_code == 201, response.content
    assert response.json()["applies_from"] == applies_from
    assert response.json()["quantities"]["users"] == 7
    assert quantities(agreement)["users"] == 7
    assert LicenceChange.objects.get(source=ChangeSource.SB_APPLICATION).created_at == moment


def test_r11_repeat_next_month_keeps_the_first_applies_from(
    client, agreement, raw_token, time_machine
):
    time_machine.move_to(datetime(2026, 3, 15, 10, 0, tzinfo=AMSTERDAM), tick=False)
    first = push(client, raw_token, body(agreement=agreement.number))
    time_machine.move_to(datetime(2026, 4, 2, 10, 0, tzinfo=AMSTERDAM), tick=False)

    again = push(client, raw_token, body(agreement=agreement.number))

    assert again.json()["applies_from"] == "2026-04-01" == first.json()["applies_from"]


# --- The service as an entry point ----------------------------------------------------


def test_licence_counts_record_refuses_negative_counts_and_stores_nothing(agreement, token):
    service_token, _raw = token
    before = stored_state(agreement)

    with pytest.raises(DomainError) as error:
        licence_counts_record(
            token=service_token,
            event_id="ev-1",
            agreement_number=agreement.number,
            counts={"users": -3},
            payload={"counts": {"users": -3}},
        )

    assert error.value.status == 400
    assert error.value.message == "Het aantal voor 'users' moet 0 of meer zijn."
    assert stored_state(agreement) == before


def test_licence_counts_record_returns_whether_the_event_is_new(agreement, token):
    service_token, _raw = token
    arguments = {
        "token": service_token,
        "event_id": "ev-1",
        "agreement_number": agreement.number,
        "counts": {"users": 4},
        "payload": {"agreement": agreement.number, "counts": {"users": 4}},
    }

    first, created = licence_counts_record(**arguments)
    again, created_again = licence_counts_record(**arguments)

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert first.received_at <= clock.now()


# --- OpenAPI --------------------------------------------------------------------------


def test_openapi_schema_documents_the_counts_endpoint_with_bearer_auth(client, db):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    operation = schema["paths"]["/api/v1/licence-counts/"]["post"]
    assert operation["security"] == [{"sbServiceToken": []}]
    assert set(operation["responses"]) == {"200", "201", "400", "401", "404", "409"}
    assert schema["components"]["securitySchemes"]["sbServiceToken"]["scheme"] == "bearer"
