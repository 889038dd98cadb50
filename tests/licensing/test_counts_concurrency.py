"""R3 on PostgreSQL: counts pushed at the same moment are applied once each, in lock order.

Threads stand in for two web workers: each has its own database connection,
so only the database (the agreement's row lock, the unique event id) stands
between them. A thread is held at an exact SQL statement with
``connection.execute_wrapper``, and released by an event with a timeout:
nothing sleeps.
"""

import threading

import pytest
from django.test import Client

from licensing.models import ChangeSource, CountEvent, LicenceChange
from tests.concurrency import WAIT_SECONDS, Worker, hold_after, signal_before

from .test_counts_api import body, make_agreement, make_catalogue, make_token, push, quantities

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


EVENT_INSERT = 'INSERT INTO "licensing_countevent"'
ROW_LOCK = "FOR UPDATE"


def race(raw_token, first_payload, second_payload, *, hold_first_after, second_signals_before):
    """The first request stops after a statement; the second runs until it reaches another."""
    first_reached, second_reached = threading.Event(), threading.Event()
    first = Worker(
        lambda: push(Client(), raw_token, first_payload),
        hold_after(hold_first_after, first_reached, second_reached),
    )
    first.start()
    try:
        assert first_reached.wait(WAIT_SECONDS), "the first request never got there"
        second = Worker(
            lambda: push(Client(), raw_token, second_payload),
            signal_before(second_signals_before, second_reached),
        )
        second.start()
        assert second_reached.wait(WAIT_SECONDS), "the second request never got there"
    finally:
        # Releasing the first lets it commit; the second then runs on.
        second_reached.set()
    return first.join(), second.join()


@pytest.fixture
def setting():
    components = make_catalogue()
    _token, raw_token = make_token()
    return components, raw_token


def test_r3_same_new_event_twice_at_once_is_one_event_and_one_change(setting):
    components, raw_token = setting
    agreement = make_agreement(components)
    payload = body("ev-race", agreement=agreement.number, counts={"users": 6})

    # The first has inserted the event but not committed; the second missed it
    # on its first look and queues for the agreement lock.
    first, second = race(
        raw_token,
        payload,
        payload,
        hold_first_after=EVENT_INSERT,
        second_signals_before=ROW_LOCK,
    )

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.content == first.content
    assert CountEvent.objects.count() == 1
    change = LicenceChange.objects.get(source=ChangeSource.SB_APPLICATION)
    assert (change.old_quantity, change.new_quantity) == (2, 6)
    assert quantities(agreement)["users"] == 6


def test_r3_same_event_id_for_two_customers_at_once_refuses_the_second(setting):
    components, raw_token = setting
    agreement = make_agreement(components)
    other = make_agreement(components, kvk="40123456", users=3)

    # Different agreements take different locks: the unique event id decides.
    first, second = race(
        raw_token,
        body("ev-race", agreement=agreement.number, counts={"users": 6}),
        body("ev-race", agreement=other.number, counts={"users": 9}),
        hold_first_after=EVENT_INSERT,
        second_signals_before=EVENT_INSERT,
    )

    assert first.status_code == 201
    assert second.status_code == 409, second.content
    assert second.json()["code"] == "event_id_reused"
    assert CountEvent.objects.get().agreement == agreement
    assert quantities(agreement)["users"] == 6
    assert quantities(other)["users"] == 3
    assert not LicenceChange.objects.filter(agreement=other, source=ChangeSource.SB_APPLICATION)


def test_r3_two_events_at_once_on_one_agreement_both_apply_in_lock_order(setting):
    components, raw_token = setting
    agreement = make_agreement(components)

    # The first holds the agreement lock; the second queues behind it.
    first, second = race(
        raw_token,
        body("ev-first", agreement=agreement.number, counts={"users": 5}),
        body("ev-second", agreement=agreement.number, counts={"users": 8}),
        hold_first_after=ROW_LOCK,
        second_signals_before=ROW_LOCK,
    )

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["changes"] == [{"component": "users", "old_quantity": 2, "new_quantity": 5}]
    # The second saw the first's result: it ran after it, not beside it.
    assert second.json()["changes"] == [
        {"component": "users", "old_quantity": 5, "new_quantity": 8}
    ]
    history = LicenceChange.objects.filter(source=ChangeSource.SB_APPLICATION).order_by("pk")
    assert [(c.count_event.event_id, c.old_quantity, c.new_quantity) for c in history] == [
        ("ev-first", 2, 5),
        ("ev-second", 5, 8),
    ]
    assert quantities(agreement)["users"] == 8
    assert CountEvent.objects.count() == 2
