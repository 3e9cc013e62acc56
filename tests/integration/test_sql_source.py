"""The SQL source against SQLite, the real PostgreSQL and MariaDB: column mapping, typed values, the window
and owner parameters, bad rows quarantined with their reasons, and the errors that fail a whole read
(never showing the password)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    insert,
    text,
)
from sqlalchemy.engine import make_url

from adapters.source.sql import SqlScheduleSource, SqlTargetSource, mask_url
from connector.directory import Directory
from connector.errors import SourceError
from connector.models import AllDaySpan, Rejected, ScheduleEntry, Target, TargetKind, TimedSpan
from connector.prepare import prepare
from connector.render import RenderRules
from connector.window import Window

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
# 2026-11-16 00:00 .. 2027-01-15 00:00 in Paris.
WINDOW = Window.around(date(2026, 11, 16), PARIS, days_before=0, days_after=60)

metadata = MetaData()
SHIFTS = Table(
    "shifts",
    metadata,
    Column("shift_id", String(40), primary_key=True),
    Column("employee", String(200)),
    Column("starts_at", DateTime),  # naive: wall-clock in the row's zone
    Column("ends_at", DateTime),
    Column("first_day", Date),
    Column("last_day", Date),
    Column("whole_day", Boolean),
    Column("zone", String(64)),
    Column("title", String(400)),
    Column("notes", Text),
    Column("room", String(100)),
    Column("remind", Numeric(6, 0)),
    Column("state", String(20)),
    Column("project", String(40)),
    Column("price", Numeric(10, 2)),
    Column("start_text", String(40)),
    Column("end_text", String(40)),
)
PEOPLE = Table(
    "people",
    metadata,
    Column("mail", String(200), primary_key=True),
    Column("emp_no", String(20)),
    Column("res_kind", String(20)),
    Column("active", Boolean),
    Column("full_name", String(200)),
)

MAPPING = {
    "key": "shift_id",
    "owner": "employee",
    "start": "starts_at",
    "end": "ends_at",
    "timezone": "zone",
    "body": "notes",
    "location": "room",
    "reminder_minutes": "remind",
    "status": "state",
}
SELECT_SHIFTS = (
    "SELECT shift_id, employee, starts_at, ends_at, zone, title, notes, room, remind, state, project, price"
    " FROM shifts"
)


@dataclass
class Db:
    kind: str
    url: str
    engine: Engine

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as connection:
            connection.execute(insert(table), rows)

    def source(self, query: str, columns: dict[str, str] | None = None, **kwargs: Any) -> SqlScheduleSource:
        mapping = MAPPING if columns is None else columns
        return SqlScheduleSource(self.url, query, default_zone="Europe/Paris", columns=mapping, **kwargs)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'host.db'}"
    else:
        url = request.getfixturevalue(f"{request.param}_url")
    engine = create_engine(url)
    metadata.create_all(engine)
    try:
        yield Db(request.param, url, engine)
    finally:
        engine.dispose()


def shift(key: str, owner: str | None = "E1", day: int = 1, **cells: Any) -> dict[str, Any]:
    """A row on 2026-12-``day``, 09:00-17:00 wall clock, unless the cells say otherwise."""
    row: dict[str, Any] = {column.name: None for column in SHIFTS.columns}
    row |= {
        "shift_id": key,
        "employee": owner,
        "starts_at": datetime(2026, 12, day, 9),
        "ends_at": datetime(2026, 12, day, 17),
        "title": f"Shift {key}",
    }
    return row | cells


def entries(items: list[ScheduleEntry | Rejected]) -> dict[str, ScheduleEntry]:
    found = {item.source_key: item for item in items if isinstance(item, ScheduleEntry)}
    assert len(found) == len(items), [item for item in items if isinstance(item, Rejected)]
    return found


def timed(item: ScheduleEntry) -> TimedSpan:
    assert isinstance(item.span, TimedSpan), item.span
    return item.span


# --- mapping and typed values ---------------------------------------------------------------------


def test_mapped_columns_and_typed_values_become_entries(db: Db) -> None:
    db.insert(
        SHIFTS,
        [
            shift(
                "S1",
                title="Früh 日本 😀",
                notes="line one\nline two",
                room="Raum Süd",
                remind=Decimal(15),
                project="Apollo",
                price=Decimal("12.50"),
            ),
            shift("S2", "E2", zone="America/New_York", state="confirmed"),
            shift("S3", state="cancelled"),
        ],
    )
    found = entries(list(db.source(SELECT_SHIFTS + " ORDER BY shift_id").read(WINDOW)))
    assert sorted(found) == ["S1", "S2"]  # the cancelled row is absent, as a removed one
    first = found["S1"]
    assert timed(first) == TimedSpan(
        datetime(2026, 12, 1, 9, tzinfo=PARIS), datetime(2026, 12, 1, 17, tzinfo=PARIS), "Europe/Paris"
    )
    assert (first.owner, first.title, first.body, first.location) == (
        "E1",
        "Früh 日本 😀",
        "line one\nline two",
        "Raum Süd",
    )
    assert first.reminder_minutes == 15
    # Unmapped columns pass through for the templates; a NUMERIC keeps its digits (SQLite has none:
    # it stores a REAL).
    price = "12.5" if db.kind == "sqlite" else "12.50"
    assert first.extra == {"project": "Apollo", "price": price}
    assert first.origin == "sql row 1 (key S1)"
    second = timed(found["S2"])
    assert second.timezone == "America/New_York"
    assert (second.start.hour, second.start.tzinfo) == (9, NEW_YORK)


def test_unmapped_fields_come_from_columns_of_their_own_name(db: Db) -> None:
    db.insert(SHIFTS, [shift("S1")])
    # KEY and END are reserved words in MySQL: the mapping names those columns instead.
    query = "SELECT shift_id, employee AS Owner, starts_at AS start, ends_at AS finish, title FROM shifts"
    found = entries(list(db.source(query, {"key": "shift_id", "end": "finish"}).read(WINDOW)))
    assert timed(found["S1"]).end == datetime(2026, 12, 1, 17, tzinfo=PARIS)
    assert found["S1"].owner == "E1" and found["S1"].extra == {}


def test_all_day_rows_take_dates_and_the_flag(db: Db) -> None:
    db.insert(
        SHIFTS,
        [
            shift("VAC", first_day=date(2026, 12, 24), last_day=date(2026, 12, 26), whole_day=True),
            shift("ONE", first_day=date(2026, 12, 31), whole_day=True),
        ],
    )
    query = "SELECT shift_id, employee, first_day, last_day, whole_day, title FROM shifts"
    columns = {
        "key": "shift_id",
        "owner": "employee",
        "start": "first_day",
        "end": "last_day",
        "all_day": "whole_day",
    }
    found = entries(list(db.source(query, columns).read(WINDOW)))
    # The last day is inclusive in the source, exclusive in the model.
    assert found["VAC"].span == AllDaySpan(date(2026, 12, 24), date(2026, 12, 27))
    assert found["ONE"].span == AllDaySpan(date(2026, 12, 31), date(2027, 1, 1))


# --- the window and owner parameters -----------------------------------------------------------------


def test_the_local_window_parameters_narrow_the_read_in_wall_clock_time(db: Db) -> None:
    db.insert(
        SHIFTS,
        [
            # Ends exactly when the window begins (midnight in Paris): outside.
            shift("BEFORE", starts_at=datetime(2026, 11, 15, 22), ends_at=datetime(2026, 11, 16, 0)),
            shift("ACROSS", starts_at=datetime(2026, 11, 15, 22), ends_at=datetime(2026, 11, 16, 0, 30)),
            shift("INSIDE"),
            shift("LAST", starts_at=datetime(2027, 1, 14, 23, 30), ends_at=datetime(2027, 1, 15, 1)),
            shift("AFTER", starts_at=datetime(2027, 1, 15, 0), ends_at=datetime(2027, 1, 15, 8)),
        ],
    )
    query = SELECT_SHIFTS + " WHERE ends_at > :window_start_local AND starts_at < :window_end_local"
    assert sorted(entries(list(db.source(query).read(WINDOW)))) == ["ACROSS", "INSIDE", "LAST"]


def test_the_owner_parameter_narrows_a_one_mailbox_read_and_is_null_otherwise(db: Db) -> None:
    db.insert(SHIFTS, [shift("A1", "E1"), shift("A2", "E1", day=2), shift("B1", "E2")])
    narrowing = db.source(SELECT_SHIFTS + " WHERE (:owner IS NULL OR employee = :owner)")
    assert sorted(entries(list(narrowing.read(WINDOW)))) == ["A1", "A2", "B1"]
    assert sorted(entries(list(narrowing.read(WINDOW, owner="E2")))) == ["B1"]
    assert sorted(entries(list(narrowing.read(WINDOW, owner="E9")))) == []
    # A query without :owner reads everything, whatever the hint.
    plain = db.source(SELECT_SHIFTS)
    assert sorted(entries(list(plain.read(WINDOW, owner="E2")))) == ["A1", "A2", "B1"]


@pytest.mark.postgres
def test_postgres_instants_keep_their_instant_and_the_utc_window_bounds_them(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE instants (k text, o text, s timestamptz, e timestamptz)"))
        connection.execute(
            text(
                "INSERT INTO instants VALUES"
                " ('IN', 'E1', '2026-12-01 08:00+00', '2026-12-01 16:00+00'),"
                " ('EDGE', 'E1', '2026-11-15 22:00+00', '2026-11-15 23:00+00'),"  # ends at the window start
                " ('OUT', 'E1', '2026-11-10 08:00+00', '2026-11-10 16:00+00')"
            )
        )
    engine.dispose()
    source = SqlScheduleSource(
        postgres_url,
        "SELECT k, o, s, e FROM instants WHERE e > :window_start AND s < :window_end",
        default_zone="Europe/Paris",
        columns={"key": "k", "owner": "o", "start": "s", "end": "e"},
    )
    found = entries(list(source.read(WINDOW)))
    assert sorted(found) == ["IN"]
    # The session zone is Asia/Tokyo (see the fixture): the value is still the same instant, in Paris.
    span = timed(found["IN"])
    assert span.start == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert (span.start.hour, span.timezone) == (9, "Europe/Paris")


# --- bad rows ------------------------------------------------------------------------------------


def test_bad_rows_are_rejected_and_quarantined_with_their_reasons(db: Db) -> None:
    def row(
        key: str,
        owner: str | None = "E1",
        start: str = "2026-12-01T09:00",
        end: str = "2026-12-01T17:00",
        **cells: Any,
    ) -> dict[str, Any]:
        return shift(key, owner, start_text=start, end_text=end, **cells)

    db.insert(
        SHIFTS,
        [
            row("GOOD"),
            row("END-FIRST", end="2026-12-01T08:00"),
            row("BAD-ZONE", zone="Mars/Olympus"),
            row("NO-OWNER", None),
            row("LONG-TITLE", title="x" * 300),
            row("BAD-DATE", start="01.12.2026 9h"),
            row("DST-GAP", start="2027-03-28T02:30", end="2027-03-28T04:00"),
        ],
    )
    query = "SELECT shift_id, employee, start_text, end_text, zone, title FROM shifts ORDER BY shift_id"
    columns = {
        "key": "shift_id",
        "owner": "employee",
        "start": "start_text",
        "end": "end_text",
        "timezone": "zone",
    }
    directory, _ = Directory.build([Target("e1@contoso.example", "E1")])
    prepared = prepare(db.source(query, columns).read(WINDOW), directory, RenderRules("Planning"))
    assert list(prepared.specs["e1@contoso.example"]) == ["GOOD"]
    reasons = {q.source_key: q.reason for q in prepared.quarantined}
    assert "before it starts" in reasons["END-FIRST"]
    assert "unknown time zone 'Mars/Olympus'" in reasons["BAD-ZONE"]
    assert "owner is missing" in reasons["NO-OWNER"]
    assert "title is 300 characters long" in reasons["LONG-TITLE"]
    assert "'01.12.2026 9h' is not a date/time" in reasons["BAD-DATE"]
    assert "does not exist in Europe/Paris" in reasons["DST-GAP"]
    origins = {q.source_key: q.origin for q in prepared.quarantined}
    assert origins["BAD-ZONE"] == "sql row 2 (key BAD-ZONE)"
    assert prepared.source_items == 7


def test_rows_stream_in_chunks_and_a_partial_read_can_stop(db: Db) -> None:
    db.insert(SHIFTS, [shift(f"S{n:03}", day=1 + n % 28) for n in range(95)])
    source = db.source(SELECT_SHIFTS + " ORDER BY shift_id", chunk_size=10)
    assert len(entries(list(source.read(WINDOW)))) == 95
    items = source.read(WINDOW)
    assert [next(items).source_key for _ in range(3)] == ["S000", "S001", "S002"]
    items.close()  # type: ignore[attr-defined]  # a generator: closing it closes the cursor and connection


# --- targets -------------------------------------------------------------------------------------


def test_targets_come_from_their_own_query_with_flags_and_kinds(db: Db) -> None:
    db.insert(
        PEOPLE,
        [
            {
                "mail": "Anna@Contoso.example",
                "emp_no": "E1",
                "res_kind": None,
                "active": True,
                "full_name": "Anna Åberg",
            },
            {
                "mail": "room1@contoso.example",
                "emp_no": "R1",
                "res_kind": "room",
                "active": True,
                "full_name": "Raum 1",
            },
            {
                "mail": "bo@contoso.example",
                "emp_no": "E2",
                "res_kind": "user",
                "active": False,
                "full_name": "Bo",
            },
            {"mail": "not-an-address", "emp_no": "E3", "res_kind": "user", "active": True, "full_name": "?"},
        ],
    )
    source = SqlTargetSource(
        db.url,
        "SELECT mail, emp_no, res_kind, active, full_name FROM people ORDER BY emp_no",
        columns={
            "address": "mail",
            "owner_key": "emp_no",
            "kind": "res_kind",
            "enabled": "active",
            "display_name": "full_name",
        },
    )
    items = list(source.read_targets())
    targets = {t.owner_key: t for t in items if isinstance(t, Target)}
    assert targets["E1"] == Target("anna@contoso.example", "E1", TargetKind.USER, True, "Anna Åberg")
    assert targets["R1"].kind is TargetKind.ROOM
    assert targets["E2"].enabled is False
    rejected = [t for t in items if isinstance(t, Rejected)]
    assert len(rejected) == 1 and "does not look like an e-mail address" in rejected[0].reason
    assert rejected[0].origin == "sql row 3 (address not-an-address)"


# --- whole-read failures ---------------------------------------------------------------------------


def test_a_bad_query_fails_the_read_naming_the_database_and_the_fix(db: Db) -> None:
    with pytest.raises(SourceError) as caught:
        list(db.source("SELECT no_such_column FROM shifts").read(WINDOW))
    assert "the source query failed on" in caught.value.message
    assert "no_such_column" in caught.value.message
    assert caught.value.fix and "source.query" in caught.value.fix


def test_a_mapped_column_the_query_does_not_return_is_a_source_error(db: Db) -> None:
    with pytest.raises(SourceError) as caught:
        list(db.source(SELECT_SHIFTS, MAPPING | {"key": "shift_no"}).read(WINDOW))
    assert "no column shift_no (for key)" in caught.value.message
    assert "shift_id" in caught.value.message  # what the query does return
    with pytest.raises(SourceError, match="no column for key"):
        list(db.source("SELECT employee, starts_at, ends_at FROM shifts", {}).read(WINDOW))


@pytest.mark.postgres
def test_a_postgres_error_never_shows_the_password(postgres_url: str) -> None:
    # Trust authentication ignores the password, so the query is what fails here.
    url = make_url(postgres_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    source = SqlScheduleSource(url, "SELECT * FROM no_such_table", default_zone="Europe/Paris")
    assert "s3cret-pw" not in source.describe() and "***" in source.describe()
    with pytest.raises(SourceError) as caught:
        list(source.read(WINDOW))
    assert "no_such_table" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value) and "postgres:***@" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "postgresql://postgres:s3cret-pw@127.0.0.1:1/test",
            "connection refused",
            marks=pytest.mark.postgres,
            id="postgres-down",
        ),
        pytest.param(
            "postgresql://postgres:s3cret-pw@127.0.0.1:5432/no_such_database_here",
            "does not exist",
            marks=pytest.mark.postgres,
            id="postgres-no-database",
        ),
        pytest.param(
            "mysql+pymysql://root:s3cret-pw@127.0.0.1:3306/test",
            "access denied",
            marks=pytest.mark.mariadb,
            id="mariadb-wrong-password",
        ),
        pytest.param(
            "mariadb://root:s3cret-pw@127.0.0.1:1/test",
            "can't connect",
            marks=pytest.mark.mariadb,
            id="mariadb-down",
        ),
    ],
)
def test_an_unreachable_or_refusing_database_is_a_source_error_without_the_password(
    url: str, expected: str
) -> None:
    source = SqlScheduleSource(url, "SELECT 1 AS key", default_zone="Europe/Paris", connect_timeout_s=3)
    with pytest.raises(SourceError) as caught:
        list(source.read(WINDOW))
    message = str(caught.value)
    assert message.startswith("cannot connect to the source database")
    assert expected in message.lower()
    assert "s3cret-pw" not in message and ":***@" in message
    assert caught.value.fix and "source.url" in caught.value.fix


def test_sqlite_in_a_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    source = SqlScheduleSource(f"sqlite:///{tmp_path / 'nope' / 'x.db'}", "SELECT 1", default_zone="UTC")
    with pytest.raises(SourceError, match="cannot connect to the source database"):
        list(source.read(WINDOW))


def test_unknown_parameters_drivers_and_urls_fail_before_any_read() -> None:
    with pytest.raises(SourceError) as caught:
        SqlScheduleSource("sqlite:///x.db", "SELECT * FROM t WHERE d > :since", default_zone="UTC")
    assert "source.query uses :since" in caught.value.message and ":window_start" in (caught.value.fix or "")
    # "::" casts and "\:" escapes are not parameters.
    SqlScheduleSource("sqlite:///x.db", r"SELECT '10\:30', x::text FROM t", default_zone="UTC")
    with pytest.raises(SourceError, match="is not a database URL"):
        SqlScheduleSource("not a url", "SELECT 1", default_zone="UTC")
    with pytest.raises(SourceError, match="not installed") as driver:
        list(SqlScheduleSource("mssql+pyodbc://u:pw@dsn", "SELECT 1", default_zone="UTC").read(WINDOW))
    assert "pyodbc" in (driver.value.fix or "")
    with pytest.raises(SourceError, match="unknown default time zone"):
        SqlScheduleSource("sqlite:///x.db", "SELECT 1", default_zone="Mars/Olympus")


def test_mask_url_hides_passwords_in_the_url_and_its_query() -> None:
    assert (
        mask_url("postgresql+psycopg://u:pw@h/db?password=pw2")
        == "postgresql+psycopg://u:***@h/db?password=***"
    )
    assert mask_url("::nonsense") == "(a database URL that cannot be parsed)"


def test_window_bounds_are_bound_as_utc_instants_and_local_wall_clock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    query = (
        "SELECT 'K' AS key, 'E1' AS owner, '2026-12-01T09:00' AS start, '2026-12-01T10:00' AS \"end\","
        " :window_start AS ws, :window_end AS we, :window_start_local AS wsl, :window_end_local AS wel,"
        " coalesce(:owner, 'none') AS who"
    )
    source = SqlScheduleSource(url, query, default_zone="Europe/Paris")
    (item,) = list(source.read(WINDOW, owner="E7"))
    assert isinstance(item, ScheduleEntry)
    # SQLite stores what it is given as text: the UTC bounds and the Paris wall clock.
    assert item.extra["ws"].startswith("2026-11-15 23:00:00")
    assert item.extra["we"].startswith("2027-01-14 23:00:00")
    assert item.extra["wsl"].startswith("2026-11-16 00:00:00")
    assert item.extra["wel"].startswith("2027-01-15 00:00:00")
    assert item.extra["who"] == "E7"
    (unnamed,) = list(source.read(WINDOW))
    assert isinstance(unnamed, ScheduleEntry) and unnamed.extra["who"] == "none"
    assert WINDOW.end - WINDOW.start == timedelta(days=60)
