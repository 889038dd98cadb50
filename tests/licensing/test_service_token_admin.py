"""Staff see and revoke service tokens and read what the SB application pushed (R3)."""

import pytest
from django.urls import reverse

from afas_sb.audit.models import AuditEvent
from licensing.models import CountEvent, ServiceToken

from .test_counts_api import body, make_agreement, make_catalogue, make_token, push


@pytest.fixture
def tokens(db):
    production = make_token("production")
    test = make_token("test")
    return production, test


def test_service_token_admin_lists_tokens_without_their_hash(staff_client, tokens):
    (production, _raw), (test, _raw_test) = tokens

    listing = staff_client.get(reverse("admin:licensing_servicetoken_changelist"))
    detail = staff_client.get(reverse("admin:licensing_servicetoken_change", args=[production.pk]))

    assert listing.status_code == detail.status_code == 200
    page = listing.content.decode() + detail.content.decode()
    assert production.prefix in page and test.prefix in page
    assert production.token_hash not in page
    assert test.token_hash not in page


def test_service_token_admin_filters_by_environment_and_revoked(staff_client, tokens):
    (production, _raw), (test, _raw_test) = tokens
    url = reverse("admin:licensing_servicetoken_changelist")
    staff_client.post(url, {"action": "revoke", "_selected_action": [test.pk]})

    by_environment = staff_client.get(url, {"environment__exact": "production"}).content.decode()
    revoked = staff_client.get(url, {"revoked": "yes"}).content.decode()
    in_use = staff_client.get(url, {"revoked": "no"}).content.decode()

    assert production.prefix in by_environment and test.prefix not in by_environment
    assert test.prefix in revoked and production.prefix not in revoked
    assert production.prefix in in_use and test.prefix not in in_use


def test_service_token_admin_has_no_add_and_no_delete(staff_client, tokens):
    (production, _raw), _test = tokens

    add = staff_client.get(reverse("admin:licensing_servicetoken_add"))
    delete = staff_client.get(reverse("admin:licensing_servicetoken_delete", args=[production.pk]))

    assert add.status_code == 403
    assert delete.status_code == 403


def test_r3_revoked_token_in_admin_is_refused_by_the_api(client, staff_client, staff_user):
    agreement = make_agreement(make_catalogue())
    token, raw_token = make_token()
    assert push(client, raw_token, body("ev-before", agreement=agreement.number)).status_code == 201

    response = staff_client.post(
        reverse("admin:licensing_servicetoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "1 servicetoken ingetrokken." in response.content.decode()
    audit = AuditEvent.objects.get(action="licensing.service_token_revoked")
    assert audit.actor_user == staff_user
    refused = push(client, raw_token, body("ev-after", agreement=agreement.number))
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_revoked"


def test_service_token_revoke_twice_keeps_the_first_moment(staff_client, tokens):
    (production, _raw), _test = tokens
    url = reverse("admin:licensing_servicetoken_changelist")
    staff_client.post(url, {"action": "revoke", "_selected_action": [production.pk]})
    first = ServiceToken.objects.get(pk=production.pk).revoked_at

    staff_client.post(url, {"action": "revoke", "_selected_action": [production.pk]})

    assert ServiceToken.objects.get(pk=production.pk).revoked_at == first
    assert AuditEvent.objects.filter(action="licensing.service_token_revoked").count() == 1


def test_count_event_admin_searches_by_event_id_and_agreement_read_only(client, staff_client):
    components = make_catalogue()
    agreement = make_agreement(components)
    other = make_agreement(components, kvk="40123456")
    _token, raw_token = make_token()
    push(client, raw_token, body("sb-ev-111", agreement=agreement.number))
    push(client, raw_token, body("sb-ev-222", agreement=other.number))
    url = reverse("admin:licensing_countevent_changelist")

    by_event = staff_client.get(url, {"q": "sb-ev-111"}).content.decode()
    by_agreement = staff_client.get(url, {"q": other.number}).content.decode()

    assert "sb-ev-111" in by_event and "sb-ev-222" not in by_event
    assert "sb-ev-222" in by_agreement and "sb-ev-111" not in by_agreement

    event = CountEvent.objects.get(event_id="sb-ev-111")
    detail = staff_client.get(reverse("admin:licensing_countevent_change", args=[event.pk]))
    assert detail.status_code == 200
    assert "Gebruikers: 2 → 5" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert staff_client.get(reverse("admin:licensing_countevent_add")).status_code == 403
