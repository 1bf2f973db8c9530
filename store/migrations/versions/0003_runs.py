"""Refinement runs: runs, their completed steps, tasks, outputs and critiques

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Completed steps, outputs and critiques are append-only (the evidence behind amendments).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store._schema
from store._triggers import create_append_only, drop_append_only

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = ("run_steps", "outputs", "critiques")
UTC = store._schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("constitution_id", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_revision", sa.Integer(), nullable=False),
        sa.Column("model_info", sa.JSON(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["constitution_id"], ["constitutions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "run_steps",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("completed_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "iteration", "step"),
    )
    op.create_table(
        "run_tasks",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("split", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "task_id"),
    )
    op.create_table(
        "outputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("amendment_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outputs_run", "outputs", ["run_id", "iteration", "purpose"])
    op.create_table(
        "critiques",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("output_id", sa.Integer(), nullable=False),
        sa.Column("principle_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("relevance", sa.Float(), nullable=False),
        sa.Column("spread", sa.Float(), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["output_id"], ["outputs.id"]),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_critiques_output_id", "critiques", ["output_id"])
    op.create_index("ix_critiques_run_id", "critiques", ["run_id"])
    create_append_only(op.get_bind(), APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(op.get_bind(), APPEND_ONLY)
    op.drop_index("ix_critiques_run_id", table_name="critiques")
    op.drop_index("ix_critiques_output_id", table_name="critiques")
    op.drop_table("critiques")
    op.drop_index("ix_outputs_run", table_name="outputs")
    op.drop_table("outputs")
    op.drop_table("run_tasks")
    op.drop_table("run_steps")
    op.drop_table("runs")
