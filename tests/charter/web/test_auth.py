"""Sign-in, sessions, CSRF, API tokens and login rate limiting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from charter.web import LoginLimiter, create_app
from store import Store
from tests.charter.web.conftest import PASSWORDS, SECRET, Client, propose, signed_in

PAGES = ["/", "/amendments", "/amendments/1", "/principles", "/principles/clarity"]
PAGES += ["/constitution", "/audit"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_sign_in_without_a_session(
    app: FastAPI, web_store: Store, path: str
) -> None:
    propose(web_store)
    response = TestClient(app, follow_redirects=False).get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=%2F")


@pytest.mark.parametrize("action", ["approve", "reject", "edit", "comment", "rebase", "apply"])
def test_actions_without_a_session_are_401(app: FastAPI, web_store: Store, action: str) -> None:
    aid = propose(web_store)
    response = TestClient(app).post(f"/amendments/{aid}/{action}", data={"reason": "x"})
    assert response.status_code == 401
    assert web_store.amendment(aid).reviews == ()


def test_json_clients_without_credentials_get_401(app: FastAPI) -> None:
    response = TestClient(app).get("/amendments", headers={"accept": "application/json"})
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    bad = TestClient(app).get("/amendments", headers={"authorization": "Bearer chr_nope"})
    assert bad.status_code == 401


def test_sign_in_sets_a_safe_session_cookie(app: FastAPI) -> None:
    client = Client(app)
    response = client.login("alice")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("charter_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    page = client.get("/")
    assert page.status_code == 200 and "Signed in as" in page.text and "alice" in page.text


def test_secure_cookies_when_asked(web_store: Store) -> None:
    app = create_app(web_store, secret=SECRET, secure_cookies=True)
    response = Client(app).login("alice")
    assert any("Secure" in c for c in response.headers.get_list("set-cookie"))


def test_wrong_password_unknown_user_and_agent_cannot_sign_in(app: FastAPI) -> None:
    for name, password in [
        ("alice", "wrong-password"),
        ("nobody", "whatever-pass"),
        ("charter-agent", ""),
    ]:
        response = Client(app).login(name, password)
        assert response.status_code == 401
        assert "Wrong user name or password" in response.text
        assert "charter_session" not in response.headers.get("set-cookie", "")


def test_sign_in_form_needs_its_csrf_token(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    client.get("/login")
    response = client.post(
        "/login", data={"username": "alice", "password": PASSWORDS["alice"], "csrf_token": "x"}
    )
    assert response.status_code == 403
    assert "charter_session" not in response.headers.get("set-cookie", "")


def test_next_is_followed_only_within_the_site(app: FastAPI) -> None:
    for target, expected in [("/amendments", "/amendments"), ("//evil.example", "/")]:
        client = TestClient(app, follow_redirects=False)
        page = client.get("/login", params={"next": target})
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        response = client.post(
            "/login",
            data={
                "username": "bob",
                "password": PASSWORDS["bob"],
                "csrf_token": token.group(1),
                "next": target,
            },
        )
        assert response.headers["location"] == expected


def test_tampered_or_unknown_session_cookies_are_ignored(app: FastAPI) -> None:
    value = signed_in(app, "alice").http.cookies["charter_session"]

    def status(target: FastAPI, cookie: str) -> int:
        client = TestClient(target, follow_redirects=False)
        return client.get("/", headers={"cookie": f"charter_session={cookie}"}).status_code

    assert status(app, value) == 200
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    assert status(app, tampered) == 303
    assert status(app, "not-a-session") == 303


def test_login_is_rate_limited(web_store: Store) -> None:
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    limiter = LoginLimiter(
        web_store, per_user=3, per_address=100, window=60.0, clock=lambda: now[0]
    )
    app = create_app(web_store, secret=SECRET, limiter=limiter)
    for _ in range(3):
        assert Client(app).login("alice", "wrong-password").status_code == 401
    blocked = Client(app).login("alice")  # even the right password waits
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in blocked.text
    assert Client(app).login("bob").status_code == 303  # other users are unaffected
    now[0] += timedelta(seconds=61)
    assert Client(app).login("alice").status_code == 303


def test_login_is_rate_limited_per_address(web_store: Store) -> None:
    limiter = LoginLimiter(web_store, per_user=100, per_address=4)
    app = create_app(web_store, secret=SECRET, limiter=limiter)
    for name in ["a1", "a2", "a3", "a4"]:
        assert Client(app).login(name, "whatever-pass").status_code == 401
    assert Client(app).login("alice").status_code == 429


def test_sign_out_needs_csrf_and_ends_the_session(app: FastAPI) -> None:
    client = signed_in(app, "alice")
    assert client.http.post("/logout").status_code == 403
    response = client.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.http.get("/").status_code == 303


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_state_changes_need_the_sessions_csrf_token(
    app: FastAPI, web_store: Store, token: str | None
) -> None:
    aid = propose(web_store)
    client = signed_in(app, "alice")
    data = {"seen_edit": "0"} if token is None else {"seen_edit": "0", "csrf_token": token}
    for action in ("approve", "comment", "edit", "rebase"):
        response = client.http.post(f"/amendments/{aid}/{action}", data={**data, "comment": "hi"})
        assert response.status_code == 403, action
        assert "CSRF" in response.text
    assert web_store.amendment(aid).reviews == ()
    assert web_store.amendment(aid).status == "proposed"


def test_another_sessions_csrf_token_is_refused(app: FastAPI, web_store: Store) -> None:
    aid = propose(web_store)
    alice, bob = signed_in(app, "alice"), signed_in(app, "bob")
    response = bob.http.post(
        f"/amendments/{aid}/approve", data={"csrf_token": alice.csrf, "seen_edit": "0"}
    )
    assert response.status_code == 403
    assert web_store.amendment(aid).status == "proposed"


def test_csrf_header_works_for_htmx_requests(app: FastAPI, web_store: Store) -> None:
    aid = propose(web_store)
    client = signed_in(app, "alice")
    response = client.http.post(
        f"/amendments/{aid}/comment",
        data={"comment": "looks right"},
        headers={"X-CSRF-Token": client.csrf, "HX-Request": "true"},
    )
    assert response.status_code == 200 and "looks right" in response.text
    assert web_store.amendment(aid).reviews[0].comment == "looks right"


def test_api_tokens_authenticate_scripts(app: FastAPI, web_store: Store) -> None:
    aid = propose(web_store)
    token = web_store.issue_token("bob", label="script")
    headers = {"authorization": f"Bearer {token}"}
    client = TestClient(app)
    listed = client.get("/amendments", headers=headers)
    assert listed.status_code == 200 and listed.json()[0]["amendment"]["id"] == aid
    done = client.post(f"/amendments/{aid}/approve", headers=headers, data={"seen_edit": "0"})
    assert done.status_code == 200
    assert done.json() == {"id": aid, "status": "applied", "edit": 0, "approvals": 1, "revision": 2}
    web_store.revoke_access("bob")
    assert client.get("/amendments", headers=headers).status_code == 401


def test_security_headers_on_every_page(alice: Client) -> None:
    for path in ("/", "/login", "/audit"):
        response = alice.http.get(path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
