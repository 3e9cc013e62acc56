"""``connector scheduler``'s decisions, with the clock given: which slot a firing belongs to (the
scheduled minute, in the schedule's zone, even when the process woke up late), when a firing is too late
to queue, and that replicas sharing a coordinator (in-process, or the real Redis on 127.0.0.1:6379)
queue each slot once."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from apscheduler.triggers.cron import CronTrigger

from connector.errors import SettingsError
from connector.settings import ScheduleSection
from connector.state import SyncMode
from connector.sync import SyncRequest
from jobs.coordination import Coordinator, LocalCoordinator, RedisCoordinator
from jobs.scheduler import MISFIRE_GRACE_S, Schedule, Scheduler, schedules

PARIS = ZoneInfo("Europe/Paris")
REDIS_URL = "redis://127.0.0.1:6379/0"


class Submits:
    """Stands in for ``RunService.submit``: keeps the requests, answers run ids 1, 2, ..."""

    def __init__(self) -> None:
        self.requests: list[SyncRequest] = []
        self._mutex = threading.Lock()

    def __call__(self, request: SyncRequest) -> int:
        with self._mutex:
            self.requests.append(request)
            return len(self.requests)

    @property
    def triggers(self) -> list[str]:
        return [r.trigger for r in self.requests]


def plan(expression: str, *, zone: str = "Europe/Paris", name: str = "fast") -> Schedule:
    section = ScheduleSection(
        timezone=zone,
        fast=expression if name == "fast" else "",
        verify=expression if name == "verify" else "",
    )
    (found,) = schedules(section, "UTC")
    return found


def at(text: str, zone: ZoneInfo = PARIS) -> datetime:
    """A wall-clock time in ``zone``, as ``datetime.now(zone)`` gives it."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def utc(text: str) -> datetime:
    """The instant ``text`` (UTC) as ``datetime.now(PARIS)`` reads it then."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).astimezone(PARIS)


# -- schedules from settings ---------------------------------------------------------------------------


def test_the_default_schedules_are_a_fast_and_a_verifying_run_in_the_connectors_zone() -> None:
    found = schedules(ScheduleSection(), "Europe/Paris")
    assert [(s.name, s.mode) for s in found] == [("fast", SyncMode.FAST), ("verify", SyncMode.VERIFY)]
    assert all(s.trigger.timezone == PARIS for s in found)
    fast, verify = found
    base = at("2027-01-12T10:07")
    assert fast.trigger.get_next_fire_time(None, base) == at("2027-01-12T10:15")
    assert verify.trigger.get_next_fire_time(None, base) == at("2027-01-13T02:00")


def test_the_schedules_own_zone_wins_over_the_connectors() -> None:
    (verify,) = schedules(ScheduleSection(timezone="America/New_York", fast=""), "Europe/Paris")
    assert verify.name == "verify"
    new_york = ZoneInfo("America/New_York")
    assert verify.trigger.timezone == new_york
    assert verify.trigger.get_next_fire_time(None, at("2027-01-12T12:00", new_york)) == at(
        "2027-01-13T02:00", new_york
    )


def test_empty_expressions_turn_the_schedules_off() -> None:
    assert schedules(ScheduleSection(fast="", verify=""), "UTC") == []
    assert [s.name for s in schedules(ScheduleSection(fast="", verify="0 3 * * 0"), "UTC")] == ["verify"]


@pytest.mark.parametrize(
    ("field", "expression"),
    [("fast", "61 * * * *"), ("fast", "*/15 25 * * *"), ("verify", "0 2 31 2 mon-fry")],
)
def test_a_cron_expression_with_bad_values_is_a_settings_error_naming_the_key(
    field: str, expression: str
) -> None:
    # Five fields of cron characters pass the settings model; the values are checked here.
    section = ScheduleSection(**{field: expression})
    with pytest.raises(SettingsError) as caught:
        schedules(section, "UTC")
    (problem,) = caught.value.problems
    assert problem.startswith(f"schedule.{field}: ")
    assert repr(expression) in problem


# -- the slot of a firing ------------------------------------------------------------------------------


@pytest.mark.parametrize("late_s", [0.0, 0.3, 20.0, MISFIRE_GRACE_S - 1])
def test_a_firing_queues_the_scheduled_minute_even_when_late(late_s: float) -> None:
    fast = plan("*/15 * * * *")
    submits = Submits()
    scheduler = Scheduler([fast], LocalCoordinator(), submits)
    run_id = scheduler.fire(fast, at("2027-01-12T10:15") + timedelta(seconds=late_s))
    assert run_id == 1
    (request,) = submits.requests
    assert request == SyncRequest(SyncMode.FAST, (), False, trigger="schedule:fast@2027-01-12T10:15+01:00")


@pytest.mark.parametrize("late_s", [MISFIRE_GRACE_S + 1, 90.0, 14 * 60.0])
def test_a_firing_later_than_the_grace_is_skipped(late_s: float, caplog: pytest.LogCaptureFixture) -> None:
    fast = plan("*/15 * * * *")
    submits = Submits()
    coordinator = LocalCoordinator()
    with caplog.at_level(logging.WARNING, logger="jobs.scheduler"):
        assert (
            Scheduler([fast], coordinator, submits).fire(
                fast, at("2027-01-12T10:15") + timedelta(seconds=late_s)
            )
            is None
        )
    assert submits.requests == []
    assert "no slot due; skipped" in caplog.text
    # Skipping claimed nothing: the slot is still free (for a replica that was on time).
    assert coordinator.first_to_fire("fast", "2027-01-12T10:15+01:00")


def test_a_verifying_schedule_queues_a_verifying_run() -> None:
    verify = plan("0 2 * * *", name="verify")
    submits = Submits()
    assert Scheduler([verify], LocalCoordinator(), submits).fire(verify, at("2027-01-12T02:00:01")) == 1
    assert submits.requests == [
        SyncRequest(SyncMode.VERIFY, (), False, trigger="schedule:verify@2027-01-12T02:00+01:00")
    ]


def test_the_slot_is_in_the_schedules_zone_whatever_zone_now_is_given_in() -> None:
    verify = plan("0 2 * * *", name="verify")
    submits = Submits()
    scheduler = Scheduler([verify], LocalCoordinator(), submits)
    # 02:00 in Paris is 01:00 UTC in winter and 00:00 UTC in summer.
    assert scheduler.fire(verify, datetime(2027, 1, 12, 1, 0, 5, tzinfo=UTC)) == 1
    assert scheduler.fire(verify, datetime(2027, 7, 12, 0, 0, 5, tzinfo=UTC)) == 2
    # 02:00 UTC is 03:00 in Paris: nothing is due.
    assert scheduler.fire(verify, datetime(2027, 1, 13, 2, 0, 5, tzinfo=UTC)) is None
    assert submits.triggers == [
        "schedule:verify@2027-01-12T02:00+01:00",
        "schedule:verify@2027-07-12T02:00+02:00",
    ]


# -- daylight saving time in Europe/Paris ----------------------------------------------------------------


def firings(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """When APScheduler itself fires ``schedule`` (its own sequence of fire times)."""
    found: list[datetime] = []
    previous: datetime | None = None
    now = after
    for _ in range(count):
        fire_time: datetime = schedule.trigger.get_next_fire_time(previous, now)
        found.append(fire_time)
        previous = now = fire_time
    return found


def test_in_the_autumn_the_repeated_02_00_is_queued_once() -> None:
    # On 2026-10-25 the clocks go back from 03:00 CEST to 02:00 CET: APScheduler fires "0 2 * * *" at
    # both 02:00s (00:00 and 01:00 UTC). One nightly run is wanted.
    verify = plan("0 2 * * *", name="verify")
    times = firings(verify, at("2026-10-24T12:00"), 3)
    assert [t.astimezone(UTC) for t in times] == [
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 0, tzinfo=UTC),
    ]
    submits = Submits()
    scheduler = Scheduler([verify], LocalCoordinator(), submits)
    for fire_time in times:
        # As the job sees it: datetime.now(zone) a moment after the fire time.
        scheduler.fire(verify, (fire_time + timedelta(seconds=0.3)).astimezone(UTC).astimezone(PARIS))
    assert submits.triggers == [
        "schedule:verify@2026-10-25T02:00+02:00",
        "schedule:verify@2026-10-26T02:00+01:00",
    ]


def test_in_the_spring_the_02_00_run_is_queued_when_given_the_time_in_utc() -> None:
    # On 2027-03-28 there is no 02:00 in Paris (01:59:59 CET is followed by 03:00 CEST); APScheduler
    # fires the nightly run at 01:00 UTC.
    verify = plan("0 2 * * *", name="verify")
    (fire_time, _) = firings(verify, at("2027-03-27T12:00"), 2)
    assert fire_time.astimezone(UTC) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    submits = Submits()
    assert Scheduler([verify], LocalCoordinator(), submits).fire(
        verify, datetime(2027, 3, 28, 1, 0, 0, 300_000, tzinfo=UTC)
    )
    (trigger,) = submits.triggers
    assert trigger.startswith("schedule:verify@2027-03-28T")


def test_in_the_spring_apscheduler_fires_at_03_00_cest() -> None:
    for name, expression in (("verify", "0 2 * * *"), ("fast", "*/15 * * * *")):
        schedule = plan(expression, name=name)
        (fire_time, _) = firings(schedule, utc("2027-03-28T00:50"), 2)
        assert fire_time.astimezone(UTC) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC), name


@pytest.mark.parametrize(("name", "expression"), [("verify", "0 2 * * *"), ("fast", "*/15 * * * *")])
def test_in_the_spring_the_firing_at_03_00_cest_is_queued(name: str, expression: str) -> None:
    schedule = plan(expression, name=name)
    submits = Submits()
    scheduler = Scheduler([schedule], LocalCoordinator(), submits)
    # APScheduler fires both at 01:00 UTC (see above); fire() then runs with datetime.now(PARIS).
    run_id = scheduler.fire(schedule, utc("2027-03-28T01:00:00.300"))
    assert run_id == 1
    (trigger,) = submits.triggers
    assert trigger.startswith(f"schedule:{name}@2027-03-28T")


# -- replicas ------------------------------------------------------------------------------------------


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    name = f"test-sched-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for pattern in (f"{name}:*", f"{name}-dramatiq:*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["local", "redis"])
def replica_coordinators(
    request: pytest.FixtureRequest, redis_namespace: str
) -> Iterator[Callable[[], Coordinator]]:
    """Coordinators of scheduler replicas sharing one store (each Redis one has its own connection)."""
    if request.param == "local":
        shared = LocalCoordinator()
        yield lambda: shared
        return
    clients: list[redis.Redis] = []

    def make() -> Coordinator:
        client = redis.Redis.from_url(REDIS_URL)
        clients.append(client)
        return RedisCoordinator(client, namespace=redis_namespace, lock_ttl_s=30)

    try:
        yield make
    finally:
        for client in clients:
            client.close()


def test_two_replicas_queue_each_slot_once(replica_coordinators: Callable[[], Coordinator]) -> None:
    fast = plan("*/15 * * * *")
    submits = Submits()
    first = Scheduler([fast], replica_coordinators(), submits)
    second = Scheduler([fast], replica_coordinators(), submits)
    outcomes = []
    for slot in ("2027-01-12T10:00", "2027-01-12T10:15", "2027-01-12T10:30"):
        # The replicas wake up a little apart, in either order.
        outcomes.append(
            (
                first.fire(fast, at(slot) + timedelta(seconds=0.3)),
                second.fire(fast, at(slot) + timedelta(seconds=20)),
            )
        )
        outcomes.append((first.fire(fast, at(slot) + timedelta(seconds=25)), None))
    assert submits.triggers == [
        "schedule:fast@2027-01-12T10:00+01:00",
        "schedule:fast@2027-01-12T10:15+01:00",
        "schedule:fast@2027-01-12T10:30+01:00",
    ]
    assert outcomes == [(1, None), (None, None), (2, None), (None, None), (3, None), (None, None)]


def test_racing_replicas_queue_a_slot_once(replica_coordinators: Callable[[], Coordinator]) -> None:
    verify = plan("0 2 * * *", name="verify")
    submits = Submits()
    replicas = [Scheduler([verify], replica_coordinators(), submits) for _ in range(6)]
    start = threading.Barrier(len(replicas))
    results: list[int | None] = []

    def fire(index: int) -> None:
        start.wait()
        results.append(replicas[index].fire(verify, at("2027-01-12T02:00") + timedelta(seconds=index)))

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(replicas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert submits.triggers == ["schedule:verify@2027-01-12T02:00+01:00"]
    assert sorted(results, key=lambda r: r is None) == [1, None, None, None, None, None]


# -- staying alive ---------------------------------------------------------------------------------------


def every_second(name: str = "fast") -> Schedule:
    """A plan with a slot due at any moment (the default ``now`` of ``fire`` is the real clock)."""
    return Schedule(name, SyncMode.FAST, CronTrigger(second="*", timezone=UTC))


def test_a_submit_that_raises_does_not_kill_the_scheduler(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[SyncRequest] = []

    def refuse(request: SyncRequest) -> int:
        calls.append(request)
        raise RuntimeError("the database is down")

    schedule = every_second()
    scheduler = Scheduler([schedule], LocalCoordinator(), refuse)
    with caplog.at_level(logging.ERROR, logger="jobs.scheduler"):
        scheduler._fire_safely(schedule)
    assert len(calls) == 1
    assert "schedule fast: could not queue the run" in caplog.text
    assert "the database is down" in caplog.text


def test_an_unreachable_coordinator_does_not_kill_the_scheduler(caplog: pytest.LogCaptureFixture) -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    submits = Submits()
    schedule = every_second()
    try:
        down = RedisCoordinator(client, namespace="unreachable", lock_ttl_s=30)
        with caplog.at_level(logging.ERROR, logger="jobs.scheduler"):
            Scheduler([schedule], down, submits)._fire_safely(schedule)
    finally:
        client.close()
    assert submits.requests == []
    assert "could not queue the run" in caplog.text
    # The same scheduler goes on firing once its coordinator answers again.
    scheduler = Scheduler([schedule], LocalCoordinator(), submits)
    scheduler._fire_safely(schedule)
    assert len(submits.requests) == 1


def test_run_fires_through_apscheduler_until_stopped() -> None:
    submits = Submits()
    stop = threading.Event()
    scheduler = Scheduler([every_second()], LocalCoordinator(), submits)
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not submits.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    # Every second fires, but the slot is the minute: at most one run per minute reached.
    assert 1 <= len(submits.requests) <= 2
    assert all(t.startswith("schedule:fast@") for t in submits.triggers)
