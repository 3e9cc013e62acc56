"""Per-mailbox pacing shared by every thread of a process: at most ``per_mailbox`` requests in flight to
one mailbox and ``total`` overall, and nothing sent to a mailbox before the ``Retry-After`` it was given
has passed. A wait longer than ``max_wait`` is not slept: it becomes ``ThrottledError`` so the mailbox's
job is retried later (DESIGN §5)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

from connector.errors import ThrottledError


class MailboxGate:
    _shared: ClassVar[dict[tuple[str, ...], MailboxGate]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def shared(cls, key: tuple[str, ...], *, per_mailbox: int, total: int, max_wait: float) -> MailboxGate:
        """The process-wide gate for one app on one Graph endpoint. A Retry-After concerns the app and
        the mailbox, not one backend object: every backend of the process built for the same app must
        honour it (a worker builds one per run)."""
        with cls._shared_lock:
            gate = cls._shared.get(key)
            if gate is None:
                gate = cls._shared[key] = cls(per_mailbox=per_mailbox, total=total, max_wait=max_wait)
            return gate

    def __init__(
        self,
        *,
        per_mailbox: int = 4,
        total: int = 16,
        max_wait: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_mailbox = per_mailbox
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._total = threading.BoundedSemaphore(total)
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._not_before: dict[str, float] = {}

    def defer(self, mailbox: str, seconds: float) -> None:
        """Nothing more goes to ``mailbox`` for ``seconds`` (never shortens an earlier deferral)."""
        key = mailbox.lower()
        with self._lock:
            self._not_before[key] = max(self._not_before.get(key, 0.0), self._clock() + seconds)

    def wait(self, mailbox: str) -> float:
        """Seconds until ``mailbox`` may be sent to again (0 if now)."""
        with self._lock:
            return max(self._not_before.get(mailbox.lower(), 0.0) - self._clock(), 0.0)

    def _slot(self, mailbox: str) -> threading.BoundedSemaphore:
        with self._lock:
            return self._slots.setdefault(mailbox.lower(), threading.BoundedSemaphore(self.per_mailbox))

    @contextmanager
    def turn(self, mailbox: str) -> Iterator[None]:
        """Hold one request slot for ``mailbox``, after its Retry-After has passed."""
        delay = self.wait(mailbox)
        if delay > self.max_wait:
            raise ThrottledError(
                f"Microsoft Graph asked to wait {delay:.0f} s before the next request to {mailbox}",
                retry_after=delay,
            )
        slot = self._slot(mailbox)
        with slot, self._total:
            # Re-check after getting the slot: another thread may have been told to back off meanwhile.
            while (delay := self.wait(mailbox)) > 0:
                if delay > self.max_wait:
                    raise ThrottledError(
                        f"Microsoft Graph asked to wait {delay:.0f} s before the next request to {mailbox}",
                        retry_after=delay,
                    )
                self._sleep(delay)
            yield
