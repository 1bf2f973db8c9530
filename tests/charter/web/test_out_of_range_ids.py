"""Ids no database column can hold are 404s like any unknown id (never a 500 and a traceback),
on SQLite and on PostgreSQL, and nothing is written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from charter.web import create_app
from principles import default_seed
from store import Store
from tests.charter.web.conftest import PASSWORDS, SECRET, propose, signed_in

# Beyond PostgreSQL's INTEGER, beyond SQLite's; below zero, below SQLite's.
OUT_OF_RANGE = [2**31, 2**63, -1, -(2**63) - 1]


@pytest.fixture
def any_store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    store.init(default_seed())
    store.add_user("alice", roles=("reviewer",), password=PASSWORDS["alice"])
    yield store
    store.close()


@pytest.fixture
def any_app(any_store: Store) -> FastAPI:
    return create_app(any_store, secret=SECRET)


def test_out_of_range_ids_are_404_on_every_route(any_app: FastAPI, any_store: Store) -> None:
    propose(any_store)
    alice = signed_in(any_app, "alice")
    before = len(any_store.audit_log(limit=None))
    for n in OUT_OF_RANGE:
        for path in (f"/amendments/{n}", f"/constitution?at={n}"):
            response = alice.get(path)
            assert response.status_code == 404, (path, response.text[:200])
            assert "not found" in response.text
        as_json = alice.get(f"/amendments/{n}", headers={"accept": "application/json"})
        assert as_json.status_code == 404
        for action in ("approve", "reject", "comment", "edit", "rebase", "apply"):
            form = {"seen_edit": "0", "comment": "x", "reason": "x", "text": "x"}
            response = alice.post(f"/amendments/{n}/{action}", form)
            assert response.status_code == 404, (n, action, response.text[:200])
        response = alice.post(f"/amendments/1/critiques/{n}/label", {"judgment": "right"})
        assert response.status_code in (400, 404), response.text[:200]
        response = alice.post(f"/amendments/{n}/critiques/1/label", {"judgment": "right"})
        assert response.status_code == 404, response.text[:200]
    assert len(any_store.audit_log(limit=None)) == before
