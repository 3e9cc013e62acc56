"""The connector as a service, against the real Redis on 127.0.0.1:6379 and the sandbox tenant: real
`connector worker`, `connector serve` and `connector scheduler` processes, the state in SQLite, the
example data (21 mailboxes, 464 events). Each test has its own Redis namespace.

What they show (issue 6): ten "sync now" calls within a second are coalesced, every mailbox is synced
without two syncs of one mailbox overlapping and without duplicates, the run counts are right, the worker
never runs more syncs at once than its threads; a worker killed with SIGKILL mid-run is recovered from
within two minutes without duplicates; two schedulers queue each firing once.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from adapters.state import open_store
from connector.ownership import PROPERTY_SET, SOURCE_KEY
from connector.state import MailboxResult, RunRecord, RunStatus
from sandbox.server import Sandbox
from sandbox.tenant import prop_key

ROOT = Path(__file__).resolve().parents[2]
CONNECTOR = Path(sys.executable).parent / "connector"
REDIS_URL = "redis://127.0.0.1:6379/0"
TAG = prop_key(PROPERTY_SET, SOURCE_KEY)
EXPECTED_EVENTS = 464
EXPECTED_MAILBOXES = 21


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"test-jobs-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in (f"{name}:*", f"{name}-dramatiq:*"):
        keys = list(client.scan_iter(pattern))
        if keys:
            client.delete(*keys)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def site(tmp_path: Path, sandbox: Sandbox, namespace: str) -> Path:
    for name in ("schedule.csv", "targets.csv"):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    info = sandbox.info()
    (tmp_path / "settings.toml").write_text(
        f"""
[connector]
timezone = "Europe/Paris"
[window]
days_before = 7
days_after = 180
[source]
path = "schedule.csv"
[targets]
kind = "file"
path = "targets.csv"
[backend]
kind = "graph"
max_threads = 2
[backend.graph]
tenant_id = "{info["tenant_id"]}"
client_id = "{info["client_id"]}"
client_secret = "{info["client_secret"]}"
authority = "{info["authority"]}"
base_url = "{info["graph_url"]}"
ca_file = "{info["ca_file"]}"
[state]
url = "sqlite:///{tmp_path / "connector.db"}"
[jobs]
redis_url = "{REDIS_URL}"
namespace = "{namespace}"
min_backoff_s = 1
max_backoff_s = 5
[schedule]
fast = "* * * * *"
verify = ""
[api.tokens]
host-app = {{ env = "TEST_API_TOKEN" }}
""",
        encoding="utf-8",
    )
    return tmp_path


TOKEN = secrets.token_urlsafe(32)


class Processes:
    """Connector processes of one test; all are stopped (their whole process groups) at the end."""

    def __init__(self, site: Path) -> None:
        self.site = site
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        log = self.site / f"{name}.log"
        env = dict(os.environ, TEST_API_TOKEN=TOKEN, CONNECTOR_SETTINGS=str(self.site / "settings.toml"))
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(CONNECTOR), *args],
                cwd=self.site,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: Dramatiq forks worker processes
            )
        self.started.append((process, log))
        return process

    def kill(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        with_suppressed_lookup(lambda: os.killpg(process.pid, sig))
        process.wait(timeout=60)

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                # To the main process only, as a supervisor does: Dramatiq's main process passes it on.
                process.send_signal(signal.SIGTERM)
        for process, log in self.started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with_suppressed_lookup(lambda p=process: os.killpg(p.pid, signal.SIGKILL))
                process.wait(timeout=10)
            # Whatever the process said ends up in the test report if the test failed.
            sys.stderr.write(f"--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-3000:]}\n")


def with_suppressed_lookup(action: Any) -> None:
    with contextlib.suppress(ProcessLookupError):
        action()


@pytest.fixture
def processes(site: Path) -> Iterator[Processes]:
    group = Processes(site)
    yield group
    group.stop_all()


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def store_of(site: Path) -> Any:
    return open_store(f"sqlite:///{site / 'connector.db'}")


def finished_runs(site: Path, run_ids: list[int]) -> list[RunRecord] | None:
    store = store_of(site)
    try:
        runs = [store.run(i) for i in run_ids]
    finally:
        store.close()
    if all(r is not None and r.status.finished for r in runs):
        return [r for r in runs if r is not None]
    return None


def tagged(sandbox: Sandbox) -> dict[str, Counter[str]]:
    by_mailbox: dict[str, Counter[str]] = defaultdict(Counter)
    for item in sandbox.tenant.all_items():
        key = item.prop(TAG)
        if key is not None:
            by_mailbox[item.mailbox][key] += 1
    return by_mailbox


def assert_calendars_exact(sandbox: Sandbox) -> None:
    events = tagged(sandbox)
    duplicates = {m: [k for k, n in keys.items() if n > 1] for m, keys in events.items()}
    assert not any(duplicates.values()), f"duplicate events: {duplicates}"
    assert sum(len(keys) for keys in events.values()) == EXPECTED_EVENTS


def distinct_syncs(runs: list[RunRecord]) -> dict[str, list[MailboxResult]]:
    """One sync serves every run coalesced into it and is recorded in each: keep it once."""
    syncs: dict[str, dict[datetime, MailboxResult]] = defaultdict(dict)
    for run in runs:
        for result in run.results:
            syncs[result.mailbox][result.started_at] = result
    return {m: sorted(s.values(), key=lambda r: r.started_at) for m, s in syncs.items()}


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1])
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def start_server(processes: Processes) -> str:
    port = free_port()
    processes.start("serve", "--port", str(port), name="serve")
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 60, "connector serve to be ready")
    return base


@pytest.mark.slow
def test_ten_triggers_in_a_second_coalesce_and_no_mailbox_is_synced_twice_at_once(
    site: Path, sandbox: Sandbox, processes: Processes, namespace: str
) -> None:
    processes.start("worker", "--threads", "2", "--processes", "1", name="worker")
    base = start_server(processes)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    # Without a token, or with a wrong one: 401, and the token sent is never echoed.
    assert httpx.post(f"{base}/api/v1/sync", json={}).status_code == 401
    wrong = secrets.token_urlsafe(32)
    refused = httpx.post(f"{base}/api/v1/sync", json={}, headers={"Authorization": f"Bearer {wrong}"})
    assert refused.status_code == 401
    assert wrong not in refused.text and wrong not in str(refused.headers)

    # Ten callers at once, as ten clicks on "update now" would come.
    with httpx.Client(base_url=base, headers=auth, timeout=30) as http, ThreadPoolExecutor(10) as pool:
        http.get("/api/v1/runs/0")  # opens the connection pool before the clock starts
        began = time.monotonic()
        answers = list(pool.map(lambda _: http.post("/api/v1/sync", json={}), range(10)))
        elapsed = time.monotonic() - began
    assert elapsed < 1.0, f"the ten calls took {elapsed:.2f} s"
    assert [a.status_code for a in answers] == [202] * 10
    run_ids = [a.json()["run_id"] for a in answers]

    runs = wait_for(lambda: finished_runs(site, run_ids), 240, "the ten runs to finish")
    for run in runs:
        assert run.status is RunStatus.SUCCEEDED, (run.id, run.error)
        assert run.mailboxes_done == run.mailboxes_total == EXPECTED_MAILBOXES
        # Each mailbox's result is the sync that served this run: every event created or unchanged.
        assert run.counts.created + run.counts.unchanged == EXPECTED_EVENTS
        assert run.counts.failed == 0 and run.counts.deleted == 0
    progress = httpx.get(f"{base}/api/v1/runs/{run_ids[0]}", headers=auth).json()
    assert progress["mailboxes_done"] == progress["mailboxes_total"] == EXPECTED_MAILBOXES

    assert_calendars_exact(sandbox)
    syncs = distinct_syncs(runs)
    total_syncs = sum(len(s) for s in syncs.values())
    created = sum(r.counts.created for s in syncs.values() for r in s)
    print(
        f"\n10 triggers x {EXPECTED_MAILBOXES} mailboxes: {total_syncs} mailbox syncs ran, {created} events created"
    )
    assert created == EXPECTED_EVENTS, "every event created exactly once"
    assert total_syncs <= 2 * EXPECTED_MAILBOXES, "pending triggers coalesce"

    # No mailbox has two syncs overlapping in time, and every request the sandbox saw for a mailbox
    # falls inside one of that mailbox's syncs.
    for mailbox, results in syncs.items():
        spans = [(r.started_at, r.finished_at) for r in results]
        assert max_overlap(spans) == 1, f"{mailbox}: overlapping syncs {spans}"
        for entry in sandbox.log.entries():
            if entry.face != "graph" or entry.mailbox != mailbox:
                continue
            assert any(s <= entry.started and entry.finished <= e for s, e in spans), (mailbox, entry)

    # The thread limit, observed: never more than 2 syncs at once in the worker.
    everything = [(r.started_at, r.finished_at) for s in syncs.values() for r in s]
    client = redis.Redis.from_url(REDIS_URL)
    peaks = [int(client.get(key) or 0) for key in client.scan_iter(f"{namespace}:peak:*")]
    print(f"most syncs at once: {max_overlap(everything)} (from the run results), worker peaks {peaks}")
    assert peaks and max(peaks) <= 2
    assert httpx.get(f"{base}/readyz").json()["workers"] == 1
    assert max_overlap(everything) <= 2


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_recovered_within_two_minutes_without_duplicates(
    site: Path, sandbox: Sandbox, processes: Processes
) -> None:
    # Slow requests, so the kill lands in the middle of the run.
    sandbox.conditions.update(latency_ms=150)
    worker = processes.start("worker", "--threads", "2", name="worker-1")
    queued = subprocess.run(
        [str(CONNECTOR), "sync", "--no-wait", "--json"],
        cwd=site,
        env=dict(os.environ, TEST_API_TOKEN=TOKEN, CONNECTOR_SETTINGS=str(site / "settings.toml")),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    run_id = int(json.loads(queued.stdout)["run_id"])

    def some_done() -> bool:
        store = store_of(site)
        try:
            run = store.run(run_id)
        finally:
            store.close()
        return run is not None and 3 <= run.mailboxes_done < EXPECTED_MAILBOXES - 3

    wait_for(some_done, 120, "the run to be under way")
    processes.kill(worker)  # SIGKILL to the whole group: no goodbye, no requeue by the worker itself
    killed_at = time.monotonic()
    sandbox.conditions.update(latency_ms=0)

    processes.start("worker", "--threads", "2", name="worker-2")
    (run,) = wait_for(lambda: finished_runs(site, [run_id]), 180, "the run to complete after the kill")
    recovered = time.monotonic() - killed_at
    print(f"\nrun {run_id} completed {recovered:.1f} s after the worker was killed")
    assert recovered < 120
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.mailboxes_done == EXPECTED_MAILBOXES
    assert_calendars_exact(sandbox)


@pytest.mark.slow
def test_two_schedulers_queue_each_firing_once(site: Path, processes: Processes) -> None:
    # Start just after a minute boundary so the test spans the next one (and maybe a second).
    now = datetime.now()
    if now.second > 50:
        time.sleep(62 - now.second)
    processes.start("-v", "scheduler", name="scheduler-1")
    processes.start("-v", "scheduler", name="scheduler-2")
    deadline = datetime.now() + timedelta(seconds=65)
    while datetime.now() < deadline:
        time.sleep(1)
    processes.stop_all()
    processes.started.clear()

    store = store_of(site)
    try:
        runs = store.recent_runs(100)
    finally:
        store.close()
    fired = Counter(r.trigger for r in runs if r.trigger.startswith("schedule:fast@"))
    print(f"\nfirings: {dict(fired)}")
    assert fired, "no firing within 65 s of a per-minute schedule"
    assert set(fired.values()) == {1}, f"a firing was queued twice: {fired}"
    logs = [(site / f"scheduler-{n}.log").read_text() for n in (1, 2)]
    claimed = sum(text.count("queued run") for text in logs)
    skipped = sum(text.count("already queued by another scheduler") for text in logs)
    assert claimed == len(fired) and skipped == len(fired), logs


@pytest.mark.slow
def test_sigterm_lets_running_syncs_finish_and_the_rest_waits_for_the_next_worker(
    site: Path, sandbox: Sandbox, processes: Processes
) -> None:
    sandbox.conditions.update(latency_ms=150)
    worker = processes.start("worker", "--threads", "2", name="worker-1")
    env = dict(os.environ, TEST_API_TOKEN=TOKEN, CONNECTOR_SETTINGS=str(site / "settings.toml"))
    queued = subprocess.run(
        [str(CONNECTOR), "sync", "--no-wait", "--json"],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    run_id = int(json.loads(queued.stdout)["run_id"])

    def progress() -> int:
        store = store_of(site)
        try:
            run = store.run(run_id)
        finally:
            store.close()
        return run.mailboxes_done if run is not None else 0

    wait_for(lambda: 2 <= progress() < EXPECTED_MAILBOXES - 4, 120, "the run to be under way")
    worker.send_signal(signal.SIGTERM)  # as a supervisor stops it
    assert worker.wait(timeout=120) == 0
    log = (site / "worker-1.log").read_text()
    assert "Killing worker process" not in log, log[-2000:]
    stopped_at = progress()
    assert stopped_at < EXPECTED_MAILBOXES
    # Nothing was cut off half-way: whatever was recorded is complete, the rest is still queued.
    sandbox.conditions.update(latency_ms=0)
    processes.start("worker", "--threads", "2", name="worker-2")
    (run,) = wait_for(lambda: finished_runs(site, [run_id]), 120, "the run to complete on the next worker")
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert_calendars_exact(sandbox)


def test_connector_sync_with_redis_queues_and_follows_the_run(
    site: Path, sandbox: Sandbox, processes: Processes
) -> None:
    processes.start("worker", "--threads", "2", name="worker")
    env = dict(os.environ, TEST_API_TOKEN=TOKEN, CONNECTOR_SETTINGS=str(site / "settings.toml"))
    done = subprocess.run(
        [str(CONNECTOR), "sync", "--json"], cwd=site, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert (doc["status"], doc["created"], doc["mailboxes_done"]) == (
        "succeeded",
        EXPECTED_EVENTS,
        EXPECTED_MAILBOXES,
    )
    assert doc["quarantined"] == 7
    assert_calendars_exact(sandbox)
