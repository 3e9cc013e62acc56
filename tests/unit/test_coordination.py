"""The coordinator's contract, held by both implementations: ``LocalCoordinator`` (one process) and
``RedisCoordinator`` on the real Redis at 127.0.0.1:6379 (each test in a key namespace of its own,
deleted afterwards).

What a worker relies on: repeated triggers of a mailbox coalesce into one pending ticket (keeping the
strongest request), a claimed ticket stops coalescing but still knows its runs, a mailbox lock is
exclusive (in Redis, a lease with a TTL that a live holder renews and a dead one lets lapse), and one
caller per (job, slot) is first to fire."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis

from connector.state import SyncMode
from jobs.coordination import Coordinator, Lease, LocalCoordinator, RedisCoordinator, Trigger

REDIS_URL = "redis://127.0.0.1:6379/0"
#: Short, so the lease tests see expiry and renewal within seconds.
LOCK_TTL_S = 1.0
MAILBOX = "alice@contoso.example"
OTHER = "bob@contoso.example"


@dataclass
class Setup:
    kind: str
    coordinator: Coordinator
    #: Another coordinator over the same shared state (another worker process, in Redis' case).
    another: Callable[[], Coordinator]
    namespace: str = ""
    client: redis.Redis | None = None


def forget_namespace(client: redis.Redis, namespace: str) -> None:
    for pattern in (f"{namespace}:*", f"{namespace}-dramatiq:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(redis_client: redis.Redis) -> Iterator[str]:
    name = f"test-coord-{uuid.uuid4().hex[:8]}"
    yield name
    forget_namespace(redis_client, name)


def redis_coordinator(namespace: str, clients: list[redis.Redis]) -> RedisCoordinator:
    client = redis.Redis.from_url(REDIS_URL)
    clients.append(client)
    return RedisCoordinator(client, namespace=namespace, lock_ttl_s=LOCK_TTL_S)


@pytest.fixture(params=["local", "redis"])
def setup(request: pytest.FixtureRequest, namespace: str, redis_client: redis.Redis) -> Iterator[Setup]:
    if request.param == "local":
        local = LocalCoordinator()
        yield Setup("local", local, lambda: local)
        return
    clients: list[redis.Redis] = []
    try:
        yield Setup(
            "redis",
            redis_coordinator(namespace, clients),
            lambda: redis_coordinator(namespace, clients),
            namespace,
            redis_client,
        )
    finally:
        for client in clients:
            client.close()


def trigger(
    coordinator: Coordinator,
    run_id: int,
    *,
    mailbox: str = MAILBOX,
    mode: SyncMode = SyncMode.FAST,
    force: bool = False,
    source_items: int | None = None,
) -> Trigger:
    return coordinator.trigger(mailbox, run_id, mode=mode, force=force, source_items=source_items)


# -- tickets -------------------------------------------------------------------------------------------


def test_the_first_trigger_opens_a_ticket_with_the_request(setup: Setup) -> None:
    coordinator = setup.coordinator
    opened = trigger(coordinator, 1, source_items=12)
    assert opened.opened and opened.ticket_id
    ticket = coordinator.ticket(opened.ticket_id)
    assert ticket is not None
    assert (ticket.id, ticket.mailbox, ticket.mode, ticket.force) == (
        opened.ticket_id,
        MAILBOX,
        SyncMode.FAST,
        False,
    )
    assert (ticket.source_items, ticket.run_ids, ticket.last_error) == (12, (1,), "")
    # Another mailbox gets a ticket of its own.
    other = trigger(coordinator, 1, mailbox=OTHER)
    assert other.opened and other.ticket_id != opened.ticket_id
    other_ticket = coordinator.ticket(other.ticket_id)
    assert other_ticket is not None and other_ticket.source_items is None


def test_repeated_triggers_coalesce_and_keep_the_strongest_request(setup: Setup) -> None:
    coordinator = setup.coordinator
    first = trigger(coordinator, 1, mode=SyncMode.FAST, force=False, source_items=10)
    later = [
        trigger(coordinator, 2, mode=SyncMode.VERIFY, force=False, source_items=11),
        trigger(coordinator, 3, mode=SyncMode.FAST, force=True, source_items=None),
        trigger(coordinator, 4, mode=SyncMode.FAST, force=False, source_items=14),
        trigger(coordinator, 2, mode=SyncMode.FAST, force=False, source_items=None),  # run 2 again
    ]
    assert first.opened
    assert [t.opened for t in later] == [False] * 4
    assert {t.ticket_id for t in later} == {first.ticket_id}
    ticket = coordinator.ticket(first.ticket_id)
    assert ticket is not None
    # Verify beats fast and force sticks, whatever came after; the latest known source size is kept
    # (a trigger that does not know it leaves it alone); each run is listed once.
    assert ticket.mode is SyncMode.VERIFY
    assert ticket.force is True
    assert ticket.source_items == 14
    assert ticket.run_ids == (1, 2, 3, 4)


def test_after_a_claim_a_new_trigger_opens_a_new_ticket_and_the_claimed_one_keeps_its_runs(
    setup: Setup,
) -> None:
    coordinator = setup.coordinator
    first = trigger(coordinator, 1, source_items=5)
    trigger(coordinator, 2)
    claimed = coordinator.claim(MAILBOX, first.ticket_id)
    assert claimed is not None and claimed.run_ids == (1, 2)

    second = trigger(coordinator, 3, mode=SyncMode.VERIFY)
    assert second.opened and second.ticket_id != first.ticket_id
    assert not trigger(coordinator, 4).opened  # coalesces into the new pending ticket

    still = coordinator.ticket(first.ticket_id)
    assert still is not None and still.run_ids == (1, 2) and still.mode is SyncMode.FAST
    fresh = coordinator.ticket(second.ticket_id)
    assert fresh is not None and fresh.run_ids == (3, 4) and fresh.mode is SyncMode.VERIFY
    assert fresh.source_items is None


def test_a_redelivered_claim_sees_the_same_ticket_and_a_finished_one_is_gone(setup: Setup) -> None:
    coordinator = setup.coordinator
    opened = trigger(coordinator, 7, mode=SyncMode.VERIFY, force=True, source_items=3)
    once = coordinator.claim(MAILBOX, opened.ticket_id)
    twice = coordinator.claim(MAILBOX, opened.ticket_id)  # the job delivered again after a crash
    assert once is not None and once == twice
    assert (once.mode, once.force, once.source_items, once.run_ids) == (SyncMode.VERIFY, True, 3, (7,))

    coordinator.finish(opened.ticket_id)
    assert coordinator.ticket(opened.ticket_id) is None
    assert coordinator.claim(MAILBOX, opened.ticket_id) is None  # a duplicate of a finished sync
    # The mailbox triggers afresh.
    assert trigger(coordinator, 8).opened


def test_a_claim_of_a_ticket_that_is_not_the_pending_one_leaves_the_pending_one_alone(
    setup: Setup,
) -> None:
    coordinator = setup.coordinator
    first = trigger(coordinator, 1)
    assert coordinator.claim(MAILBOX, first.ticket_id) is not None
    pending = trigger(coordinator, 2)
    # A late duplicate of the first job claims again: the second ticket must go on coalescing.
    assert coordinator.claim(MAILBOX, first.ticket_id) is not None
    coalesced = trigger(coordinator, 3)
    assert not coalesced.opened and coalesced.ticket_id == pending.ticket_id


def test_the_latest_error_is_kept_until_the_ticket_is_finished(setup: Setup) -> None:
    coordinator = setup.coordinator
    opened = trigger(coordinator, 1)
    coordinator.note_error(opened.ticket_id, "TransientError: timed out")
    coordinator.note_error(opened.ticket_id, "ThrottledError: server busy, retry in 2 s")
    ticket = coordinator.claim(MAILBOX, opened.ticket_id)
    assert ticket is not None and ticket.last_error == "ThrottledError: server busy, retry in 2 s"
    # A note after the end does not bring the ticket back.
    coordinator.finish(opened.ticket_id)
    coordinator.note_error(opened.ticket_id, "late")
    assert coordinator.ticket(opened.ticket_id) is None
    coordinator.note_error("no-such-ticket", "ignored")
    assert coordinator.ticket("no-such-ticket") is None


def test_twenty_threads_triggering_one_mailbox_open_exactly_one_ticket(setup: Setup) -> None:
    coordinators = [setup.another() for _ in range(4)]
    start = threading.Barrier(20)

    def fire(run_id: int) -> Trigger:
        start.wait()
        return trigger(coordinators[run_id % 4], run_id, source_items=run_id)

    with ThreadPoolExecutor(max_workers=20) as pool:
        triggers = list(pool.map(fire, range(1, 21)))
    assert sum(t.opened for t in triggers) == 1
    (ticket_id,) = {t.ticket_id for t in triggers}
    ticket = setup.coordinator.ticket(ticket_id)
    assert ticket is not None
    assert ticket.run_ids == tuple(range(1, 21))
    assert ticket.source_items in range(1, 21)


# -- locks ---------------------------------------------------------------------------------------------


def test_a_mailbox_lock_is_exclusive_until_released(setup: Setup) -> None:
    coordinator, another = setup.coordinator, setup.another()
    lease = coordinator.lock(MAILBOX)
    assert lease is not None and not lease.lost
    try:
        assert coordinator.lock(MAILBOX) is None
        assert another.lock(MAILBOX) is None
        other = another.lock(OTHER)  # other mailboxes are not affected
        assert other is not None
        other.release()
    finally:
        lease.release()
    again = another.lock(MAILBOX)
    assert again is not None
    again.release()


def test_of_many_threads_racing_for_a_lock_exactly_one_gets_it(setup: Setup) -> None:
    start = threading.Barrier(10)
    coordinators = [setup.another() for _ in range(10)]

    def take(index: int) -> Lease | None:
        start.wait()
        return coordinators[index].lock(MAILBOX)

    with ThreadPoolExecutor(max_workers=10) as pool:
        leases = list(pool.map(take, range(10)))
    held = [lease for lease in leases if lease is not None]
    assert len(held) == 1
    held[0].release()


@pytest.fixture
def redis_setup(namespace: str, redis_client: redis.Redis) -> Iterator[Setup]:
    clients: list[redis.Redis] = []
    try:
        yield Setup(
            "redis",
            redis_coordinator(namespace, clients),
            lambda: redis_coordinator(namespace, clients),
            namespace,
            redis_client,
        )
    finally:
        for client in clients:
            client.close()


def lock_key(setup: Setup, mailbox: str = MAILBOX) -> str:
    return f"{setup.namespace}:lock:{mailbox}"


def test_redis_a_dead_holders_lock_lapses_after_its_ttl(redis_setup: Setup) -> None:
    assert redis_setup.client is not None
    # A worker killed with SIGKILL: its lock is there, and nobody renews it.
    assert redis_setup.client.set(lock_key(redis_setup), "dead-worker", nx=True, px=int(LOCK_TTL_S * 1000))
    coordinator = redis_setup.coordinator
    assert coordinator.lock(MAILBOX) is None
    time.sleep(LOCK_TTL_S + 0.2)
    lease = coordinator.lock(MAILBOX)
    assert lease is not None and not lease.lost
    lease.release()
    assert redis_setup.client.get(lock_key(redis_setup)) is None


def test_redis_a_live_lease_is_renewed_past_its_ttl(redis_setup: Setup) -> None:
    assert redis_setup.client is not None
    lease = redis_setup.coordinator.lock(MAILBOX)
    assert lease is not None
    try:
        another = redis_setup.another()
        deadline = time.monotonic() + 3 * LOCK_TTL_S
        while time.monotonic() < deadline:
            assert another.lock(MAILBOX) is None
            time.sleep(0.1)
        ttl_ms = redis_setup.client.pttl(lock_key(redis_setup))
        assert 0 < ttl_ms <= LOCK_TTL_S * 1000
        assert not lease.lost
    finally:
        lease.release()
    assert redis_setup.client.get(lock_key(redis_setup)) is None
    taken = redis_setup.another().lock(MAILBOX)
    assert taken is not None
    taken.release()


def test_redis_a_lease_taken_over_is_lost_and_its_release_leaves_the_new_holder_alone(
    redis_setup: Setup,
) -> None:
    client = redis_setup.client
    assert client is not None
    lease = redis_setup.coordinator.lock(MAILBOX)
    assert lease is not None
    # The holder stalled longer than the TTL; someone else took the mailbox meanwhile.
    client.set(lock_key(redis_setup), "the-new-holder", px=10_000)
    deadline = time.monotonic() + 3 * LOCK_TTL_S
    while not lease.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lease.lost
    lease.release()
    assert client.get(lock_key(redis_setup)) == b"the-new-holder"


# -- scheduling and counting ---------------------------------------------------------------------------


def test_first_to_fire_is_true_once_per_job_and_slot(setup: Setup) -> None:
    coordinator, another = setup.coordinator, setup.another()
    assert coordinator.first_to_fire("fast", "2027-03-22T10:15+01:00")
    assert not coordinator.first_to_fire("fast", "2027-03-22T10:15+01:00")
    assert not another.first_to_fire("fast", "2027-03-22T10:15+01:00")
    assert another.first_to_fire("fast", "2027-03-22T10:30+01:00")
    assert coordinator.first_to_fire("verify", "2027-03-22T10:15+01:00")


def test_first_to_fire_has_one_winner_among_racing_replicas(setup: Setup) -> None:
    replicas = [setup.another() for _ in range(10)]
    start = threading.Barrier(10)

    def fire(index: int) -> bool:
        start.wait()
        return replicas[index].first_to_fire("verify", "2027-03-28T02:00+01:00")

    with ThreadPoolExecutor(max_workers=10) as pool:
        won = list(pool.map(fire, range(10)))
    assert won.count(True) == 1


def test_running_syncs_are_counted_per_worker_with_their_peak(setup: Setup) -> None:
    coordinator, another = setup.coordinator, setup.another()
    assert coordinator.peak("w1") == 0
    assert coordinator.job_started("w1") == 1
    assert another.job_started("w1") == 2
    assert coordinator.job_started("w2") == 1
    coordinator.job_ended("w1")
    assert coordinator.job_started("w1") == 2
    coordinator.job_ended("w1")
    coordinator.job_ended("w1")
    assert coordinator.job_started("w1") == 1
    coordinator.job_ended("w1")
    assert (coordinator.peak("w1"), another.peak("w1"), coordinator.peak("w2")) == (2, 2, 1)


def test_concurrent_starts_reach_the_true_peak(setup: Setup) -> None:
    start = threading.Barrier(8)
    coordinators = [setup.another() for _ in range(8)]

    def run(index: int) -> int:
        start.wait()
        return coordinators[index].job_started("busy")

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = sorted(pool.map(run, range(8)))
    assert counts == list(range(1, 9))
    assert setup.coordinator.peak("busy") == 8


def test_ping_answers(setup: Setup) -> None:
    setup.coordinator.ping()


def test_redis_ping_raises_when_redis_cannot_be_reached() -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        coordinator = RedisCoordinator(client, namespace="unreachable", lock_ttl_s=LOCK_TTL_S)
        with pytest.raises(redis.ConnectionError):
            coordinator.ping()
    finally:
        client.close()


def test_redis_a_ticket_whose_job_was_never_sent_is_handed_out_again(
    redis_setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = redis_setup.coordinator
    first = trigger(coordinator, 1)
    assert first.opened
    # The fan-out died between opening the ticket and sending its job: later triggers coalesce...
    assert not trigger(coordinator, 2).opened
    # ... until the ticket is old enough to count as orphaned; then one trigger sends its job again.
    monkeypatch.setattr("jobs.coordination.UNSENT_AFTER_S", -1)
    again = trigger(coordinator, 3)
    assert again == Trigger(first.ticket_id, opened=True)
    coordinator.mark_sent(first.ticket_id)
    assert not trigger(coordinator, 4).opened
    ticket = coordinator.claim(MAILBOX, first.ticket_id)
    assert ticket is not None and ticket.run_ids == (1, 2, 3, 4)


def test_redis_marks_on_a_finished_ticket_do_not_bring_it_back(redis_setup: Setup) -> None:
    coordinator = redis_setup.coordinator
    opened = trigger(coordinator, 1)
    assert coordinator.claim(MAILBOX, opened.ticket_id) is not None
    coordinator.finish(opened.ticket_id)
    coordinator.mark_sent(opened.ticket_id)
    coordinator.note_error(opened.ticket_id, "late")
    assert coordinator.ticket(opened.ticket_id) is None
    assert redis_setup.client is not None
    assert not list(redis_setup.client.scan_iter(f"{redis_setup.namespace}:ticket:{opened.ticket_id}*"))
