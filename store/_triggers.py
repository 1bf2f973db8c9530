"""Database-enforced append-only tables: UPDATE, DELETE (and TRUNCATE on PostgreSQL) fail."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION charter_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$
"""


def create_append_only(conn: Connection, tables: Iterable[str]) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(_PG_FUNCTION))
        for t in tables:
            conn.execute(
                text(
                    f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                    "FOR EACH ROW EXECUTE FUNCTION charter_append_only()"
                )
            )
            conn.execute(
                text(
                    f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION charter_append_only()"
                )
            )
        return
    for t in tables:
        for verb in ("UPDATE", "DELETE"):
            conn.execute(
                text(
                    f"CREATE TRIGGER {t}_no_{verb.lower()} BEFORE {verb} ON {t} "
                    f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END"
                )
            )


def drop_append_only(conn: Connection, tables: Iterable[str]) -> None:
    if conn.dialect.name == "postgresql":
        for t in tables:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}"))
            conn.execute(text(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}"))
        return
    for t in tables:
        for verb in ("update", "delete"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {t}_no_{verb}"))
