"""Federation: the coordinator's node registry and its append-only round log

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

A node's key and admission live in `federation_nodes` (revoking is audited); every signed
message the coordinator sends or accepts, and every decision it makes, is a row of
`federation_log`, from which an interrupted round is resumed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store._schema
from store._triggers import create_append_only, drop_append_only

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

APPEND_ONLY = ("federation_log",)
UTC = store._schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "federation_nodes",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint("status IN ('active', 'revoked')", name="ck_node_status"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "federation_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sender", sa.String(length=63), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_federation_log_round", "federation_log", ["round", "kind"])
    create_append_only(op.get_bind(), APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(op.get_bind(), APPEND_ONLY)
    op.drop_index("ix_federation_log_round", table_name="federation_log")
    op.drop_table("federation_log")
    op.drop_table("federation_nodes")
