"""Schedules and targets from the host application's database: one configured query, any SQLAlchemy URL.

Drivers: PostgreSQL through psycopg (``postgresql+psycopg://``; a bare ``postgresql://`` gets it too),
MySQL and MariaDB through PyMySQL (``mysql+pymysql://``, ``mariadb+pymysql://``; bare ``mysql://`` gets
it), SQLite (``sqlite:///file.db``), and SQL Server through pyodbc (``mssql+pyodbc://``) once the admin
has installed pyodbc and Microsoft's ODBC driver: pyodbc is not a dependency of the connector, and that
path is untested here. pyodbc cannot read ``datetimeoffset`` values: select them as ISO text
(``CONVERT(varchar(33), starts_at, 127)``), which keeps the offset.

The query's bound parameters (write ``:name``; ``CAST(:x AS ...)``, never ``:x::type``):

* ``:window_start``, ``:window_end`` — the window as aware UTC datetimes, for columns that hold
  instants (PostgreSQL ``timestamptz``, SQL Server ``datetimeoffset``, UTC in a plain column).
* ``:window_start_local``, ``:window_end_local`` — the same bounds as naive wall-clock times in the
  connector's zone, for columns that hold local times (``timestamp``, MySQL ``DATETIME``).
* ``:owner`` — the owner a one-mailbox sync needs, or NULL when the whole schedule is read, e.g.
  ``WHERE (:owner IS NULL OR employee = :owner)``. A query without ``:owner`` always reads everything.

The parameters are typed, so PostgreSQL needs no casts for ``:owner IS NULL``. They only narrow the read:
the core keeps exactly the entries that overlap the window, whatever the query returns.

Rows are streamed: a server-side cursor where the driver has one (psycopg, PyMySQL's SSCursor), fetched
``chunk_size`` rows at a time, so memory does not grow with the schedule. Database values arrive typed and
keep their meaning (``mapping.cell``): a ``timestamptz`` is an instant, a ``timestamp`` or ``DATETIME``
is wall-clock in the row's ``timezone`` (else the connector's zone), a ``date`` is a date. MySQL
``TIMESTAMP`` columns come back as wall-clock in the *session's* zone: convert them in the query.

A database that cannot be reached or a query that fails raises ``SourceError`` naming the database (its
password masked) and the fix; it may surface during iteration, after rows were yielded, and the caller
then treats the whole read as failed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from datetime import UTC
from typing import Any

from sqlalchemy import TextClause, bindparam, create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import DateTime, String, TypeEngine

from adapters.source.mapping import cell, column_layout, naming
from adapters.source.rows import (
    ENTRY_COLUMNS,
    ENTRY_REQUIRED_COLUMNS,
    TARGET_COLUMNS,
    TARGET_REQUIRED_COLUMNS,
    RawRow,
    RowValue,
    checked_zone,
    entries_from_rows,
    targets_from_rows,
)
from connector.errors import SourceError
from connector.models import Rejected, ScheduleEntry, Target
from connector.window import Window

#: What a schedule query may use, and how each is typed on the way to the database.
PARAMETER_TYPES: Mapping[str, TypeEngine[Any]] = {
    "window_start": DateTime(timezone=True),
    "window_end": DateTime(timezone=True),
    "window_start_local": DateTime(),
    "window_end_local": DateTime(),
    "owner": String(),
}

# SQLAlchemy's own rule for text(): ":name", but not "::type" casts and not "\:" escapes.
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
_DEFAULT_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_QUERY_PASSWORD = re.compile(r"([?&](?:password|pwd)=)[^&]*", re.IGNORECASE)
_URL_FIX = (
    "use a SQLAlchemy URL such as postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db,"
    " mssql+pyodbc://user@dsn or sqlite:///path/to/file.db"
)


def mask_url(url: str | URL) -> str:
    """``url`` without its password, safe to show; a string that is no URL is not shown at all."""
    try:
        rendered = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(a database URL that cannot be parsed)"
    return _QUERY_PASSWORD.sub(r"\1***", rendered)


def parse_database_url(url: str, setting: str = "source") -> URL:
    """The SQLAlchemy URL of ``url``, with the installed driver filled in where only the database is named."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise SourceError(f"{setting}.url is not a database URL", fix=_URL_FIX) from exc
    if parsed.drivername in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[parsed.drivername])
    return parsed


class SqlQuery:
    """One query against one database, streamed as ``RawRow``s. Each read opens its own connection and
    closes it at the end (no pool: runs are minutes apart, and an idle pooled connection would go stale
    behind firewalls and failovers in between)."""

    def __init__(
        self,
        url: str,
        query: str,
        *,
        parameters: Mapping[str, TypeEngine[Any]],
        known: frozenset[str],
        required: tuple[str, ...],
        columns: Mapping[str, str] | None = None,
        chunk_size: int = 1000,
        connect_timeout_s: float = 10.0,
        setting: str = "source",
    ) -> None:
        self._url = parse_database_url(url, setting)
        self._password = str(self._url.password or "")
        self._setting = setting
        self._columns = dict(columns or {})
        self._known = known
        self._required = required
        self._chunk_size = chunk_size
        self._connect_timeout_s = connect_timeout_s
        self.used = _used_parameters(query, parameters, setting)
        self._statement = _statement(query, {name: parameters[name] for name in self.used}, setting)

    @property
    def shown_url(self) -> str:
        return mask_url(self._url)

    def rows(self, parameters: Mapping[str, Any]) -> Iterator[RawRow]:
        engine = self._engine()
        try:
            yield from self._read(engine, {name: parameters[name] for name in self.used})
        finally:
            engine.dispose()

    def _read(self, engine: Engine, parameters: dict[str, Any]) -> Iterator[RawRow]:
        try:
            connection = engine.connect()
        except SQLAlchemyError as exc:
            raise SourceError(
                f"cannot connect to the {self._setting} database {self.shown_url}: {self._reason(exc)}",
                fix=f"check that the server runs and is reachable from here, and the host, port, database,"
                f" user and password in {self._setting}.url",
            ) from exc
        with connection:
            # stream_results: a server-side cursor where the driver has one; yield_per: fetch in chunks.
            streaming = connection.execution_options(stream_results=True, yield_per=self._chunk_size)
            try:
                result = streaming.execute(self._statement, parameters)
            except SQLAlchemyError as exc:
                raise SourceError(
                    f"the {self._setting} query failed on {self.shown_url}: {self._reason(exc)}",
                    fix=f"fix {self._setting}.query (try it in a SQL client of that database first)",
                ) from exc
            if not result.returns_rows:
                raise SourceError(
                    f"the {self._setting} query on {self.shown_url} returns no rows at all (it is no SELECT)",
                    fix=f"make {self._setting}.query a SELECT",
                )
            # text() statements do not take yield_per from the options; set it on the result itself.
            result = result.yield_per(self._chunk_size)
            layout = column_layout(
                list(result.keys()), self._columns, self._known, self._required, setting=self._setting
            )
            number = 0
            finished = False
            try:
                for record in result:
                    number += 1
                    yield self._row(number, record, layout)
                finished = True
            except SQLAlchemyError as exc:
                raise SourceError(
                    f"reading the {self._setting} query's rows from {self.shown_url} failed after row"
                    f" {number}: {self._reason(exc)}",
                    fix="check the database server and the network; nothing is deleted until a read succeeds",
                ) from exc
            finally:
                if not finished:
                    # Abandoned half-way: close the cursor before the connection, or an unbuffered
                    # driver (PyMySQL's SSCursor) complains that the connection closed under it.
                    with contextlib.suppress(SQLAlchemyError):
                        result.close()

    def _row(self, number: int, record: Any, layout: list[tuple[int, str]]) -> RawRow:
        values: dict[str, RowValue] = {}
        problem = ""
        for index, name in layout:
            value, trouble = cell(record[index])
            if trouble and not problem:
                problem = f"column {name} {trouble}"
            values[name] = value
        origin = f"sql row {number}{naming(values)}"
        return RawRow(origin, values, problem)

    def _engine(self) -> Engine:
        try:
            return create_engine(
                self._url, poolclass=NullPool, connect_args=_connect_args(self._url, self._connect_timeout_s)
            )
        except NoSuchModuleError as exc:
            raise SourceError(
                f"{self._setting}.url names the database type {self._url.drivername!r}, which SQLAlchemy"
                " does not know",
                fix=_URL_FIX,
            ) from exc
        except ImportError as exc:
            raise SourceError(
                f"the database driver for {self._url.drivername} is not installed ({exc.name or exc})",
                fix=f"install it into the connector's environment (e.g. .venv/bin/pip install {exc.name});"
                " for SQL Server also Microsoft's ODBC Driver 18",
            ) from exc
        except ArgumentError as exc:
            raise SourceError(f"{self._setting}.url cannot be used: {exc}", fix=_URL_FIX) from exc

    def _reason(self, exc: SQLAlchemyError) -> str:
        original = getattr(exc, "orig", None) or exc
        reason = " ".join(str(original).split())
        if self._password:
            reason = reason.replace(self._password, "***")
        return reason[:500]


def _used_parameters(query: str, offered: Mapping[str, TypeEngine[Any]], setting: str) -> tuple[str, ...]:
    used = tuple(dict.fromkeys(_BIND.findall(query)))
    unknown = [name for name in used if name not in offered]
    if unknown:
        names = ", ".join(f":{name}" for name in offered) or "none"
        raise SourceError(
            f"{setting}.query uses {', '.join(':' + n for n in unknown)}, which the connector does not bind",
            fix=f"use only {names}; write a literal colon as \\:",
        )
    return used


def _statement(query: str, types: Mapping[str, TypeEngine[Any]], setting: str) -> TextClause:
    try:
        return text(query).bindparams(*(bindparam(name, type_=kind) for name, kind in types.items()))
    except ArgumentError as exc:
        raise SourceError(f"{setting}.query cannot be used: {exc}", fix=f"fix {setting}.query") from exc


def _connect_args(url: URL, timeout_s: float) -> dict[str, Any]:
    """The driver's own name for a connect timeout: a database that does not answer must fail the read,
    not hang the worker."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    seconds = max(1, round(timeout_s))
    if backend == "postgresql" and driver == "psycopg":
        return {"connect_timeout": seconds}
    if backend in ("mysql", "mariadb") and driver == "pymysql":
        return {"connect_timeout": seconds}
    if backend == "mssql" and driver == "pyodbc":
        return {"timeout": seconds}
    if backend == "sqlite":
        return {"timeout": timeout_s}
    return {}


def window_parameters(window: Window, owner: str | None) -> dict[str, Any]:
    local_start = window.start.astimezone(window.zone).replace(tzinfo=None)
    local_end = window.end.astimezone(window.zone).replace(tzinfo=None)
    return {
        "window_start": window.start.astimezone(UTC),
        "window_end": window.end.astimezone(UTC),
        "window_start_local": local_start,
        "window_end_local": local_end,
        "owner": owner,
    }


class SqlScheduleSource:
    def __init__(
        self,
        url: str,
        query: str,
        *,
        default_zone: str,
        columns: Mapping[str, str] | None = None,
        chunk_size: int = 1000,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._default_zone = checked_zone(default_zone)
        self._query = SqlQuery(
            url,
            query,
            parameters=PARAMETER_TYPES,
            known=ENTRY_COLUMNS,
            required=ENTRY_REQUIRED_COLUMNS,
            columns=columns,
            chunk_size=chunk_size,
            connect_timeout_s=connect_timeout_s,
        )

    def describe(self) -> str:
        return f"SQL query on {self._query.shown_url}"

    def read(self, window: Window, owner: str | None = None) -> Iterator[ScheduleEntry | Rejected]:
        return entries_from_rows(self._query.rows(window_parameters(window, owner)), self._default_zone)


class SqlTargetSource:
    def __init__(
        self,
        url: str,
        query: str,
        *,
        columns: Mapping[str, str] | None = None,
        chunk_size: int = 1000,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._query = SqlQuery(
            url,
            query,
            parameters={},
            known=TARGET_COLUMNS,
            required=TARGET_REQUIRED_COLUMNS,
            columns=columns,
            chunk_size=chunk_size,
            connect_timeout_s=connect_timeout_s,
            setting="targets",
        )

    def describe(self) -> str:
        return f"SQL query on {self._query.shown_url}"

    def read_targets(self) -> Iterator[Target | Rejected]:
        return targets_from_rows(self._query.rows({}))
