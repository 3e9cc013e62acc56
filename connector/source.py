"""Ports for the host application's data: schedule entries and the directory of targets.

A source yields typed entries and, for rows it cannot parse, ``Rejected`` items with a reason. It
raises ``SourceError`` only when the source as a whole cannot be read; a bad row never stops a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from connector.models import Rejected, ScheduleEntry, Target
from connector.window import Window


class ScheduleSource(Protocol):
    def describe(self) -> str:
        """Where entries come from, for status output (never containing secrets)."""
        ...

    def read(self, window: Window, owner: str | None = None) -> Iterator[ScheduleEntry | Rejected]:
        """Entries that may overlap ``window`` (a source may return more; the core filters).

        With ``owner`` (an owner key, or a mailbox address when owners are addresses), only that
        owner's entries are needed: a source that can narrow its read (a SQL query with ``:owner``)
        should, so a one-mailbox job does not read the whole source. Others may ignore it."""
        ...


class TargetSource(Protocol):
    def describe(self) -> str: ...

    def read_targets(self) -> Iterator[Target | Rejected]: ...
