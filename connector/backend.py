"""The port every calendar backend implements (in-memory, Microsoft Graph, EWS).

Contract (the suite in ``tests/contract`` holds every implementation to it):

* ``probe(target)`` returns when the mailbox can be reached and written, and raises a
  ``MAILBOX_FATAL`` error from ``connector.errors`` otherwise (never a foreign exception).
* ``apply(target, ops)`` sends at most ``max_batch`` ops (the caller chunks) and returns exactly one
  ``OpOutcome`` per op, **in input order**. One op failing (not found, bad data, throttled) is reported
  in its outcome and does not stop the others. An error that concerns the whole mailbox (auth,
  permission, mailbox not found, policy) is raised instead. Every event written carries the ownership
  tag (the op's source key) and the content hash, and is sent without attendees or invitations.
  Update and delete act only on events that carry our tag; an untagged event is reported as
  ``EventNotFoundError`` rather than touched.
* ``list_tagged(target, start, end)`` returns every event carrying our tag that overlaps
  ``[start, end)``; events without our tag are never returned.
* ``find_tagged(target, source_keys)`` returns the tagged events whose tag is one of ``source_keys``,
  wherever they are in time (used to resolve a create whose outcome was lost).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from connector.errors import ConnectorError
from connector.models import Op, RemoteEvent, Target


@dataclass(frozen=True, slots=True)
class OpOutcome:
    op: Op
    remote_id: str | None = None
    change_key: str | None = None
    error: ConnectorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class CalendarBackend(Protocol):
    #: Short name for logs and status ("memory", "graph", "ews").
    name: str
    #: The most ops ``apply`` accepts at once (Graph $batch: 20; EWS: 25).
    max_batch: int

    def probe(self, target: Target) -> None: ...

    def apply(self, target: Target, ops: Sequence[Op]) -> list[OpOutcome]: ...

    def list_tagged(self, target: Target, start: datetime, end: datetime) -> list[RemoteEvent]: ...

    def find_tagged(self, target: Target, source_keys: Sequence[str]) -> list[RemoteEvent]: ...

    def close(self) -> None: ...
