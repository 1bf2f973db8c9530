"""API token scopes: a `read` token fetches the constitution and can change nothing

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

Existing tokens keep every right they had (`full`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_tokens",
        sa.Column("scope", sa.String(length=16), nullable=False, server_default="full"),
    )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), as in 0006.
    op.drop_column("api_tokens", "scope")
