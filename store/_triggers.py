"""Database-enforced append-only tables: UPDATE, DELETE (and TRUNCATE on PostgreSQL) fail.

`missing_append_only` tells which of those guards are gone (`verify` reports them).
"""

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


def trigger_names(dialect: str, table: str) -> tuple[str, ...]:
    """The triggers `create_append_only` puts on `table`."""
    if dialect == "postgresql":
        return (f"{table}_append_only", f"{table}_no_truncate")
    return (f"{table}_no_update", f"{table}_no_delete")


_SQLITE_GUARDS = (
    "SELECT name, type, sql FROM sqlite_master WHERE type IN ('table', 'trigger') "
    "AND sql IS NOT NULL"
)
_PG_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
_PG_TRIGGERS = """
SELECT t.tgname FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND n.nspname = current_schema()
AND p.proname = 'charter_append_only' AND strpos(p.prosrc, 'RAISE EXCEPTION') > 0
"""


def missing_append_only(conn: Connection, tables: Iterable[str]) -> list[str]:
    """The append-only triggers of `tables` (those that exist: an older schema lacks some)
    that are gone, disabled, or no longer refuse the change."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        present = set(conn.exec_driver_sql(_PG_TABLES).scalars())
        armed = set(conn.exec_driver_sql(_PG_TRIGGERS).scalars())
    else:
        rows = conn.exec_driver_sql(_SQLITE_GUARDS).all()
        present = {name for name, kind, _ in rows if kind == "table"}
        armed = {name for name, kind, sql in rows if kind == "trigger" and "RAISE(ABORT" in sql}
    return [
        name
        for table in tables
        if table in present
        for name in trigger_names(dialect, table)
        if name not in armed
    ]
