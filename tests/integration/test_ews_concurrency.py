"""Many threads through one EwsBackend while the server answers ErrorServerBusy at random.

exchangelib 5.6 can deadlock when threads share one protocol with ``max_connections > 1`` and get
ErrorServerBusy at the same moment (``decrease_poolsize`` holds the pool lock while ``get_session`` calls
``increase_poolsize``). The backend gives each connection slot its own one-session protocol; this test
hammers that design and fails (instead of hanging the suite) if any round does not finish in time.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from adapters.ews.backend import EwsBackend
from connector.backend import OpOutcome
from connector.errors import ThrottledError
from connector.models import Target
from sandbox.conditions import Fault
from sandbox.server import Sandbox
from sandbox.tenant import Mailbox
from tests.contract.sandbox_harness import ews_config
from tests.contract.specs import create, spec

pytestmark = pytest.mark.sandbox

THREADS = 8
ROUNDS = 5


def test_threads_sharing_a_backend_under_server_busy_never_deadlock_and_stay_bounded(
    sandbox: Sandbox,
) -> None:
    targets = [Target(f"busy{n}@contoso.example", f"busy{n}") for n in range(THREADS)]
    for target in targets:
        sandbox.tenant.add_mailbox(Mailbox(target.address))
    sandbox.conditions.update(latency_ms=20)
    sandbox.conditions.add_fault(Fault("server_busy", probability=0.5, face="ews", retry_after=0.05))
    # Fewer slots than threads: threads also queue for connections, the bound the backend promises.
    backend = EwsBackend(ews_config(sandbox, max_connections=4, max_retry_wait_s=30.0))
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    original = backend.connection.call

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return original(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                in_flight -= 1

    backend.connection.call = counted  # type: ignore[method-assign,assignment]

    def one(round_no: int, target: Target) -> list[OpOutcome]:
        ops = [create(spec(target, f"r{round_no}-{n}")) for n in range(3)]
        outcomes = backend.apply(target, ops)
        backend.list_tagged(target, *_ever())
        return outcomes

    try:
        for round_no in range(ROUNDS):
            with ThreadPoolExecutor(THREADS) as pool:
                futures = [pool.submit(one, round_no, t) for t in targets]
                for future in futures:
                    # A deadlock shows as a timeout here rather than a hung suite.
                    outcomes = future.result(timeout=60)
                    assert all(o.ok or isinstance(o.error, ThrottledError) for o in outcomes)
    finally:
        backend.close()
        sandbox.conditions.clear_faults()
    assert len(sandbox.log.entries(lambda e: e.fault == "server_busy")) >= THREADS  # the faults fired
    for target in targets:
        keys = [i.subject for i in sandbox.tenant.items(target.address)]
        assert len(keys) == len(set(keys)) == ROUNDS * 3  # every op landed once: busy answers wrote nothing
    # Requests in flight for the service account are bounded by its slots, whatever the number of threads.
    edges = sorted(
        [(e.started, 1) for e in sandbox.log.entries()] + [(e.finished, -1) for e in sandbox.log.entries()],
        key=lambda edge: (edge[0], edge[1]),
    )
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most <= 4
    assert peak > 4  # more threads than slots really competed


def _ever() -> tuple[datetime, datetime]:
    return datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
