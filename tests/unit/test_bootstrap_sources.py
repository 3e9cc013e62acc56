"""The composition root builds the configured source and targets of every kind, wired to their settings
(paths relative to the settings file, secrets, parameters), and imports each kind's libraries only when
that kind is configured."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from adapters.source.files import CsvScheduleSource, CsvTargetSource, JsonScheduleSource
from adapters.source.http import HttpScheduleSource, HttpTargetSource
from adapters.source.ics import IcsScheduleSource
from adapters.source.inline import StaticTargets
from adapters.source.sql import SqlScheduleSource, SqlTargetSource
from app.bootstrap import build_source, build_targets
from app.cli import cli
from connector.models import ScheduleEntry, Target
from connector.settings import Settings, load_settings
from connector.window import Window
from tests.http_api import Answer, ApiServer, serve

ROOT = Path(__file__).resolve().parents[2]
WINDOW = Window.around(date(2026, 11, 16), ZoneInfo("Europe/Paris"), days_before=0, days_after=60)
ROW = {"key": "K1", "owner": "anna@contoso.example", "start": "2026-12-01T09:00", "end": "2026-12-01T10:00"}


@pytest.fixture
def api() -> Iterator[ApiServer]:
    yield from serve()


def settings_in(folder: Path, text_: str, env: dict[str, str] | None = None) -> Settings:
    return load_settings(text_, environ=env or {}, base_dir=folder, origin=str(folder / "settings.toml"))


def planning_db(folder: Path) -> None:
    engine = create_engine(f"sqlite:///{folder / 'planning.db'}")
    with engine.begin() as connection:
        connection.execute(text('CREATE TABLE shifts (key text, owner text, start text, "end" text)'))
        connection.execute(text("INSERT INTO shifts VALUES (:key, :owner, :start, :end)"), ROW)
        connection.execute(text("CREATE TABLE staff (mail text, active integer)"))
        connection.execute(text("INSERT INTO staff VALUES ('anna@contoso.example', 1)"))
    engine.dispose()


def test_file_sources_and_targets_by_suffix(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, '[source]\npath = "s.json"\n[targets]\npath = "t.csv"\n')
    assert isinstance(build_source(settings), JsonScheduleSource)
    assert isinstance(build_targets(settings), CsvTargetSource)
    csv_settings = settings_in(tmp_path, '[source]\nkind = "file"\npath = "s.csv"\n')
    source = build_source(csv_settings)
    assert isinstance(source, CsvScheduleSource) and str(tmp_path / "s.csv") in source.describe()
    assert isinstance(build_targets(csv_settings), StaticTargets)


def test_inline_targets(tmp_path: Path) -> None:
    settings = settings_in(
        tmp_path,
        '[source]\npath = "s.csv"\n[targets]\nkind = "inline"\n'
        '[[targets.list]]\naddress = "room1@contoso.example"\nowner_key = "R1"\nkind = "room"\n',
    )
    targets = build_targets(settings)
    assert isinstance(targets, StaticTargets)
    assert [t.owner_key for t in targets.read_targets() if isinstance(t, Target)] == ["R1"]


def test_a_sql_source_reads_the_database_the_settings_name_relative_to_their_folder(tmp_path: Path) -> None:
    planning_db(tmp_path)
    settings = settings_in(
        tmp_path,
        '[source]\nkind = "sql"\nurl = { env = "DB" }\n'
        'query = "SELECT * FROM shifts WHERE (:owner IS NULL OR owner = :owner)"\nchunk_size = 50\n'
        '[targets]\nkind = "sql"\nquery = "SELECT mail, active FROM staff"\n'
        '[targets.columns]\naddress = "mail"\nenabled = "active"\n',
        {"DB": "sqlite:///planning.db"},
    )
    source = build_source(settings)
    assert isinstance(source, SqlScheduleSource)
    assert source.describe() == f"SQL query on sqlite:///{tmp_path / 'planning.db'}"
    assert [e.source_key for e in source.read(WINDOW, owner="anna@contoso.example")] == ["K1"]
    assert list(source.read(WINDOW, owner="bo@contoso.example")) == []
    targets = build_targets(settings)  # no url of its own: the source's database
    assert isinstance(targets, SqlTargetSource)
    assert list(targets.read_targets()) == [Target("anna@contoso.example", "anna@contoso.example")]


def test_an_http_source_and_targets_send_what_the_settings_say(api: ApiServer, tmp_path: Path) -> None:
    api.answer = lambda seen: Answer(
        body={"value": [ROW] if seen.path == "/shifts" else [{"mail": "anna@contoso.example"}]}
    )
    settings = settings_in(
        tmp_path,
        f'[source]\nkind = "http"\nurl = "{api.base}/shifts"\nitems_path = "value"\n'
        'auth = "bearer"\ntoken = { env = "TOKEN" }\nwindow_start_param = "from"\nowner_param = "who"\n'
        'params = { view = "all" }\nretries = 0\n'
        f'[targets]\nkind = "http"\nurl = "{api.base}/people"\nitems_path = "value"\n'
        'auth = "basic"\nusername = "svc"\npassword = { env = "TOKEN" }\n[targets.columns]\naddress = "mail"\n',
        {"TOKEN": "tok-42"},
    )
    source = build_source(settings)
    assert isinstance(source, HttpScheduleSource) and source.describe() == f"web API {api.base}/shifts"
    (entry,) = source.read(WINDOW, owner="anna@contoso.example")
    assert isinstance(entry, ScheduleEntry) and entry.source_key == "K1"
    shifts = api.requests[0]
    assert shifts.query == {"view": "all", "from": "2026-11-15T23:00:00Z", "who": "anna@contoso.example"}
    assert shifts.headers["authorization"] == "Bearer tok-42"
    targets = build_targets(settings)
    assert isinstance(targets, HttpTargetSource)
    assert [t.address for t in targets.read_targets() if isinstance(t, Target)] == ["anna@contoso.example"]
    assert api.requests[1].headers["authorization"].startswith("Basic ")


def test_an_ics_source_gets_its_path_owner_and_zone(tmp_path: Path) -> None:
    settings = settings_in(
        tmp_path,
        '[connector]\ntimezone = "Europe/Berlin"\n'
        '[source]\nkind = "ics"\npath = "calendars/room.ics"\nowner = "room1@contoso.example"\n',
    )
    source = build_source(settings)
    assert isinstance(source, IcsScheduleSource)
    assert str(tmp_path / "calendars" / "room.ics") in source.describe()


def loaded_after(code: str) -> set[str]:
    probe = ("httpx", "pymysql", "icalendar", "recurring_ical_events")
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import sys
        print(",".join(sorted({{m.split(".")[0] for m in sys.modules}} & set({probe!r}))))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(filter(None, done.stdout.strip().split(",")))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('path = "examples/schedule.csv"', set()),
        ('kind = "sql"\nurl = "mysql+pymysql://r@127.0.0.1:1/p"\nquery = "SELECT 1"', set()),
        ('kind = "http"\nurl = "https://planning.example.com/api"', {"httpx"}),
        (
            'kind = "ics"\npath = "calendars"\nowner = "a@contoso.example"',
            {"icalendar", "recurring_ical_events"},
        ),
    ],
)
def test_each_kind_imports_only_its_own_libraries(source: str, expected: set[str]) -> None:
    loaded = loaded_after(
        f"""
        from pathlib import Path
        from app.bootstrap import build_source, build_targets
        from connector.settings import load_settings
        settings = load_settings({"[source]" + chr(10) + source!r}, environ={{}}, base_dir=Path("."))
        build_source(settings)
        build_targets(settings)
        """
    )
    # A database driver is loaded by the first read, not by building the source.
    assert loaded == expected


def test_connector_config_shows_database_urls_without_their_password(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        '[source]\nkind = "sql"\nurl = { env = "DB" }\nquery = "SELECT 1"\n'
        '[targets]\nkind = "sql"\nurl = "postgresql://u:pw-2@h/db"\nquery = "SELECT 1"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["config", "--settings", str(settings), "--json"], env={"DB": "mysql+pymysql://r:hunter2@db/p"}
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["source"]["url"] == "mysql+pymysql://r:***@db/p"
    assert doc["targets"]["url"] == "postgresql://u:***@h/db"
    assert "hunter2" not in result.output and "pw-2" not in result.output
