"""Initial schema: mappings, runs and their mailbox results, mailbox health, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 03:03:34
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from the models, so this revision stays what it was when the
# models change. UTCDateTime is a Python-side type: in the database it is a zone-aware timestamp.
_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIMESTAMP = sa.DateTime(timezone=True)
_COUNTS = ("created", "updated", "deleted", "unchanged", "adopted", "failed", "quarantined")


def _count_columns() -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS]


def upgrade() -> None:
    op.create_table(
        "mailbox_health",
        sa.Column("mailbox", _TEXT(), nullable=False),
        sa.Column("status", _TEXT(), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("last_run_at", _TIMESTAMP, nullable=True),
        sa.Column("last_success_at", _TIMESTAMP, nullable=True),
        sa.Column("error_code", _TEXT(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_count_columns(),
        sa.PrimaryKeyConstraint("mailbox", name=op.f("pk_mailbox_health")),
    )
    op.create_table(
        "mapping",
        sa.Column("mailbox", _TEXT(), nullable=False),
        sa.Column("source_key", _TEXT(), nullable=False),
        sa.Column("remote_id", _TEXT(), nullable=True),
        sa.Column("change_key", _TEXT(), nullable=True),
        sa.Column("content_hash", _TEXT(), nullable=False),
        sa.Column("start_utc", _TIMESTAMP, nullable=False),
        sa.Column("end_utc", _TIMESTAMP, nullable=False),
        sa.Column("transaction_id", _TEXT(), nullable=True),
        sa.Column("last_pushed", _TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("mailbox", "source_key", name=op.f("pk_mapping")),
    )
    op.create_index(op.f("ix_mapping_mailbox"), "mapping", ["mailbox"], unique=False)
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_key", _TEXT(), nullable=False),
        sa.Column("owner", _TEXT(), nullable=False),
        sa.Column("mailbox", _TEXT(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("origin", _TEXT(), nullable=False),
        sa.Column("first_seen", _TIMESTAMP, nullable=False),
        sa.Column("last_seen", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    op.create_index(op.f("ix_quarantine_owner"), "quarantine", ["owner"], unique=False)
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", _TEXT(), nullable=False),
        sa.Column("mode", _TEXT(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("status", _TEXT(), nullable=False),
        sa.Column("started_at", _TIMESTAMP, nullable=False),
        sa.Column("finished_at", _TIMESTAMP, nullable=True),
        sa.Column("mailboxes_total", sa.Integer(), nullable=False),
        sa.Column("mailboxes_done", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        *_count_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run")),
    )
    op.create_table(
        "run_mailbox",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("mailbox", _TEXT(), nullable=False),
        sa.Column("status", _TEXT(), nullable=False),
        *_count_columns(),
        sa.Column("started_at", _TIMESTAMP, nullable=False),
        sa.Column("finished_at", _TIMESTAMP, nullable=False),
        sa.Column("error_code", _TEXT(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("op_errors", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_run_mailbox_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "mailbox", name=op.f("pk_run_mailbox")),
    )


def downgrade() -> None:
    op.drop_table("run_mailbox")
    op.drop_table("run")
    op.drop_index(op.f("ix_quarantine_owner"), table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_index(op.f("ix_mapping_mailbox"), table_name="mapping")
    op.drop_table("mapping")
    op.drop_table("mailbox_health")
