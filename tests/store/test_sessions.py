"""Sign-in sessions and failed sign-ins in the store, on SQLite and PostgreSQL.

Covers: a session id is stored only as its hash; a session counts until it expires or
ends, and a new password, a revocation or disabling its user ends it (audited, in the same
transaction); a disabled user signs in by no means; the lookup is one indexed query;
failed sign-ins are shared by every Store on one database.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from principles import InvalidInput, utcnow
from store import Store
from tests.conftest import CAROL

PASSWORD = "correct horse battery"
HOUR = timedelta(hours=1)


@pytest.fixture
def people(store: Store) -> Store:
    store.add_user("alice", roles=("reviewer",), password=PASSWORD)
    store.add_user("bob", roles=("reviewer",), password=PASSWORD)
    store.add_user("charter-agent", kind="agent")
    return store


def test_a_session_id_is_stored_only_as_its_hash(people: Store) -> None:
    session = people.start_session("alice", HOUR)
    assert len(session.id) >= 43 and session.user.name == "alice"
    with people.engine.connect() as conn:
        rows = [tuple(map(str, r)) for r in conn.execute(sa.text("SELECT * FROM sessions"))]
    assert len(rows) == 1 and not any(session.id in value for value in rows[0])
    event = people.audit_log()[-1]
    assert (event.actor, event.action, event.subject) == (
        "human:alice",
        "session.start",
        "user:alice",
    )
    assert session.id not in str(event.payload)


def test_a_session_counts_until_it_expires_or_ends(people: Store) -> None:
    session = people.start_session("alice", HOUR)
    found = people.session_user(session.id)
    assert found is not None and found.name == "alice"
    assert people.session_user(session.id, now=utcnow() + 2 * HOUR) is None
    assert people.session_user(session.id + "x") is None and people.session_user("") is None
    assert people.end_session(session.id) is True
    assert people.session_user(session.id) is None
    assert people.end_session(session.id) is False  # ending twice changes nothing
    assert [e.action for e in people.audit_log()][-2:] == ["session.start", "session.end"]


@pytest.mark.parametrize("change", ["user.password", "user.token.revoke", "user.disable"])
def test_changes_to_a_user_end_all_their_sessions_and_only_theirs(
    people: Store, change: str
) -> None:
    mine = [people.start_session("alice", HOUR) for _ in range(2)]
    theirs = people.start_session("bob", HOUR)
    if change == "user.password":
        people.set_password("alice", "a-brand-new-password", CAROL)
    elif change == "user.token.revoke":
        assert people.revoke_access("alice", CAROL).sessions == 2
    else:
        assert people.set_disabled("alice", True, CAROL).disabled
    assert [people.session_user(s.id) for s in mine] == [None, None]
    assert people.session_user(theirs.id) is not None
    event = people.audit_log()[-1]
    assert (event.actor, event.action, event.payload["sessions"]) == ("human:carol", change, 2)


def test_a_disabled_user_signs_in_by_no_means_until_enabled(people: Store) -> None:
    token = people.issue_token("alice", CAROL)
    people.set_disabled("alice", True, CAROL)
    assert people.user("alice").disabled
    assert people.authenticate("alice", PASSWORD) is None
    assert people.token_access(token) is None
    with pytest.raises(InvalidInput, match="may not sign in"):
        people.start_session("alice", HOUR)
    with pytest.raises(InvalidInput, match="already disabled"):
        people.set_disabled("alice", True, CAROL)
    enabled = people.set_disabled("alice", False, CAROL)
    assert not enabled.disabled and enabled.disabled_at is None
    assert people.authenticate("alice", PASSWORD) is not None
    assert people.token_access(token) is not None
    assert [e.action for e in people.audit_log()][-2:] == ["user.disable", "user.enable"]


def test_agents_and_unknown_users_get_no_session(people: Store) -> None:
    for name in ("charter-agent", "nobody"):
        with pytest.raises(InvalidInput, match="may not sign in"):
            people.start_session(name, HOUR)


def test_finding_a_sessions_user_is_one_indexed_query(people: Store) -> None:
    session = people.start_session("alice", HOUR)
    statements: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(people.engine, "before_cursor_execute", seen)
    try:
        assert people.session_user(session.id) is not None
    finally:
        sa.event.remove(people.engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    if people.dialect == "sqlite":
        with people.engine.connect() as conn:
            plan = " ".join(
                str(r[-1])
                for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statements[0], ("d", utcnow().isoformat(), "human")
                )
            )
        assert "sessions USING INDEX" in plan and "SCAN sessions" not in plan


def test_failed_sign_ins_are_shared_by_every_store_on_one_database(people: Store) -> None:
    now = utcnow()
    keys = ("user:alice", "ip:10.0.0.1")
    with Store(people.url) as other:
        people.record_login_failure(keys, now - 2 * HOUR, now - 3 * HOUR)
        other.record_login_failure(keys, now, now - HOUR)  # forgets the old failure
        people.record_login_failure(keys[:1], now, now - HOUR)
        seen = other.login_failures(keys, now - HOUR)
        assert seen == {"user:alice": [now, now], "ip:10.0.0.1": [now]}
        other.clear_login_failures("user:alice")
        assert people.login_failures(keys, now - HOUR) == {"user:alice": [], "ip:10.0.0.1": [now]}
        with people.engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM login_failures")) == 1
