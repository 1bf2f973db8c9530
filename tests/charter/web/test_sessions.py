"""Server-side sessions: sign-out and changes to a user end them, nothing else makes them,
their CSRF token is theirs alone, and failed sign-ins are counted in the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer

from charter.web import LoginLimiter, create_app
from store import Store
from tests.charter.web.conftest import PASSWORDS, SECRET, Client, propose, signed_in
from tests.conftest import CAROL


def status_with(app: FastAPI, cookie: str) -> int:
    """What a browser holding only this session cookie gets for the dashboard."""
    client = TestClient(app, follow_redirects=False)
    return client.get("/", headers={"cookie": f"charter_session={cookie}"}).status_code


def test_the_cookie_holds_a_random_id_that_the_database_keeps_only_hashed(
    app: FastAPI, web_store: Store
) -> None:
    first = signed_in(app, "alice").http.cookies["charter_session"]
    second = signed_in(app, "alice").http.cookies["charter_session"]
    assert first != second and "alice" not in first and len(first) >= 43
    with web_store.engine.connect() as conn:
        stored = [tuple(map(str, r)) for r in conn.execute(sa.text("SELECT * FROM sessions"))]
    assert len(stored) == 2
    assert not any(first in value or second in value for row in stored for value in row)
    started = [e for e in web_store.audit_log() if e.action == "session.start"]
    assert [(e.actor, e.subject) for e in started] == [("human:alice", "user:alice")] * 2


def test_the_old_cookie_is_refused_after_sign_out(app: FastAPI, web_store: Store) -> None:
    client = signed_in(app, "alice")
    cookie = client.http.cookies["charter_session"]
    assert status_with(app, cookie) == 200
    assert client.post("/logout").status_code == 303
    assert status_with(app, cookie) == 303
    assert web_store.audit_log()[-1].action == "session.end"


ENDINGS: dict[str, Callable[[Store], object]] = {
    "user.password": lambda s: s.set_password("alice", "a-brand-new-password", CAROL),
    "user.token.revoke": lambda s: s.revoke_access("alice", CAROL),
    "user.disable": lambda s: s.set_disabled("alice", True, CAROL),
}


@pytest.mark.parametrize("action", list(ENDINGS))
def test_the_old_cookie_is_refused_after_a_change_to_its_user(
    app: FastAPI, web_store: Store, action: str
) -> None:
    alice = signed_in(app, "alice").http.cookies["charter_session"]
    bob = signed_in(app, "bob").http.cookies["charter_session"]
    ENDINGS[action](web_store)
    assert status_with(app, alice) == 303
    assert status_with(app, bob) == 200  # other people stay signed in
    event = web_store.audit_log()[-1]
    assert (event.action, event.subject, event.payload["sessions"]) == (action, "user:alice", 1)


def test_a_disabled_user_cannot_sign_in_until_enabled(app: FastAPI, web_store: Store) -> None:
    web_store.set_disabled("alice", True, CAROL)
    response = Client(app).login("alice")
    assert response.status_code == 401
    assert "charter_session" not in response.headers.get("set-cookie", "")
    web_store.set_disabled("alice", False, CAROL)
    assert Client(app).login("alice").status_code == 303


@pytest.mark.parametrize("secret", [SECRET, "database"])
def test_a_cookie_forged_with_the_app_secret_is_refused(web_store: Store, secret: str) -> None:
    """The old signed cookie named its user: whoever held the secret could be anyone."""
    key = web_store.secret("web-session") if secret == "database" else secret
    app = create_app(web_store, secret=key)
    forged = URLSafeTimedSerializer(key, salt="charter-session").dumps({"u": "carol", "c": "x"})
    assert status_with(app, forged) == 303
    assert status_with(app, signed_in(app, "carol").http.cookies["charter_session"]) == 200


def test_a_csrf_token_from_another_session_of_the_same_user_is_refused(
    app: FastAPI, web_store: Store
) -> None:
    aid = propose(web_store)
    laptop, phone = signed_in(app, "alice"), signed_in(app, "alice")
    assert laptop.csrf and phone.csrf and laptop.csrf != phone.csrf
    response = phone.http.post(
        f"/amendments/{aid}/comment", data={"csrf_token": laptop.csrf, "comment": "hi"}
    )
    assert response.status_code == 403 and "CSRF" in response.text
    assert web_store.amendment(aid).reviews == ()
    assert phone.post(f"/amendments/{aid}/comment", {"comment": "hi"}).status_code == 303


def test_servers_on_one_database_share_sessions(web_store: Store) -> None:
    first = create_app(web_store, secret=SECRET)
    with Store(web_store.url) as other:
        second = create_app(other, secret="a-different-secret-0123456789")
        client = signed_in(first, "alice")
        assert status_with(second, client.http.cookies["charter_session"]) == 200
        client.post("/logout")
        assert status_with(second, client.http.cookies.get("charter_session", "") or "x") == 303


@pytest.fixture
def two_servers(store: Store) -> Iterator[tuple[FastAPI, FastAPI]]:
    """Two apps, each with its own Store, on one database (SQLite file or PostgreSQL)."""
    store.add_user("alice", roles=("reviewer",), password=PASSWORDS["alice"])
    with Store(store.url) as other:
        yield (
            create_app(store, secret=SECRET, limiter=LoginLimiter(store, per_user=3)),
            create_app(other, secret=SECRET, limiter=LoginLimiter(other, per_user=3)),
        )


def test_a_lockout_recorded_by_one_server_holds_on_another(
    two_servers: tuple[FastAPI, FastAPI],
) -> None:
    first, second = two_servers
    for _ in range(3):
        assert Client(first).login("alice", "wrong-password").status_code == 401
    blocked = Client(second).login("alice")
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert Client(first).login("alice").status_code == 429
