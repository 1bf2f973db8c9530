"""Alembic environment: runs on the connection the Store hands over (config.attributes)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from store._schema import Base

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the Store always passes its connection
    raise RuntimeError("run Charter's migrations through store.migrate(), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
