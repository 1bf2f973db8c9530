"""The judge's own record: human labels on critiques, calibrations, judge evaluations

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

All three tables are append-only: a changed mind is a new label, a refit is a new
calibration, a new measurement is a new evaluation.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store._schema
from store._triggers import create_append_only, drop_append_only

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APPEND_ONLY = ("judge_labels", "judge_calibrations", "judge_evaluations")
UTC = store._schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "judge_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("critique_id", sa.Integer(), nullable=True),
        sa.Column("principle_id", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("label", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("labeller", sa.String(length=120), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint("label >= 0 AND label <= 1", name="ck_judge_labels_range"),
        sa.ForeignKeyConstraint(["critique_id"], ["critiques.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_judge_labels_critique_id", "judge_labels", ["critique_id"])
    op.create_index("ix_judge_labels_principle_id", "judge_labels", ["principle_id"])
    op.create_table(
        "judge_calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("label_set", sa.String(length=128), nullable=False),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_judge_calibrations_model", "judge_calibrations", ["model"])
    op.create_table(
        "judge_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("calibration_id", sa.Integer(), nullable=True),
        sa.Column("label_set", sa.String(length=128), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("auc", sa.Float(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["calibration_id"], ["judge_calibrations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_judge_evaluations_model", "judge_evaluations", ["model"])
    create_append_only(op.get_bind(), APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(op.get_bind(), APPEND_ONLY)
    op.drop_index("ix_judge_evaluations_model", table_name="judge_evaluations")
    op.drop_table("judge_evaluations")
    op.drop_index("ix_judge_calibrations_model", table_name="judge_calibrations")
    op.drop_table("judge_calibrations")
    op.drop_index("ix_judge_labels_principle_id", table_name="judge_labels")
    op.drop_index("ix_judge_labels_critique_id", table_name="judge_labels")
    op.drop_table("judge_labels")
