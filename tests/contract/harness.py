"""What the contract suite needs from a backend under test, beyond the ``CalendarBackend`` itself.

A harness pairs a backend with a view of the server behind it: it provisions mailboxes, reads back
everything the server holds (so tests check what was *stored*, not what the backend says it sent), and
plays the person at Outlook. ``MemoryHarness`` is the first; Graph and EWS against the emulated tenant
add their own and one line in ``conftest.py``.

Rules for every harness:

* Each harness instance starts with empty calendars; tests may provision any address they like.
* ``all_events`` reports the server's view in connector terms: IANA zone names (translate Windows zone
  names back), body as plain text with ``\\n`` line endings, ``tag`` = the ownership tag's value or
  ``None``.
* ``zone`` is the zone the backend was configured with: where it places all-day dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

from adapters.memory import MemoryBackend, MemoryCalendar, StoredEvent
from connector.backend import CalendarBackend
from connector.models import Sensitivity, ShowAs, Span, Target


@dataclass(frozen=True, slots=True)
class HarnessEvent:
    """One event as the server holds it, whoever made it."""

    id: str
    subject: str
    body: str
    location: str
    span: Span
    categories: tuple[str, ...]
    show_as: ShowAs
    sensitivity: Sensitivity
    reminder_minutes: int | None
    tag: str | None
    has_attendees: bool


class BackendHarness(Protocol):
    @property
    def backend(self) -> CalendarBackend: ...

    @property
    def zone(self) -> tzinfo: ...

    def target(self, address: str) -> Target:
        """A mailbox that exists (provisioned if need be) and that the backend may write."""
        ...

    def unknown_target(self) -> Target:
        """A well-formed address that no mailbox answers to."""
        ...

    def add_foreign_event(self, target: Target, subject: str, span: Span) -> str:
        """An event the person made in Outlook (no tag); returns its id."""
        ...

    def all_events(self, target: Target) -> list[HarnessEvent]: ...

    def outlook_edit(self, target: Target, event_id: str, subject: str) -> None: ...

    def outlook_delete(self, target: Target, event_id: str) -> None: ...


#: The zone the harnesses configure: one with DST, so that offset mistakes show.
HARNESS_ZONE = ZoneInfo("Europe/Berlin")


class MemoryHarness:
    def __init__(self, zone: tzinfo = HARNESS_ZONE) -> None:
        # An explicit (empty) mailbox list, so that unknown addresses are refused as by a real tenant.
        self.calendar = MemoryCalendar(zone, mailboxes=())
        self._backend = MemoryBackend(self.calendar)
        self._zone = zone

    @property
    def backend(self) -> MemoryBackend:
        return self._backend

    @property
    def zone(self) -> tzinfo:
        return self._zone

    def target(self, address: str) -> Target:
        self.calendar.add_mailbox(address)
        return Target(address=address, owner_key=address.partition("@")[0])

    def unknown_target(self) -> Target:
        return Target(address="nobody-here@contoso.example", owner_key="nobody-here")

    def add_foreign_event(self, target: Target, subject: str, span: Span) -> str:
        return self.calendar.add_foreign_event(target.address, subject, span)

    def all_events(self, target: Target) -> list[HarnessEvent]:
        return [_harness_event(e) for e in self.calendar.events(target.address)]

    def outlook_edit(self, target: Target, event_id: str, subject: str) -> None:
        self.calendar.outlook_edit(target.address, event_id, subject=subject)

    def outlook_delete(self, target: Target, event_id: str) -> None:
        self.calendar.outlook_delete(target.address, event_id)


def _harness_event(event: StoredEvent) -> HarnessEvent:
    return HarnessEvent(
        id=event.id,
        subject=event.subject,
        body=event.body,
        location=event.location,
        span=event.span,
        categories=event.categories,
        show_as=event.show_as,
        sensitivity=event.sensitivity,
        reminder_minutes=event.reminder_minutes,
        tag=event.tag,
        # The memory calendar cannot hold attendees at all; Graph/EWS harnesses read the real list.
        has_attendees=False,
    )
