"""Composition of the background side: broker, coordinator, actors and the run service, from settings.

Two shapes (DESIGN §5):

* ``jobs.redis_url`` set: Dramatiq on Redis. ``connector worker`` processes run the actors;
  ``connector serve``, ``connector scheduler`` and ``connector sync`` only queue runs and read the store.
* not set (the embedded default): Dramatiq's stub broker, and ``connector sync`` starts a Dramatiq
  worker inside itself for the length of the run, with the same actors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from dramatiq import Broker, Worker
from dramatiq.brokers.stub import StubBroker

from app import bootstrap
from connector.directory import Directory
from connector.settings import Settings
from connector.state import StateStore
from jobs.actors import Actors, JobContext, JobLimits, Services, declare
from jobs.broker import QUEUE, make_broker, redis_client
from jobs.coordination import Coordinator, LocalCoordinator, RedisCoordinator
from jobs.runs import RunService


@dataclass
class JobSystem:
    settings: Settings
    broker: Broker
    coordinator: Coordinator
    context: JobContext
    actors: Actors
    store: StateStore
    runs: RunService

    @property
    def in_process(self) -> bool:
        return isinstance(self.broker, StubBroker)

    def close(self) -> None:
        services = self.context.close()
        if isinstance(services, bootstrap.Container):
            services.close()
        self.store.close()
        self.broker.close()


def build_jobs(settings: Settings, services: Callable[[], Services] | None = None) -> JobSystem:
    """The job system; ``services`` (default: the full container) is built on the first job."""
    jobs = settings.jobs
    broker = make_broker(jobs)
    coordinator: Coordinator
    if jobs.redis_url is None:
        coordinator = LocalCoordinator()
    else:
        client = redis_client(jobs.redis_url.get_secret_value())
        coordinator = RedisCoordinator(client, namespace=jobs.namespace, lock_ttl_s=jobs.lock_ttl_s)
    limits = JobLimits(
        threads=settings.backend.max_threads,
        max_retries=jobs.max_retries,
        mailbox_time_limit_s=jobs.mailbox_time_limit_s,
        run_time_limit_s=jobs.run_time_limit_s,
    )
    store = bootstrap.build_store(settings)
    context = JobContext(coordinator, store, services or (lambda: bootstrap.build(settings)), limits)
    actors = declare(broker, context)
    return JobSystem(
        settings, broker, coordinator, context, actors, store, RunService(store, actors.start_run)
    )


def check_users(settings: Settings, users: Sequence[str]) -> None:
    """Refuse a run for users that are not enabled targets before it is queued (``UsageError``), so
    the caller hears it at once instead of from a failed run later."""
    if not users:
        return
    directory, _ = Directory.build(
        bootstrap.build_targets(settings).read_targets(),
        owners_are_addresses=settings.targets.kind == "source",
    )
    for user in users:
        directory.enabled_target(user)


@contextmanager
def in_process_worker(system: JobSystem) -> Iterator[Callable[[], bool]]:
    """A Dramatiq worker inside this process (stub broker). Yields a check telling whether it has no
    work left (queue, delay queue and running messages all empty)."""
    broker = system.broker
    assert isinstance(broker, StubBroker)
    # Dramatiq's launcher sends process_boot; without it the time limit's watchdog never starts.
    broker.emit_after("process_boot")
    worker = Worker(broker, worker_threads=system.context.limits.threads, worker_timeout=100)
    worker.start()

    def idle() -> bool:
        return all(
            not queue.unfinished_tasks for name, queue in broker.queues.items() if name.startswith(QUEUE)
        )

    try:
        yield idle
    finally:
        worker.stop()
