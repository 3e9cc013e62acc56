"""What the whole-sync tests (Graph and EWS through the sandbox) share: a list source, generated
mailboxes and entries, an engine over real adapters, and views of the tenant to assert on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from adapters.source.inline import StaticTargets
from connector.backend import CalendarBackend
from connector.models import AllDaySpan, Rejected, ScheduleEntry, Sensitivity, ShowAs, Target, TimedSpan
from connector.ownership import CONTENT_HASH, PROPERTY_SET, SOURCE_KEY
from connector.render import RenderRules
from connector.state import RunStatus, StateStore, SyncMode
from connector.sync import RunReport, SyncEngine, SyncRequest
from connector.window import Window
from sandbox.server import Sandbox
from sandbox.tenant import Item, Mailbox, prop_key

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2027, 3, 1)
TAG = prop_key(PROPERTY_SET, SOURCE_KEY)
HASH = prop_key(PROPERTY_SET, CONTENT_HASH)


class ListSource:
    def __init__(self, entries: list[ScheduleEntry]) -> None:
        self.entries = entries

    def describe(self) -> str:
        return "a list in the test"

    def read(self, window: Window, owner: str | None = None) -> Iterator[ScheduleEntry | Rejected]:
        return iter(list(self.entries))


def mailboxes(count: int, prefix: str = "load") -> list[str]:
    return [f"{prefix}{i:02}@contoso.example" for i in range(count)]


def entries_for(addresses: list[str], per_mailbox: int) -> list[ScheduleEntry]:
    """Varied entries: timed in two zones (across the spring DST change), all-day, every show-as and
    sensitivity, reminders on some, locations and multi-line bodies with non-ASCII text."""
    shows, sensitivities = list(ShowAs), list(Sensitivity)
    out = []
    for address in addresses:
        for n in range(per_mailbox):
            day = TODAY + timedelta(days=n % 40)
            key = f"{address.split('@')[0]}-{n:03}"
            span: TimedSpan | AllDaySpan
            if n % 10 == 9:
                span = AllDaySpan(day, day + timedelta(days=1 + n % 3))
            else:
                zone = "Europe/Paris" if n % 2 else "America/New_York"
                start = datetime.combine(day, time(8 + n % 3 * 4), ZoneInfo(zone))
                span = TimedSpan(start, start + timedelta(hours=4), zone)
            out.append(
                ScheduleEntry(
                    key,
                    address,
                    span,
                    f"Schicht {n} – Früh ✓ å ä ö ß ł 日本 😀",
                    body=f"Übergabe {n}\nzweite Zeile",
                    location=f"Halle {n % 4}" if n % 3 else "",
                    show_as=shows[n % len(shows)],
                    sensitivity=sensitivities[n % len(sensitivities)],
                    reminder_minutes=15 if n % 5 == 0 else None,
                )
            )
    return out


def sync_engine(
    store: StateStore, entries: list[ScheduleEntry], addresses: list[str], backend: CalendarBackend
) -> SyncEngine:
    return SyncEngine(
        source=ListSource(entries),
        targets=StaticTargets([Target(a, a) for a in addresses], "test"),
        store=store,
        backend=backend,
        rules=RenderRules(host_app="Planning"),
        window=lambda: Window.around(TODAY, PARIS, days_before=0, days_after=60),
    )


def provision(sandbox: Sandbox, addresses: list[str]) -> None:
    for address in addresses:
        if not sandbox.tenant.has_mailbox(address):
            sandbox.tenant.add_mailbox(Mailbox(address))


def run(built: SyncEngine, mode: SyncMode = SyncMode.FAST, threads: int = 8) -> RunReport:
    try:
        return built.run(SyncRequest(mode=mode), threads=threads)
    finally:
        built.backend.close()


def run_until_settled(build: Callable[[], SyncEngine], attempts: int = 5) -> RunReport:
    """Sync, then sync again while a run left work for later (a wait longer than the backend waits in
    place): what a scheduler does with a throttled mailbox."""
    report = run(build())
    for _ in range(attempts - 1):
        if report.run.status is RunStatus.SUCCEEDED:
            break
        report = run(build())
    return report


def tagged_counts(sandbox: Sandbox, address: str) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in sandbox.tenant.items(address, None):
        if (key := item.prop(TAG)) is not None:
            counts[key] += 1
    return counts


def writes_by_mailbox(sandbox: Sandbox) -> dict[str | None, int]:
    counts: dict[str | None, int] = defaultdict(int)
    for entry in sandbox.log.writes():
        counts[entry.mailbox] += 1
    return counts


def snapshot(item: Item) -> tuple[object, ...]:
    """Everything a person sees of one event, plus our tag and hash."""
    return (
        item.subject,
        item.body.replace("\r\n", "\n"),
        item.location,
        item.start,
        item.end,
        item.timezone,
        item.is_all_day,
        item.categories,
        item.show_as,
        item.sensitivity,
        item.reminder_minutes if item.reminder_on else None,
        bool(item.attendees),
        item.prop(TAG),
        item.prop(HASH),
    )


def calendars(sandbox: Sandbox, addresses: list[str]) -> dict[str, dict[str, tuple[object, ...]]]:
    return {
        a: {str(i.prop(TAG)): snapshot(i) for i in sandbox.tenant.items(a, None) if i.prop(TAG)}
        for a in addresses
    }
