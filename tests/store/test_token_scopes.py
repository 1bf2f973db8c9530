"""API token scopes in the store, on SQLite and PostgreSQL: a token is `full` unless issued
`read`, the scope is stored with the token and audited, and the lookup returns it.
Also: the revision a read resolves to, by number, label or time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from principles import InvalidInput, NotFound
from store import Store
from tests.conftest import CAROL


def test_a_token_is_full_unless_issued_read_scoped(store: Store) -> None:
    store.add_user("app", kind="agent")
    full = store.issue_token("app", CAROL, "ci")
    read = store.issue_token("app", CAROL, "docs site", scope="read")
    found_full, found_read = store.token_access(full), store.token_access(read)
    assert found_full is not None and found_full.scope == "full"
    assert found_read is not None and found_read.scope == "read"
    assert found_read.user.name == "app"
    with store.engine.connect() as conn:
        scopes = sorted(conn.scalars(sa.text("SELECT scope FROM api_tokens")))
    assert scopes == ["full", "read"]
    issued = [e for e in store.audit_log() if e.action == "user.token.issue"]
    assert [e.payload["scope"] for e in issued] == ["full", "read"]


def test_a_revoked_or_unknown_token_has_no_access(store: Store) -> None:
    store.add_user("app", kind="agent")
    read = store.issue_token("app", CAROL, scope="read")
    assert store.token_access(read + "x") is None
    assert store.token_access("not-a-token") is None
    store.revoke_access("app", CAROL)
    assert store.token_access(read) is None


def test_an_unknown_scope_is_refused_before_anything_is_written(store: Store) -> None:
    store.add_user("app", kind="agent")
    before = len(store.audit_log())
    with pytest.raises(InvalidInput, match="scope"):
        store.issue_token("app", CAROL, scope="admin")  # type: ignore[arg-type]
    assert len(store.audit_log()) == before


def test_a_revision_resolves_by_number_label_or_time(store: Store) -> None:
    first = store.revision("head")
    store.set_label("production", 1, CAROL)
    assert store.revision("production").hash == first.hash
    assert store.revision(1).hash == first.hash
    assert store.revision(as_of=first.created_at + timedelta(seconds=1)).hash == first.hash
    with pytest.raises(NotFound):
        store.revision(as_of=first.created_at - timedelta(days=1))
    with pytest.raises(InvalidInput, match="timezone"):
        store.revision(as_of=first.created_at.replace(tzinfo=None))
