"""Server-side sign-in sessions, shared failed-sign-in counts, disabled users

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

A session row holds only the SHA-256 digest of the random id in the browser's cookie; its
CSRF token is derived from that id, so nothing in this table lets anyone act as its user.
Failed sign-ins are rows too, so every server on one database enforces the same lockout.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store._schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC = store._schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column("users", sa.Column("disabled_at", UTC, nullable=True))
    op.add_column("users", sa.Column("password_changed_at", UTC, nullable=True))
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_key_at", "login_failures", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_key_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_table("sessions")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch copy of `users` would
    # drop the table that api_tokens references, which foreign keys refuse.
    op.drop_column("users", "password_changed_at")
    op.drop_column("users", "disabled_at")
