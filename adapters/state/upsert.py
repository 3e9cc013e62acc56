"""INSERT .. ON CONFLICT DO UPDATE for both databases: atomic, so concurrent writers on PostgreSQL
cannot race between a lookup and an insert."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

from sqlalchemy import Table, case, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement, KeyedColumnElement

from adapters.state.tables import metadata
from connector.state import MailboxStatus

Excluded: TypeAlias = ReadOnlyColumnCollection[str, KeyedColumnElement[Any]]


def upsert(
    dialect: str,
    table: Table,
    keys: Sequence[str],
    update: Callable[[Excluded], Mapping[str, Any]],
    where: Callable[[Excluded], ColumnElement[bool]] | None = None,
) -> Insert:
    """Insert, or on a clash of ``keys`` set ``update(excluded)`` (only where ``where(excluded)``)."""
    if dialect == "postgresql":
        pg = postgresql.insert(table)
        return pg.on_conflict_do_update(
            index_elements=list(keys),
            set_=update(pg.excluded),
            where=None if where is None else where(pg.excluded),
        )
    lite = sqlite.insert(table)
    return lite.on_conflict_do_update(
        index_elements=list(keys),
        set_=update(lite.excluded),
        where=None if where is None else where(lite.excluded),
    )


def mapping_upsert(dialect: str) -> Insert:
    table = metadata.tables["mapping"]
    keys = ("mailbox", "source_key")
    return upsert(
        dialect,
        table,
        keys,
        lambda excluded: {c.name: excluded[c.name] for c in table.columns if c.name not in keys},
    )


def health_upsert(dialect: str) -> Insert:
    """Health takes the new result, except that ``last_success_at`` only moves on an OK result, and a
    result older than the one shown (a late redelivery) changes nothing."""
    table = metadata.tables["mailbox_health"]
    current = table.c

    def update(excluded: Excluded) -> dict[str, Any]:
        columns: dict[str, Any] = {c.name: excluded[c.name] for c in table.columns if c.name != "mailbox"}
        columns["last_success_at"] = case(
            (excluded.status == MailboxStatus.OK.value, excluded.last_success_at),
            else_=current.last_success_at,
        )
        return columns

    return upsert(
        dialect,
        table,
        ("mailbox",),
        update,
        where=lambda excluded: or_(
            current.last_run_at.is_(None), current.last_run_at <= excluded.last_run_at
        ),
    )
