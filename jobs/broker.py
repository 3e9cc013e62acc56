"""The Dramatiq broker from settings: Redis for a real installation, the in-process stub broker for the
embedded default. Actors are declared on the broker passed in (``jobs.actors.declare``), never on
Dramatiq's implicit global one, so nothing depends on import order.

Redelivery after a crash (DESIGN §5): Dramatiq's Redis broker gives a dead worker's unacknowledged
messages back only when some other worker's broker call happens to run "maintenance" *and* the dead
worker's heartbeat is older than ``heartbeat_timeout``. Its defaults (60 s, and maintenance on 0.1 % of
calls) can leave a killed worker's mailbox job waiting for many minutes; our defaults are 20 s and 10 %,
and a heartbeat thread keeps a busy worker's heartbeat fresh even while all its threads run long syncs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

import redis
from dramatiq import Broker, Worker
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from connector.settings import JobsSection

log = logging.getLogger(__name__)

#: Every actor of ours goes to this queue (under the namespace).
QUEUE = "connector"


def redis_client(url: str) -> redis.Redis:
    # Timeouts so a Redis that hangs fails a call instead of freezing a worker thread forever.
    return redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10, health_check_interval=30)


def make_broker(jobs: JobsSection) -> Broker:
    middleware: list[Middleware] = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        CurrentMessage(),
        Retries(
            max_retries=jobs.max_retries,
            min_backoff=int(jobs.min_backoff_s * 1000),
            max_backoff=int(jobs.max_backoff_s * 1000),
        ),
    ]
    if jobs.redis_url is None:
        # Dead letters are kept for inspection in tests; fail_fast would re-raise them in join().
        return StubBroker(middleware=middleware, fail_fast_default=False)
    client = redis_client(jobs.redis_url.get_secret_value())
    broker = RedisBroker(  # type: ignore[no-untyped-call]  # dramatiq leaves its __init__ untyped
        client=client,
        namespace=f"{jobs.namespace}-dramatiq",
        heartbeat_timeout=jobs.heartbeat_timeout_s * 1000,
        maintenance_chance=max(1, int(jobs.maintenance_chance * MAINTENANCE_SCALE)),
    )
    broker.add_middleware(Heartbeat(interval_s=jobs.heartbeat_timeout_s / 4))
    return broker


class Heartbeat(Middleware):
    """Touches the broker every ``interval_s`` from a thread of its own, which refreshes this worker's
    heartbeat (any broker call does) even when every worker thread is busy and no fetch happens."""

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        assert isinstance(broker, RedisBroker)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, args=(broker,), name="heartbeat", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()

    def _beat(self, broker: RedisBroker) -> None:
        do_qsize: Any = broker.do_qsize
        # Dramatiq's heartbeats also come from processes that only enqueue (the API, the scheduler):
        # this key says "a worker lives here", for readiness reports.
        alive = f"{broker.namespace}:alive:{socket.gethostname()}-{os.getpid()}"
        while True:
            try:
                do_qsize(QUEUE)
                broker.client.set(alive, "1", ex=max(1, int(self.interval_s * 3)))
            except redis.RedisError as exc:
                log.warning("heartbeat to Redis failed (retrying): %s", exc)
            if self._stop.wait(self.interval_s):
                broker.client.delete(alive)
                return


def live_workers(broker: Broker) -> int | None:
    """How many worker processes beat recently; ``None`` without Redis (in-process mode)."""
    if not isinstance(broker, RedisBroker):
        return None
    return sum(1 for _ in broker.client.scan_iter(f"{broker.namespace}:alive:*"))
