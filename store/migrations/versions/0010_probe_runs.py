"""Bias probe runs: one report per run of `charter probe bias`, append-only

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28

A new measurement is a new row; runs under two revisions are compared row to row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store._schema
from store._triggers import create_append_only, drop_append_only

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

APPEND_ONLY = ("probe_runs",)
UTC = store._schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "probe_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("constitution", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("suite", sa.String(length=300), nullable=False),
        sa.Column("templates", sa.Integer(), nullable=False),
        sa.Column("variants", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_probe_runs_constitution", "probe_runs", ["constitution", "revision"])
    create_append_only(op.get_bind(), APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(op.get_bind(), APPEND_ONLY)
    op.drop_index("ix_probe_runs_constitution", table_name="probe_runs")
    op.drop_table("probe_runs")
