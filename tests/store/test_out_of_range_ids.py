"""An id or number that no INTEGER column can hold is simply not found, on both databases."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from principles import NotFound
from store import Store
from tests.conftest import ALICE, BOB

# Beyond PostgreSQL's INTEGER, beyond SQLite's; below zero, below SQLite's.
OUT_OF_RANGE = [2**31, 2**63, -1, -(2**63) - 1]


def lookups(store: Store, n: int) -> dict[str, Callable[[], object]]:
    return {
        "amendment": lambda: store.amendment(n),
        "review state": lambda: store.review_state(n),
        "approve": lambda: store.decide(n, BOB, "approve").amendment,
        "decide": lambda: store.decide(n, BOB, "reject", "no"),
        "apply": lambda: store.apply(n, BOB),
        "revision": lambda: store.revision(n),
        "revision ref": lambda: store.revision(str(n)) if n >= 0 else store.revision(n),
        "constitution at": lambda: store.constitution(at=n),
        "principle version": lambda: store.principle("clarity", n),
        "revert": lambda: store.revert(n, ALICE),
        "set label": lambda: store.set_label("production", n, ALICE),
        "run": lambda: store.run(n),
        "resume run": lambda: store.resume_run(n, ALICE),
        "calibration": lambda: store.calibration(n),
        "label critique": lambda: store.label_critique(n, 1, ALICE),
    }


def test_ids_no_column_can_hold_are_not_found(store: Store) -> None:
    before = len(store.audit_log(limit=None))
    for n in OUT_OF_RANGE:
        for lookup in lookups(store, n).values():  # a failure's traceback names the lambda
            with pytest.raises(NotFound, match="not found"):
                lookup()
    assert len(store.audit_log(limit=None)) == before


def test_critiques_by_id_leaves_out_ids_no_column_can_hold(store: Store) -> None:
    assert store.critiques_by_id(OUT_OF_RANGE) == {}
