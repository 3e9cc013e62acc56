"""Realism knobs shared by both faces: latency, per-mailbox concurrency and request budgets, and
injected faults. Settable at start (tenant file / CLI) and at run time (tests, admin endpoint).

Every request passes ``Conditions.admit`` once its face knows the operation and mailbox. The face turns
the outcome into its protocol's shape: Graph 429 ``MailboxConcurrency`` + ``Retry-After``, EWS
``ErrorServerBusy`` + ``BackOffMilliseconds``, a 5xx, a reset connection, or a response dropped after the
change was committed.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("500", "503", "429", "server_busy", "reset", "timeout", "drop_after_commit")


@dataclass
class Fault:
    """One injected fault. Matches by face ("ews" | "graph" | "auth"), operation and mailbox (shell
    patterns), fires with ``probability``, at most ``times`` times (None: unlimited)."""

    kind: str
    probability: float = 1.0
    face: str | None = None
    operation: str | None = None
    mailbox: str | None = None
    times: int | None = None
    #: For 429 / server_busy / 503: how long the client is told to wait, in seconds.
    retry_after: float = 1.0
    #: For timeout: how long the request hangs before the server gives up (504).
    delay: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if not 0 <= self.probability <= 1:
            raise ValueError("fault probability must be between 0 and 1")

    def matches(self, face: str, operation: str, mailbox: str | None) -> bool:
        return (
            (self.face is None or self.face == face)
            and (self.operation is None or fnmatch.fnmatchcase(operation, self.operation))
            and (self.mailbox is None or (mailbox is not None and fnmatch.fnmatchcase(mailbox, self.mailbox)))
        )


class Throttled(Exception):
    """The request is refused for load: too many at once for the mailbox, or its budget is spent."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason  # "MailboxConcurrency" | "ApplicationThrottled"
        self.retry_after = retry_after


@dataclass
class Admission:
    fault: Fault | None = None


@dataclass
class Conditions:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    #: Requests in flight per mailbox before the next is refused (Graph allows 4); None: no limit.
    concurrency_limit: int | None = 4
    #: Requests per mailbox per ``budget_window_s`` (Graph: 10,000 per 10 minutes); None: no budget.
    budget: int | None = None
    budget_window_s: float = 600.0
    faults: list[Fault] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._active: dict[str, int] = defaultdict(int)
        self._peak: dict[str, int] = defaultdict(int)
        self._recent: dict[str, deque[float]] = defaultdict(deque)

    # -- run-time control -------------------------------------------------------------------------------
    def update(self, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                if key == "faults":
                    value = [f if isinstance(f, Fault) else Fault(**f) for f in value]
                if key not in {
                    "latency_ms",
                    "jitter_ms",
                    "concurrency_limit",
                    "budget",
                    "budget_window_s",
                    "faults",
                }:
                    raise ValueError(f"unknown condition {key!r}")
                setattr(self, key, value)

    def reseed(self, seed: int) -> None:
        """Make fault draws and jitter repeatable from here on (tests)."""
        with self._lock:
            self.seed = seed
            self._random = random.Random(seed)

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = []

    def peak_concurrency(self) -> dict[str, int]:
        """The most requests seen in flight at once per mailbox (admitted or refused)."""
        with self._lock:
            return dict(self._peak)

    def reset_counters(self) -> None:
        with self._lock:
            self._peak.clear()
            self._recent.clear()

    # -- admission ------------------------------------------------------------------------------------
    def _pick_fault(self, face: str, operation: str, mailbox: str | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times is not None and fault.times <= 0:
                    continue
                if fault.matches(face, operation, mailbox) and self._random.random() < fault.probability:
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    @asynccontextmanager
    async def admit(
        self, face: str, operation: str, mailbox: str | None, *, hold_slot: bool = True
    ) -> AsyncIterator[Admission]:
        """Admit one request. ``hold_slot=False`` (a ``$batch`` envelope, whose parts are admitted one by
        one) meets faults and latency aimed at the mailbox but takes none of its slots or budget."""
        key = (mailbox or "") if hold_slot else ""
        with self._lock:
            self._active[key] += 1
            self._peak[key] = max(self._peak[key], self._active[key])
            counted = mailbox is not None and hold_slot
            over = (
                self.concurrency_limit is not None and counted and self._active[key] > self.concurrency_limit
            )
            spent = False
            if self.budget is not None and counted and not over:
                now = time.monotonic()
                recent = self._recent[key]
                while recent and recent[0] <= now - self.budget_window_s:
                    recent.popleft()
                spent = len(recent) >= self.budget
                if not spent:
                    recent.append(now)
        try:
            if over:
                raise Throttled("MailboxConcurrency", 1.0)
            if spent:
                raise Throttled("ApplicationThrottled", self.budget_window_s / max(self.budget or 1, 1))
            # The latency is spent while the request holds its slot: a slow server keeps requests in
            # flight, which is what makes a fifth concurrent request to one mailbox meet the limit (on a
            # single event loop, requests that slept before being counted would never overlap).
            delay = self.latency_ms + (self._random.uniform(0, self.jitter_ms) if self.jitter_ms else 0.0)
            if delay:
                await asyncio.sleep(delay / 1000)
            yield Admission(self._pick_fault(face, operation, mailbox))
        finally:
            with self._lock:
                self._active[key] -= 1
