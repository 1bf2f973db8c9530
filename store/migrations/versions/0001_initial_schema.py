"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Principles, versions, revisions, labels, amendments, reviews, actors and the audit chain.
Versions, revisions, their entries, reviews and audit events are append-only (triggers).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store._schema
from store._triggers import create_append_only, drop_append_only

APPEND_ONLY = ("principle_versions", "revisions", "revision_entries", "reviews", "audit_events")


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "actors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.String(length=100), nullable=False),
        sa.Column("created_at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "constitutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("head", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "amendments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("constitution_id", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("principle_id", sa.String(length=64), nullable=False),
        sa.Column("merge_from", sa.JSON(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("entrenched", sa.Boolean(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("base_revision", sa.Integer(), nullable=False),
        sa.Column("proposer", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("edit", sa.Integer(), nullable=False),
        sa.Column("editors", sa.JSON(), nullable=False),
        sa.Column("evaluation", sa.JSON(), nullable=True),
        sa.Column("applied_revision", sa.Integer(), nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["constitution_id"],
            ["constitutions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("amendments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_amendments_run_id"), ["run_id"], unique=False)
        batch_op.create_index("ix_amendments_status", ["constitution_id", "status"], unique=False)

    op.create_table(
        "labels",
        sa.Column("constitution_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["constitution_id"],
            ["constitutions.id"],
        ),
        sa.PrimaryKeyConstraint("constitution_id", "name"),
    )
    op.create_table(
        "principle_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("constitution_id", sa.Integer(), nullable=False),
        sa.Column("principle_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("entrenched", sa.Boolean(), nullable=False),
        sa.Column("author", sa.String(length=120), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("amendment_id", sa.Integer(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("parent_hash", sa.String(length=64), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["constitution_id"],
            ["constitutions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("constitution_id", "principle_id", "number", name="uq_version_number"),
    )
    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("constitution_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("parent", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=120), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("amendment_id", sa.Integer(), nullable=True),
        sa.Column("created_at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["constitution_id"],
            ["constitutions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("constitution_id", "number", name="uq_revision_number"),
    )
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.create_index("ix_revisions_time", ["constitution_id", "created_at"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("amendment_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=120), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("edit", sa.Integer(), nullable=False),
        sa.Column("created_at", store._schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["amendment_id"],
            ["amendments.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_amendment_id"), ["amendment_id"], unique=False)

    op.create_table(
        "revision_entries",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("principle_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["principle_versions.id"],
        ),
        sa.PrimaryKeyConstraint("revision_id", "principle_id"),
    )
    create_append_only(op.get_bind(), APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(op.get_bind(), APPEND_ONLY)
    op.drop_table("revision_entries")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_amendment_id"))

    op.drop_table("reviews")
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_revisions_time")

    op.drop_table("revisions")
    op.drop_table("principle_versions")
    op.drop_table("labels")
    with op.batch_alter_table("amendments", schema=None) as batch_op:
        batch_op.drop_index("ix_amendments_status")
        batch_op.drop_index(batch_op.f("ix_amendments_run_id"))

    op.drop_table("amendments")
    op.drop_table("constitutions")
    op.drop_table("audit_events")
    op.drop_table("actors")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS charter_append_only()")
