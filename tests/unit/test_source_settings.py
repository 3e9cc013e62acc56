"""The source and target kinds in the settings: each kind's keys, good and bad values, and problems that
name the key and the fix without ever echoing a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.source.rows import ENTRY_COLUMN_ORDER, TARGET_COLUMNS
from adapters.source.sql import PARAMETER_TYPES
from connector.errors import SettingsError
from connector.settings import (
    SQL_PARAMETERS,
    EntryColumns,
    FileSourceSection,
    FileTargetsSection,
    HttpSourceSection,
    HttpTargetsSection,
    IcsSourceSection,
    Settings,
    SourceTargetsSection,
    SqlSourceSection,
    SqlTargetsSection,
    TargetColumns,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[2]
SQL = """
[source]
kind = "sql"
url = { env = "SOURCE_URL" }
query = "SELECT * FROM shifts WHERE ends_at > :window_start AND (:owner IS NULL OR employee = :owner)"
"""
HTTP = """
[source]
kind = "http"
url = "https://planning.example.com/api/shifts"
"""
ENV = {"SOURCE_URL": "postgresql+psycopg://reader:s3cret@db/planning", "API_TOKEN": "tok-123456"}


def load(text: str, env: dict[str, str] | None = None) -> Settings:
    return load_settings(text, environ=ENV | (env or {}), base_dir=Path("/etc/connector"))


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load(text, env)
    for problem in caught.value.problems:
        assert "s3cret" not in problem and "tok-123456" not in problem
    return caught.value.problems


def test_the_field_and_parameter_lists_agree_with_the_adapters() -> None:
    assert tuple(EntryColumns.model_fields) == ENTRY_COLUMN_ORDER
    assert set(TargetColumns.model_fields) == TARGET_COLUMNS
    assert set(SQL_PARAMETERS) == set(PARAMETER_TYPES)


# --- kinds ---------------------------------------------------------------------------------------


def test_a_source_without_kind_is_a_file_and_an_unknown_kind_names_the_choices() -> None:
    assert isinstance(load('[source]\npath = "s.csv"\n').source, FileSourceSection)
    assert problems('[source]\nkind = "database"\n') == [
        "source.kind: 'database' is not a kind of source — use file, sql, http or ics"
    ]
    assert problems('source = "s.csv"\n') == [
        "source: must be a table [source] — give it kind = file, sql, http or ics and that kind's keys"
    ]
    found = problems('[source]\npath = "s.csv"\n[targets]\nkind = "ldap"\n')
    assert found == ["targets.kind: 'ldap' is not a kind of targets — use file, inline, source, sql or http"]


def test_keys_of_another_kind_are_unknown_keys_with_the_kinds_own_list() -> None:
    found = problems('[source]\npath = "s.csv"\nquery = "SELECT 1"\n')
    assert found == ["source.query: unknown key — source of kind 'file' accepts: kind, path"]
    found = problems(SQL + "qurey = 3\n")
    assert found == ["source.qurey: unknown key — did you mean 'query'?"]


# --- sql -----------------------------------------------------------------------------------------


def test_a_sql_source_with_columns_chunks_and_a_secret_url() -> None:
    settings = load(SQL + 'chunk_size = 500\n[source.columns]\nkey = "shift_id"\nowner = "employee"\n')
    source = settings.source
    assert isinstance(source, SqlSourceSection)
    assert source.url.get_secret_value() == ENV["SOURCE_URL"]
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
    assert source.columns.mapping() == {"key": "shift_id", "owner": "employee"}
    assert (source.chunk_size, source.connect_timeout_s) == (500, 10.0)


def test_a_sql_url_can_come_from_a_file_or_an_override() -> None:
    text = '[source]\nkind = "sql"\nurl_file = "/run/secrets/db"\nquery = "SELECT 1"\n'
    settings = load_settings(
        text, environ={}, base_dir=Path("/"), read_file=lambda path: "sqlite:///planning.db\n"
    )
    assert isinstance(settings.source, SqlSourceSection)
    assert settings.source.url.get_secret_value() == "sqlite:///planning.db"
    overridden = load(SQL, {"CONNECTOR__SOURCE__URL": "mysql+pymysql://r:s3cret@db/p"})
    assert isinstance(overridden.source, SqlSourceSection)
    assert overridden.source.url.get_secret_value().startswith("mysql+pymysql://")


def test_sql_source_problems_name_the_key_and_the_fix() -> None:
    found = problems('[source]\nkind = "sql"\n')
    assert found[0].startswith(
        "source.url: required but not set — a SQLAlchemy URL such as postgresql+psycopg://"
    )
    assert found[1].startswith("source.query: required but not set — a SELECT with one row per entry")
    found = problems(SQL, {"SOURCE_URL": "postgres//reader:s3cret@db"})
    assert found[0].startswith("source.url: not a database URL — a SQLAlchemy URL such as")
    found = problems(SQL, {"SOURCE_URL": "https://reader:s3cret@planning.example.com/api"})
    assert 'for a web API use kind = "http"' in found[0]
    found = problems(
        '[source]\nkind = "sql"\nurl = "sqlite:///x.db"\nquery = "SELECT * FROM t WHERE d > :since"\n'
    )
    assert found[0].startswith("source.query: the query uses :since, which the connector does not bind")
    assert ":window_start_local" in found[0] and r"\:" in found[0]
    found = problems(SQL + 'chunk_size = 5\n[source.columns]\nkee = "id"\ntitle = " "\n')
    assert (
        "source.chunk_size: Input should be greater than or equal to 10 (got 5) — rows fetched per round trip, 10 to 100000"
        in found
    )
    assert "source.columns.kee: unknown key — did you mean 'key'?" in found
    assert any(p.startswith("source.columns.title: the column name is empty") for p in found)


def test_sql_targets_share_the_source_database_or_name_their_own() -> None:
    settings = load(SQL + '[targets]\nkind = "sql"\nquery = "SELECT email AS address FROM staff"\n')
    assert isinstance(settings.targets, SqlTargetsSection) and settings.targets.url is None
    own = load(
        '[source]\npath = "s.csv"\n[targets]\nkind = "sql"\nurl = { env = "SOURCE_URL" }\nquery = "SELECT 1"\n'
        '[targets.columns]\naddress = "email"\nenabled = "active"\n'
    )
    assert isinstance(own.targets, SqlTargetsSection)
    assert own.targets.columns.mapping() == {"address": "email", "enabled": "active"}
    found = problems('[source]\npath = "s.csv"\n[targets]\nkind = "sql"\nquery = "SELECT 1"\n')
    assert found == [
        "settings: targets.kind is 'sql' but targets.url is not set, and the source is no database to share"
        ' — set targets.url, e.g. url = { env = "CONNECTOR_TARGETS_URL" }'
    ]
    found = problems(SQL + '[targets]\nkind = "sql"\nquery = "SELECT * FROM staff WHERE team = :owner"\n')
    assert (
        "targets.query: the query uses :owner, which the connector does not bind (a targets query binds none)"
        in found[0]
    )


# --- http ----------------------------------------------------------------------------------------


def test_an_http_source_with_paging_auth_window_and_columns() -> None:
    settings = load(
        HTTP
        + """
items_path = "value"
paging = "next_link"
next_path = "@odata.nextLink"
auth = "bearer"
token = { env = "API_TOKEN" }
window_start_param = "from"
window_end_param = "to"
window_format = "date"
owner_param = "employee"
params = { status = "published" }
[source.columns]
owner = "employee.number"
"""
    )
    source = settings.source
    assert isinstance(source, HttpSourceSection)
    assert source.token is not None and source.token.get_secret_value() == "tok-123456"
    assert "tok-123456" not in repr(settings)
    assert (source.paging, source.next_path, source.window_format) == ("next_link", "@odata.nextLink", "date")
    assert source.columns.mapping() == {"owner": "employee.number"}
    assert (source.timeout_s, source.retries, source.max_retry_wait_s) == (30.0, 3, 60.0)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('auth = "bearer"\n', "source: auth is 'bearer' but token is not set — e.g. token = { env ="),
        ('auth = "basic"\nusername = "svc"\n', "source: auth is 'basic' but password is not set"),
        (
            'auth = "header"\nheader_value = { env = "API_TOKEN" }\n',
            "source: auth is 'header' but header_name is not set",
        ),
        (
            'token = { env = "API_TOKEN" }\n',
            "source: token is set but auth is 'none', so it would not be sent",
        ),
        (
            'paging = "page"\nstop_on = "short"\n',
            'source: stop_on = "short" needs page_size and page_size_param',
        ),
        ('paging = "page"\nstop_on = "total"\n', 'source: stop_on = "total" needs total_path'),
        ('page_size_param = "per_page"\n', "source: paging is 'none' but paging keys are set"),
        (
            'paging = "cursor"\n',
            "source.paging: Input should be 'none', 'next_link', 'page' or 'offset' (got 'cursor') — none (one request), next_link",
        ),
        (
            'window_format = "iso"\n',
            "source.window_format: Input should be 'utc', 'local' or 'date' (got 'iso') — utc (2026-11-16T23:00:00Z)",
        ),
        (
            "retries = 99\n",
            "source.retries: Input should be less than or equal to 10 (got 99) — retries after a timeout, 429 or 5xx answer, 0 to 10",
        ),
        ('token = 12345\nauth = "bearer"\n', "source.token: Input should be a valid string"),
    ],
)
def test_http_source_problems_name_the_key_and_the_fix(extra: str, expected: str) -> None:
    found = problems(HTTP + extra)
    assert any(p.startswith(expected) for p in found), found
    assert not any("12345" in p for p in found)


def test_http_credentials_need_https_except_on_this_machine() -> None:
    remote = (
        '[source]\nkind = "http"\nurl = "http://planning.example.com/api"\nauth = "bearer"\ntoken = "x"\n'
    )
    assert problems(remote) == [
        "source: credentials would travel unencrypted over plain http — use an https:// URL"
    ]
    local = load(remote.replace("planning.example.com", "127.0.0.1:8080"))
    assert isinstance(local.source, HttpSourceSection)
    assert problems('[source]\nkind = "http"\nurl = "planning.example.com/api"\n')[0].startswith(
        "source.url: 'planning.example.com/api' is not an http(s) URL — the endpoint, e.g. https://"
    )


def test_http_targets_take_the_same_keys() -> None:
    settings = load(
        '[source]\npath = "s.csv"\n[targets]\nkind = "http"\nurl = "https://planning.example.com/api/people"\n'
        'auth = "header"\nheader_name = "X-Api-Key"\nheader_value = { env = "API_TOKEN" }\n'
        '[targets.columns]\naddress = "mail"\n'
    )
    targets = settings.targets
    assert isinstance(targets, HttpTargetsSection)
    assert targets.header_value is not None and targets.header_value.get_secret_value() == "tok-123456"
    assert targets.columns.mapping() == {"address": "mail"}
    found = problems('[source]\npath = "s.csv"\n[targets]\nkind = "http"\n[targets.columns]\nadress = "x"\n')
    assert (
        "targets.url: required but not set — the endpoint, e.g. https://planning.example.com/api/shifts"
        in found
    )
    assert "targets.columns.adress: unknown key — did you mean 'address'?" in found


# --- ics -----------------------------------------------------------------------------------------


def test_an_ics_source_needs_a_path_and_an_owner_or_an_owner_property() -> None:
    settings = load('[source]\nkind = "ics"\npath = "calendars"\nowner_property = "X-OWNER"\n')
    assert isinstance(settings.source, IcsSourceSection)
    assert settings.resolve(settings.source.path) == Path("/etc/connector/calendars")
    assert settings.source.owner is None
    assert isinstance(
        load('[source]\nkind = "ics"\npath = "a.ics"\nowner = "room1@contoso.example"\n').source,
        IcsSourceSection,
    )
    assert problems('[source]\nkind = "ics"\npath = "a.ics"\n') == [
        "source: kind is 'ics' but neither owner nor owner_property is set — set owner ="
        ' "anna@contoso.example" (the calendar of one person or room) or owner_property = "X-OWNER" (one per event)'
    ]
    found = problems('[source]\nkind = "ics"\nowner_property = "X OWNER"\n')
    assert (
        found[0]
        == "source.path: required but not set — an .ics file or a folder of .ics files, relative to settings.toml"
    )
    assert found[1].startswith("source.owner_property: String should match pattern")
    assert found[1].endswith('letters, digits and "-", e.g. "X-OWNER" or "ORGANIZER"')


# --- the shipped files ---------------------------------------------------------------------------


def test_the_example_settings_files_are_valid() -> None:
    env = {"CONNECTOR_SOURCE_URL": "postgresql+psycopg://reader:pw@db/planning", "CONNECTOR_API_TOKEN": "t"}
    kinds = {}
    for name in ("settings-postgres.toml", "settings-http.toml", "settings-ics.toml"):
        path = ROOT / "examples" / name
        settings = load_settings(path.read_text(encoding="utf-8"), environ=env, base_dir=path.parent)
        kinds[name] = (settings.source.kind, settings.targets.kind)
    assert kinds == {
        "settings-postgres.toml": ("sql", "sql"),
        "settings-http.toml": ("http", "http"),
        "settings-ics.toml": ("ics", "source"),
    }


def test_the_default_targets_are_the_sources_owners_and_file_targets_need_a_path() -> None:
    assert isinstance(load('[source]\npath = "s.csv"\n').targets, SourceTargetsSection)
    assert isinstance(
        load('[source]\npath = "s.csv"\n[targets]\npath = "t.csv"\n').targets, FileTargetsSection
    )
