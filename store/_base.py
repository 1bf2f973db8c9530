"""What every part of `Store` shares: its engine, its policy and typed transactions.

`Store` and its mixins (runs, users, review, judging) all derive from `StoreBase`, so a
mixin's `self._read(fn)` returns what `fn` returns, checked by mypy, instead of `Any`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine

from principles import Policy
from store import _engine

T = TypeVar("T")


class StoreBase:
    """A database connection point: `_read` and `_write` run one transaction each."""

    url: str
    engine: Engine
    policy: Policy
    _writer_lock: _engine.WriterLock | None

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return _engine.read(self.engine, fn)

    def _write(self, fn: Callable[[Connection], T]) -> T:
        return _engine.write(self.engine, fn, lock=self._writer_lock)
