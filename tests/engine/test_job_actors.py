"""The Dramatiq actors of a sync (jobs/actors.py) on the in-process stub broker, run by a Dramatiq worker
inside the test: the job system is built from TOML settings without ``jobs.redis_url`` (the embedded
default) over a CSV source, SQLite state and the memory calendar.

The real engine does the syncing; a thin subclass lets a test script what ``sync_one`` does for a
mailbox on each attempt (a throttled result, an exception, a stall) to drive the retry, lock and
dead-letter paths."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dramatiq.middleware import CurrentMessage

from adapters.memory import MemoryBackend
from app import bootstrap
from app.jobs import JobSystem, build_jobs, in_process_worker
from connector.errors import SettingsError
from connector.models import utc_now
from connector.settings import Settings, load_settings
from connector.state import Counts, MailboxResult, MailboxStatus, RunRecord, RunStatus, SyncMode
from connector.sync import SyncEngine, SyncRequest
from jobs.actors import JobContext, JobLimits, Services, declare
from jobs.broker import make_broker
from jobs.coordination import LocalCoordinator
from jobs.runs import RunService
from tests.small_site import ALICE, BOB, FIRST_DAY, settings_text, write_targets

#: The events each enabled mailbox gets from the source (Carol is not an enabled target).
EVENTS = {ALICE: 3, BOB: 2}
#: No test here should need more; a hang shows as a failed run instead of a stuck suite.
RUN_TIMEOUT_S = 20.0


def write_site(folder: Path) -> None:
    day = FIRST_DAY
    rows = [
        ("A-1", "E1", f"{day}T08:00", f"{day}T12:00", "Frühschicht"),
        ("A-2", "E1", f"{day + timedelta(days=1)}T08:00", f"{day + timedelta(days=1)}T12:00", "Spät"),
        ("A-3", "E1", f"{day + timedelta(days=2)}T08:00", f"{day + timedelta(days=2)}T09:00", "Kurz"),
        ("B-1", "E2", f"{day}T09:00", f"{day}T10:00", "Interview"),
        ("B-2", "E2", f"{day + timedelta(days=3)}T09:00", f"{day + timedelta(days=3)}T17:00", "Messe"),
        ("C-1", "E3", f"{day}T09:00", f"{day}T10:00", "Carol is not enabled"),
    ]
    lines = ["key,owner,start,end,title", *(",".join(row) for row in rows)]
    (folder / "schedule.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_targets(folder)


def load(folder: Path, jobs: str) -> Settings:
    text = settings_text(jobs)
    return load_settings(text, environ={}, base_dir=folder)


# -- scripting sync_one ----------------------------------------------------------------------------------


@dataclass
class Attempt:
    mailbox: str
    #: Dramatiq's retry count of the message being processed (0 on the first delivery).
    retries: int
    started: float
    real: Callable[[], MailboxResult]
    #: Set by behaviours that run long, when they got to their end (were not interrupted).
    completed: bool = False


Behaviour = Callable[[Attempt], MailboxResult]


def real(attempt: Attempt) -> MailboxResult:
    return attempt.real()


def throttled(retry_after: float | None) -> Behaviour:
    def behaviour(attempt: Attempt) -> MailboxResult:
        now = utc_now()
        return MailboxResult(
            mailbox=attempt.mailbox,
            status=MailboxStatus.FAILED,
            counts=Counts(failed=1),
            started_at=now,
            finished_at=now,
            error_code="throttled",
            error="the server is busy; try again later",
            op_errors=(("A-1", "ErrorServerBusy"),),
            retryable=True,
            retry_after=retry_after,
        )

    return behaviour


def raises(exc: BaseException) -> Behaviour:
    def behaviour(attempt: Attempt) -> MailboxResult:
        raise exc

    return behaviour


def stalls(seconds: float) -> Behaviour:
    """A sync that hangs (in small sleeps, so an interrupt can land), then does the real work."""

    def behaviour(attempt: Attempt) -> MailboxResult:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.02)
        attempt.completed = True
        return attempt.real()

    return behaviour


@dataclass
class Script:
    """Per mailbox, what each attempt does: one behaviour per attempt, the last one repeating; a
    mailbox without a script is synced for real."""

    plans: dict[str, list[Behaviour]] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def on(self, mailbox: str, *behaviours: Behaviour) -> None:
        self.plans[mailbox] = list(behaviours)

    def of(self, mailbox: str) -> list[Attempt]:
        with self._mutex:
            return [a for a in self.attempts if a.mailbox == mailbox]

    def sync(self, attempt: Attempt) -> MailboxResult:
        with self._mutex:
            self.attempts.append(attempt)
            plan = self.plans.get(attempt.mailbox, [real])
            behaviour = plan.pop(0) if len(plan) > 1 else plan[0]
        return behaviour(attempt)


class ScriptedEngine(SyncEngine):
    """The container's engine, with ``sync_one`` going through the script."""

    def __init__(self, inner: SyncEngine, script: Script) -> None:
        super().__init__(
            source=inner.source,
            targets=inner.targets,
            store=inner.store,
            backend=inner.backend,
            rules=inner.rules,
            window=inner.window,
            guard=inner.guard,
            limits=inner.limits,
            owners_are_addresses=inner.owners_are_addresses,
            clock=inner.clock,
            new_id=inner.new_id,
        )
        self.script = script

    def sync_one(
        self, address: str, request: SyncRequest, *, source_items: int | None = None
    ) -> MailboxResult:
        message = CurrentMessage.get_current_message()
        retries = int(message.options.get("retries", 0)) if message is not None else 0

        def run_for_real() -> MailboxResult:
            return SyncEngine.sync_one(self, address, request, source_items=source_items)

        return self.script.sync(Attempt(address, retries, time.monotonic(), run_for_real))


def scripted_services(settings: Settings, script: Script) -> Callable[[], Services]:
    def build() -> Services:
        container = bootstrap.build(settings)
        container.engine = ScriptedEngine(container.engine, script)
        return container

    return build


# -- the job system --------------------------------------------------------------------------------------


@dataclass
class Site:
    folder: Path
    systems: list[JobSystem] = field(default_factory=list)

    def system(
        self, jobs: str = "", *, script: Script | None = None, services: Callable[[], Services] | None = None
    ) -> JobSystem:
        settings = load(self.folder, jobs)
        if services is None:
            services = scripted_services(settings, script or Script())
        built = build_jobs(settings, services=services)
        assert built.in_process
        self.systems.append(built)
        return built


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    write_site(tmp_path)
    made = Site(tmp_path)
    try:
        yield made
    finally:
        for system in made.systems:
            system.close()


FAST_RETRIES = "max_retries = 2\nmin_backoff_s = 0.01\nmax_backoff_s = 0.1"


def run_to_end(system: JobSystem, idle: Callable[[], bool], users: tuple[str, ...] = ()) -> RunRecord:
    run_id = system.runs.submit(SyncRequest(SyncMode.FAST, users, False, trigger="test"))
    return follow(system, run_id, idle)


def follow(system: JobSystem, run_id: int, idle: Callable[[], bool]) -> RunRecord:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    record = system.runs.wait(run_id, stalled=lambda: idle() or time.monotonic() > deadline, poll_s=0.02)
    settle(idle)
    return record


def settle(idle: Callable[[], bool]) -> None:
    """Wait until the worker has nothing left (dead letters and the like are handled)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not idle():
        assert time.monotonic() < deadline, "the worker never became idle"
        time.sleep(0.02)


def result_of(record: RunRecord, mailbox: str) -> MailboxResult:
    (found,) = [r for r in record.results if r.mailbox == mailbox]
    return found


def calendar_of(system: JobSystem) -> MemoryBackend:
    backend = system.context.services.engine.backend
    assert isinstance(backend, MemoryBackend)
    return backend


def tagged(system: JobSystem, mailbox: str) -> list[str]:
    return sorted(e.tag for e in calendar_of(system).calendar.events(mailbox) if e.tag)


# -- the normal course -------------------------------------------------------------------------------------


def test_a_run_syncs_every_enabled_mailbox_and_a_second_run_changes_nothing(site: Site) -> None:
    system = site.system()
    with in_process_worker(system) as idle:
        first = run_to_end(system, idle)
        second = run_to_end(system, idle)

    assert first.status is RunStatus.SUCCEEDED, first.error
    assert first.mailboxes_total == first.mailboxes_done == 2
    assert {r.mailbox: (r.status, r.counts.created) for r in first.results} == {
        ALICE: (MailboxStatus.OK, 3),
        BOB: (MailboxStatus.OK, 2),
    }
    assert first.counts.created == 5 and first.counts.failed == 0
    assert tagged(system, ALICE) == ["A-1", "A-2", "A-3"]
    assert tagged(system, BOB) == ["B-1", "B-2"]

    assert second.status is RunStatus.SUCCEEDED
    assert (second.counts.created, second.counts.unchanged) == (0, 5)
    health = {h.mailbox: h for h in system.store.health()}
    assert {m: h.status for m, h in health.items()} == {ALICE: MailboxStatus.OK, BOB: MailboxStatus.OK}
    assert health[ALICE].last_run_id == second.id
    assert system.broker.dead_letters == []  # type: ignore[attr-defined]


def test_a_run_for_some_users_syncs_only_them(site: Site) -> None:
    system = site.system()
    with in_process_worker(system) as idle:
        record = run_to_end(system, idle, users=(BOB,))
    assert record.status is RunStatus.SUCCEEDED
    assert [(r.mailbox, r.counts.created) for r in record.results] == [(BOB, 2)]
    assert tagged(system, ALICE) == []


def test_runs_queued_while_a_mailbox_sync_is_pending_share_one_sync(site: Site) -> None:
    script = Script()
    system = site.system(script=script)
    # Both mailboxes are busy elsewhere: the first run's syncs stay pending while the second fans out.
    leases = [system.coordinator.lock(ALICE), system.coordinator.lock(BOB)]
    with in_process_worker(system) as idle:
        try:
            first = system.runs.submit(SyncRequest(trigger="test"))
            second = system.runs.submit(SyncRequest(SyncMode.VERIFY, trigger="test"))
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while any((r := system.store.run(i)) is None or r.mailboxes_total != 2 for i in (first, second)):
                assert time.monotonic() < deadline, "the fan-outs did not happen"
                time.sleep(0.02)
        finally:
            for lease in leases:
                assert lease is not None
                lease.release()
        records = [follow(system, first, idle), follow(system, second, idle)]

    assert [r.status for r in records] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    # One sync per mailbox served both runs, in the stronger (verifying) mode, recorded in each.
    assert sorted(a.mailbox for a in script.attempts) == [ALICE, BOB]
    for mailbox, created in EVENTS.items():
        one, two = (result_of(r, mailbox) for r in records)
        assert one == two
        assert one.counts.created == created


# -- retries -------------------------------------------------------------------------------------------------


def test_a_throttled_mailbox_is_retried_after_the_servers_wait_and_recorded_once(site: Site) -> None:
    script = Script()
    script.on(ALICE, throttled(retry_after=0.2), real)
    system = site.system("max_retries = 3\nmin_backoff_s = 0.01\nmax_backoff_s = 5", script=script)
    with in_process_worker(system) as idle:
        record = run_to_end(system, idle)

    assert record.status is RunStatus.SUCCEEDED, record.error
    first, retry = script.of(ALICE)
    assert (first.retries, retry.retries) == (0, 1)
    # The server's Retry-After, not the (10 ms) back-off, set the pause.
    assert retry.started - first.started >= 0.2
    assert len(script.of(BOB)) == 1
    # The throttled attempt was not recorded: the run shows the retry's result only.
    assert record.mailboxes_done == 2
    alice = result_of(record, ALICE)
    assert (alice.status, alice.counts.created, alice.error) == (MailboxStatus.OK, 3, None)
    assert record.counts.created == 5


def test_a_mailbox_throttled_on_every_attempt_has_its_last_result_recorded(site: Site) -> None:
    script = Script()
    script.on(ALICE, throttled(retry_after=0.05))
    system = site.system(FAST_RETRIES, script=script)
    with in_process_worker(system) as idle:
        record = run_to_end(system, idle)

    assert [a.retries for a in script.of(ALICE)] == [0, 1, 2]  # max_retries = 2
    alice = result_of(record, ALICE)
    assert (alice.status, alice.error_code, alice.counts.failed) == (MailboxStatus.FAILED, "throttled", 1)
    assert alice.op_errors == (("A-1", "ErrorServerBusy"),)
    assert result_of(record, BOB).status is MailboxStatus.OK
    assert record.status is RunStatus.PARTIAL
    assert record.mailboxes_done == 2
    # Recorded as the mailbox's own result: no dead letter.
    assert system.broker.dead_letters == []  # type: ignore[attr-defined]
    health = {h.mailbox: h for h in system.store.health()}
    assert health[ALICE].status is MailboxStatus.FAILED and health[ALICE].error_code == "throttled"


@pytest.mark.parametrize(
    ("users", "status"),
    [((), RunStatus.PARTIAL), ((ALICE,), RunStatus.FAILED)],
    ids=["with-a-healthy-mailbox", "alone"],
)
def test_a_sync_that_keeps_raising_is_given_up_with_the_reason(
    site: Site, users: tuple[str, ...], status: RunStatus
) -> None:
    script = Script()
    script.on(ALICE, raises(RuntimeError("calendar service exploded")))
    system = site.system(FAST_RETRIES, script=script)
    with in_process_worker(system) as idle:
        record = run_to_end(system, idle, users)

    assert [a.retries for a in script.of(ALICE)] == [0, 1, 2]
    assert record.status is status
    assert record.mailboxes_done == record.mailboxes_total == len(users or EVENTS)
    alice = result_of(record, ALICE)
    assert (alice.status, alice.error_code) == (MailboxStatus.FAILED, "gave_up")
    assert alice.error is not None
    assert "gave up after 3 attempts" in alice.error
    assert "RuntimeError: calendar service exploded" in alice.error
    if not users:
        assert result_of(record, BOB).status is MailboxStatus.OK
    health = {h.mailbox: h for h in system.store.health()}
    assert health[ALICE].status is MailboxStatus.FAILED
    assert health[ALICE].error_code == "gave_up"
    assert "RuntimeError: calendar service exploded" in (health[ALICE].error or "")
    # The job went to the dead letters, and its ticket is finished.
    dead = system.broker.dead_letters  # type: ignore[attr-defined]
    [(mailbox, ticket_id)] = [m.args for m in dead if m.actor_name == "connector.sync_mailbox"]
    assert mailbox == ALICE
    assert system.coordinator.ticket(ticket_id) is None


# -- the mailbox lock --------------------------------------------------------------------------------------


def test_a_mailbox_synced_elsewhere_is_waited_for_without_counting_a_failure(site: Site) -> None:
    script = Script()
    system = site.system(FAST_RETRIES, script=script)
    lease = system.coordinator.lock(ALICE)
    assert lease is not None
    released: list[float] = []

    def release_later() -> None:
        time.sleep(1.0)
        released.append(time.monotonic())
        lease.release()

    releaser = threading.Thread(target=release_later)
    with in_process_worker(system) as idle:
        releaser.start()
        record = run_to_end(system, idle)
    releaser.join()

    assert record.status is RunStatus.SUCCEEDED, record.error
    (attempt,) = script.of(ALICE)
    assert attempt.started >= released[0]
    assert attempt.retries == 0
    (bob,) = script.of(BOB)
    assert bob.started < released[0]  # the other mailbox did not wait
    assert result_of(record, ALICE).counts.created == 3
    assert system.broker.dead_letters == []  # type: ignore[attr-defined]


def test_waiting_for_the_lock_does_not_reset_the_retries_already_spent(site: Site) -> None:
    script = Script()
    system = site.system("max_retries = 1\nmin_backoff_s = 0.5\nmax_backoff_s = 1", script=script)
    taken = threading.Event()

    def hold_lock_for_a_second() -> None:
        # Another worker grabs the mailbox right after the first attempt let go of it.
        deadline = time.monotonic() + 5
        while (lease := system.coordinator.lock(ALICE)) is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        taken.set()
        time.sleep(1.0)
        lease.release()

    def fail_and_get_overtaken(attempt: Attempt) -> MailboxResult:
        threading.Thread(target=hold_lock_for_a_second, daemon=True).start()
        raise RuntimeError("first failure")

    script.on(ALICE, fail_and_get_overtaken, raises(RuntimeError("still failing")))
    with in_process_worker(system) as idle:
        record = run_to_end(system, idle, users=(ALICE,))
    assert taken.is_set()

    alice = result_of(record, ALICE)
    assert alice.error_code == "gave_up"
    # One attempt plus max_retries = 1 retry, whatever the waits for the lock in between.
    assert len(script.of(ALICE)) == 2, [a.retries for a in script.of(ALICE)]


# -- settings and time limits ---------------------------------------------------------------------------


def test_services_with_bad_settings_fail_the_run_at_once_without_retries(site: Site) -> None:
    calls: list[float] = []

    def broken() -> Services:
        calls.append(time.monotonic())
        raise SettingsError(["backend.memory.path: cannot be read — check the path"])

    system = site.system(FAST_RETRIES, services=broken)
    with in_process_worker(system) as idle:
        record = run_to_end(system, idle)

    assert record.status is RunStatus.FAILED
    assert record.error is not None and "backend.memory.path: cannot be read" in record.error
    assert len(calls) == 1  # retrying cannot mend settings
    assert record.results == ()
    dead = system.broker.dead_letters  # type: ignore[attr-defined]
    assert [m.actor_name for m in dead] == ["connector.start_run"]
    assert "retries" not in dead[0].options


def test_a_fan_out_that_keeps_failing_is_given_up_with_the_run_failed(site: Site) -> None:
    calls: list[float] = []

    def flaky() -> Services:
        calls.append(time.monotonic())
        raise RuntimeError("database connection refused")

    system = site.system(FAST_RETRIES, services=flaky)
    with in_process_worker(system) as idle:
        record = run_to_end(system, idle)

    assert len(calls) == 3
    assert record.status is RunStatus.FAILED
    assert record.error == "reading the source failed 3 times; see the worker log"


def limited_system(site: Site, script: Script, *, time_limit_s: int, max_retries: int) -> JobSystem:
    """The job system with a mailbox time limit below what settings allow (10 s), declared directly."""
    settings = load(site.folder, "min_backoff_s = 0.01\nmax_backoff_s = 0.1")
    broker = make_broker(settings.jobs)
    coordinator = LocalCoordinator()
    store = bootstrap.build_store(settings)
    limits = JobLimits(
        threads=2, max_retries=max_retries, mailbox_time_limit_s=time_limit_s, run_time_limit_s=30
    )
    context = JobContext(coordinator, store, scripted_services(settings, script), limits)
    actors = declare(broker, context)
    system = JobSystem(
        settings, broker, coordinator, context, actors, store, RunService(store, actors.start_run)
    )
    site.systems.append(system)
    return system


def test_a_sync_over_its_time_limit_is_interrupted_and_retried(site: Site) -> None:
    script = Script()
    script.on(ALICE, stalls(4.0), real)
    system = limited_system(site, script, time_limit_s=1, max_retries=1)
    began = time.monotonic()
    with in_process_worker(system) as idle:
        record = run_to_end(system, idle, users=(ALICE,))
    elapsed = time.monotonic() - began

    first, *later = script.of(ALICE)
    assert not first.completed, "the stalled sync ran to its end instead of being interrupted"
    assert [a.retries for a in later] == [1]
    assert record.status is RunStatus.SUCCEEDED
    assert result_of(record, ALICE).counts.created == 3
    assert elapsed < 4.0


def test_a_sync_that_always_overruns_its_time_limit_is_given_up(site: Site) -> None:
    script = Script()
    script.on(ALICE, stalls(3.0))
    system = limited_system(site, script, time_limit_s=1, max_retries=1)
    with in_process_worker(system) as idle:
        record = run_to_end(system, idle, users=(ALICE,))

    attempts = script.of(ALICE)
    assert [a.completed for a in attempts] == [False, False]
    alice = result_of(record, ALICE)
    assert (alice.status, alice.error_code) == (MailboxStatus.FAILED, "gave_up")
    assert "gave up after 2 attempts: TimeLimitExceeded" in (alice.error or "")
    assert record.status is RunStatus.FAILED


def test_time_limited_actors_are_declared_with_the_limits(site: Site) -> None:
    system = limited_system(site, Script(), time_limit_s=7, max_retries=4)
    options: dict[str, Any] = system.actors.sync_mailbox.options
    assert options["time_limit"] == 7_000
    assert options["max_retries"] == 4
    assert options["on_retry_exhausted"] == system.actors.mailbox_gave_up.actor_name
    start: dict[str, Any] = system.actors.start_run.options
    assert start["time_limit"] == 30_000
    assert start["on_retry_exhausted"] == system.actors.run_gave_up.actor_name
    assert SettingsError in start["throws"]
