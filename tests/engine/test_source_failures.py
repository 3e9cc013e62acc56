"""A source that fails deletes nothing, and a source that suddenly returns nothing is held back by the delete
guard (DESIGN §4.5), for the web API and the database sources alike: the sync engine over a real HTTP
server or SQLite database, the SQLite state store and the in-memory calendars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from adapters.memory import MemoryBackend, MemoryCalendar
from adapters.source.http import HttpAuth, HttpEndpoint, HttpScheduleSource
from adapters.source.inline import StaticTargets
from adapters.source.sql import SqlScheduleSource
from adapters.state import SqlStateStore, open_store
from connector.models import Target
from connector.render import RenderRules
from connector.source import ScheduleSource
from connector.state import MailboxStatus, RunStatus
from connector.sync import RunReport, SyncEngine, SyncRequest
from connector.window import Window
from tests.http_api import Answer, ApiServer, Seen, serve

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2027, 3, 22)
ALEX, BEA = "alex@contoso.example", "bea@contoso.example"
TARGETS = [Target(ALEX, "E1"), Target(BEA, "E2")]
TOKEN = "tok-0a1b2c3d4e5f"


def items(count: int = 12) -> list[dict[str, Any]]:
    return [
        {
            "id": f"S{n:03}",
            "owner": "E1" if n % 2 else "E2",
            "start": f"2027-03-{23 + n % 5}T08:00",
            "end": f"2027-03-{23 + n % 5}T16:00",
            "title": f"Shift {n}",
        }
        for n in range(count)
    ]


@dataclass
class World:
    calendar: MemoryCalendar
    store: SqlStateStore
    source: ScheduleSource

    def sync(self, **request: Any) -> RunReport:
        engine = SyncEngine(
            source=self.source,
            targets=StaticTargets(TARGETS, "test targets"),
            store=self.store,
            backend=MemoryBackend(self.calendar),
            rules=RenderRules(host_app="Planning"),
            window=lambda: Window.around(TODAY, PARIS, days_before=0, days_after=60),
        )
        return engine.run(SyncRequest(**request))

    def tagged(self) -> int:
        return sum(1 for mailbox in (ALEX, BEA) for event in self.calendar.events(mailbox) if event.tag)


@pytest.fixture
def api() -> Iterator[ApiServer]:
    yield from serve()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()


def web_world(api: ApiServer, store: SqlStateStore) -> World:
    endpoint = HttpEndpoint(
        url=api.base + "/shifts",
        paging="page",
        page_size_param="size",
        page_size=5,
        auth=HttpAuth("bearer", token=TOKEN),
        retries=2,
        backoff_s=0.01,
    )
    source = HttpScheduleSource(endpoint, default_zone="Europe/Paris", columns={"key": "id"})
    return World(MemoryCalendar(PARIS), store, source)


def pages(data: list[dict[str, Any]], fail_from_page: int | None = None) -> Callable[[Seen], Answer]:
    def answer(seen: Seen) -> Answer:
        page = int(seen.query["page"])
        if fail_from_page is not None and page >= fail_from_page:
            return Answer(500, {"error": "database unavailable"})
        return Answer(body=data[(page - 1) * 5 :][:5])

    return answer


def assert_failed_and_nothing_deleted(world: World, report: RunReport, before: int) -> str:
    assert report.run.status is RunStatus.FAILED
    assert report.run.counts.writes == 0 and report.run.results == ()
    assert world.tagged() == before
    assert report.run.error is not None
    return report.run.error


def test_a_web_api_that_fails_fails_the_run_and_deletes_nothing(api: ApiServer, store: SqlStateStore) -> None:
    world = web_world(api, store)
    api.answer = pages(items())
    assert world.sync().run.counts.created == 12
    api.requests.clear()
    api.answer = lambda seen: Answer(500, {"error": f"down; token was {TOKEN}"})
    error = assert_failed_and_nothing_deleted(world, world.sync(), 12)
    assert f"{api.base}/shifts?size=5&page=1" in error and "HTTP 500" in error
    assert TOKEN not in error
    assert len(api.requests) == 3  # one try, two retries
    # Mappings are untouched too: the next good read changes nothing.
    api.answer = pages(items())
    assert world.sync().run.counts.writes == 0


def test_a_web_api_failing_on_a_later_page_deletes_nothing(api: ApiServer, store: SqlStateStore) -> None:
    world = web_world(api, store)
    api.answer = pages(items())
    world.sync()
    # Page 1 still answers: its entries were read, the rest never was, and none of it may be deleted.
    api.answer = pages(items(), fail_from_page=2)
    error = assert_failed_and_nothing_deleted(world, world.sync(), 12)
    assert "page=2" in error


def test_a_web_api_that_suddenly_returns_nothing_is_held_back_by_the_delete_guard(
    api: ApiServer, store: SqlStateStore
) -> None:
    world = web_world(api, store)
    api.answer = pages(items())
    world.sync()
    api.answer = pages([])
    report = world.sync()
    assert report.run.status is RunStatus.BLOCKED and report.run.counts.deleted == 0
    blocked = [r for r in report.run.results if r.status is MailboxStatus.BLOCKED]
    assert len(blocked) == 2
    assert all("returned no entries at all" in (r.error or "") for r in blocked)
    assert world.tagged() == 12
    assert world.sync(force=True).run.counts.deleted == 12 and world.tagged() == 0


def sql_world(tmp_path: Path, store: SqlStateStore) -> tuple[World, str]:
    url = f"sqlite:///{tmp_path / 'planning.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text('CREATE TABLE shifts (id text, owner text, start text, "end" text, title text)')
        )
        connection.execute(text("INSERT INTO shifts VALUES (:id, :owner, :start, :end, :title)"), items())
    engine.dispose()
    source = SqlScheduleSource(
        url, "SELECT * FROM shifts", default_zone="Europe/Paris", columns={"key": "id"}
    )
    return World(MemoryCalendar(PARIS), store, source), url


def test_a_database_that_fails_deletes_nothing_and_an_emptied_one_is_held_back(
    tmp_path: Path, store: SqlStateStore
) -> None:
    world, url = sql_world(tmp_path, store)
    assert world.sync().run.counts.created == 12
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE shifts RENAME TO shifts_old"))
    error = assert_failed_and_nothing_deleted(world, world.sync(), 12)
    assert "the source query failed" in error and "no such table: shifts" in error
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE shifts AS SELECT * FROM shifts_old WHERE 0"))
    engine.dispose()
    report = world.sync()
    assert report.run.status is RunStatus.BLOCKED and report.run.counts.deleted == 0
    assert world.tagged() == 12
