"""A run's lease: the one process executing it (host, pid, claim token, since when)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-11

A resume claims the run in its write transaction; a second resume while the first process
lives is refused. The run's `updated_at` (bumped by every recorded step) is the heartbeat.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store._schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC = store._schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column("runs", sa.Column("lease_token", sa.String(length=64), nullable=True))
    op.add_column("runs", sa.Column("lease_host", sa.String(length=255), nullable=True))
    op.add_column("runs", sa.Column("lease_pid", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("lease_since", UTC, nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch copy of `runs` would drop
    # the table that run_steps, run_tasks, outputs and critiques reference.
    op.drop_column("runs", "lease_since")
    op.drop_column("runs", "lease_pid")
    op.drop_column("runs", "lease_host")
    op.drop_column("runs", "lease_token")
