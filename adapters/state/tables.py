"""The state database schema as SQLModel tables. Migrations in ``migrations/versions`` must produce
exactly this schema (a test compares them).

Statuses and modes are plain strings, not database enums, so adding a value needs no migration.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, MetaData, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from adapters.state.types import UTCDateTime
from connector.state import COUNT_NAMES

# Fixed constraint names keep migrations reproducible and droppable on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class StateModel(SQLModel, registry=registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))):
    """Base of the state tables: their own metadata, so tables other code declares on SQLModel's
    global metadata never leak into our migrations (and ours never into theirs)."""


metadata: MetaData = StateModel.metadata


class CountColumns(StateModel):
    """The counts of ``connector.state.Counts``, as columns of every table that keeps some."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    adopted: int = 0
    failed: int = 0
    quarantined: int = 0


class MappingRow(StateModel, table=True):
    __tablename__ = "mapping"

    mailbox: str = Field(primary_key=True, index=True)
    source_key: str = Field(primary_key=True)
    remote_id: str | None = Field(default=None)
    change_key: str | None = Field(default=None)
    content_hash: str
    start_utc: datetime = Field(sa_type=UTCDateTime)
    end_utc: datetime = Field(sa_type=UTCDateTime)
    transaction_id: str | None = Field(default=None)
    last_pushed: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RunRow(CountColumns, table=True):
    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    trigger: str
    mode: str
    forced: bool
    status: str
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    mailboxes_total: int
    mailboxes_done: int = 0
    error: str | None = Field(default=None, sa_type=Text)


class RunMailboxRow(CountColumns, table=True):
    """One mailbox's outcome in one run. Keyed by (run, mailbox) so a redelivered result replaces the
    first instead of being counted twice."""

    __tablename__ = "run_mailbox"

    run_id: int = Field(
        sa_column=Column(Integer, ForeignKey("run.id", ondelete="CASCADE"), primary_key=True),
    )
    mailbox: str = Field(primary_key=True)
    status: str
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime = Field(sa_type=UTCDateTime)
    error_code: str | None = Field(default=None)
    error: str | None = Field(default=None, sa_type=Text)
    #: JSON list of [source key, reason] pairs.
    op_errors: str = Field(default="[]", sa_type=Text)


class MailboxHealthRow(CountColumns, table=True):
    __tablename__ = "mailbox_health"

    mailbox: str = Field(primary_key=True)
    status: str
    # No foreign key: health outlives pruned runs.
    last_run_id: int | None = Field(default=None)
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error_code: str | None = Field(default=None)
    error: str | None = Field(default=None, sa_type=Text)


class QuarantineRow(StateModel, table=True):
    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    source_key: str
    owner: str = Field(index=True)
    mailbox: str | None = Field(default=None)
    reason: str = Field(sa_type=Text)
    origin: str = ""
    first_seen: datetime = Field(sa_type=UTCDateTime)
    last_seen: datetime = Field(sa_type=UTCDateTime)


COUNT_COLUMNS = COUNT_NAMES
