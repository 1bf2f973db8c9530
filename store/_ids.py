"""Ids and numbers from outside, checked against what the database can hold.

Every id and number column is an INTEGER: 32 bits on PostgreSQL, 64 on SQLite. A value
beyond that range names nothing, so a lookup answers `NotFound` for it, as for any other
id that does not exist, instead of handing it to the driver (SQLite's raises
OverflowError, PostgreSQL's a DataError), on both databases alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from principles import NotFound

_SQLITE_INTEGER = (-(2**63), 2**63 - 1)
_INTEGER = {"postgresql": (-(2**31), 2**31 - 1)}


def holdable(conn: Connection, value: int) -> bool:
    """Whether an INTEGER column of this database can hold `value`."""
    low, high = _INTEGER.get(conn.dialect.name, _SQLITE_INTEGER)
    return low <= value <= high


def require(conn: Connection, kind: str, value: int, key: object = None) -> None:
    """`NotFound(kind, key or value)` when no row can have `value` as its id or number."""
    if not holdable(conn, value):
        raise NotFound(kind, value if key is None else key)


def holdable_only(conn: Connection, values: Iterable[int]) -> list[int]:
    """The values that some row could have (the rest can match nothing)."""
    return [v for v in values if holdable(conn, v)]
