"""Asking for a run and following it: what the CLI, the HTTP API and the scheduler share.

A run is created QUEUED in the state store (so its id can be returned at once) and its fan-out job is
sent; the store is then the one place that says how far the run got.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from connector.errors import TransientError
from connector.state import RunRecord, RunStatus, StateStore
from connector.sync import SyncRequest


class Sender(Protocol):
    def send(self, *args: Any) -> Any: ...


class RunService:
    def __init__(self, store: StateStore, start_run: Sender) -> None:
        self.store = store
        self._start_run = start_run

    def submit(self, request: SyncRequest) -> int:
        run_id = self.store.start_run(
            trigger=request.trigger, mode=request.mode, forced=request.force, mailboxes_total=0, queued=True
        )
        try:
            self._start_run.send(
                run_id, list(request.users), request.mode.value, request.force, request.trigger
            )
        except Exception as exc:
            # The broker refused the job (Redis down): say so in the run, and to the caller.
            self.store.finish_run(run_id, status=RunStatus.FAILED, error=f"could not queue the run: {exc}")
            raise TransientError(
                f"could not queue run {run_id}: {type(exc).__name__}",
                fix="check that Redis (jobs.redis_url) is reachable, then try again",
            ) from exc
        return run_id

    def wait(
        self,
        run_id: int,
        *,
        on_progress: Callable[[RunRecord], None] | None = None,
        stalled: Callable[[], bool] | None = None,
        poll_s: float = 0.25,
    ) -> RunRecord:
        """Poll the store until the run is finished. ``stalled`` tells (in-process mode) that no job is
        left that could finish it, which would otherwise be an endless wait."""
        while True:
            record = self.store.run(run_id)
            if record is None:
                raise KeyError(run_id)
            if on_progress is not None:
                on_progress(record)
            if record.status.finished:
                return record
            if stalled is not None and stalled():
                record = self.store.run(run_id)
                assert record is not None
                if record.status.finished:
                    return record
                return self.store.finish_run(
                    run_id,
                    status=RunStatus.FAILED,
                    error="the run's jobs ended without finishing it; see the log",
                )
            time.sleep(poll_s)
