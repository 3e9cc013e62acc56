"""The sync window: ``[today - days_before, today + days_after)`` in the configured zone.

An event belongs to the window when it overlaps it. Outside the window nothing is created, changed or
deleted (DESIGN §4.2): old events stay as last synced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from connector.models import Span


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC, exclusive
    zone: tzinfo  # the configured zone: where days begin, and where all-day dates are placed

    @classmethod
    def around(cls, today: date, zone: tzinfo, *, days_before: int, days_after: int) -> Window:
        if days_before < 0 or days_after < 0:
            raise ValueError("days_before and days_after must not be negative")
        first = datetime.combine(today - timedelta(days=days_before), time(), tzinfo=zone)
        # days_after=0 still means "today": the window always holds at least the current day.
        last = datetime.combine(today + timedelta(days=max(days_after, 1)), time(), tzinfo=zone)
        return cls(first.astimezone(UTC), last.astimezone(UTC), zone)

    def overlaps_utc(self, start: datetime, end: datetime) -> bool:
        if end <= start:
            # A zero-length event is in the window when its instant is.
            return self.start <= start < self.end
        return start < self.end and end > self.start

    def contains(self, span: Span) -> bool:
        return self.overlaps_utc(*span.utc_bounds(self.zone))
