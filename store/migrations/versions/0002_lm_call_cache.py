"""LM-call cache

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Request hash -> reply, so a resumed run replays model calls instead of re-generating them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store._schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lm_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("lm_cache")
