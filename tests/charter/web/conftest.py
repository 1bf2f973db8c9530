"""Fixtures for the review web UI: a store with users, the app, and signed-in clients."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from charter.web import create_app
from principles import Actor, AmendmentDraft, Evaluation, default_seed
from store import Store
from tests.conftest import AGENT, ALICE

SECRET = "test-secret-for-charter-web-0123456789"
PASSWORDS = {
    "alice": "alice-password-1",
    "bob": "bob-password-22",
    "carol": "carol-password-333",
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_people(store: Store) -> None:
    store.add_user("alice", roles=("reviewer",), password=PASSWORDS["alice"])
    store.add_user("bob", roles=("reviewer",), password=PASSWORDS["bob"])
    store.add_user("carol", roles=("admin",), password=PASSWORDS["carol"])
    store.add_user(AGENT.name, kind="agent")


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default constitution and its people, made once (argon2 hashing is slow on purpose)."""
    path = tmp_path_factory.mktemp("template") / "web.db"
    with Store(str(path)) as store:
        store.init(default_seed())
        add_people(store)
    assert (
        not path.with_name("web.db-wal").exists()
        or path.with_name("web.db-wal").stat().st_size == 0
    )
    return path


@pytest.fixture
def web_store(tmp_path: Path, template_db: Path) -> Iterator[Store]:
    shutil.copyfile(template_db, tmp_path / "web.db")
    store = Store(f"sqlite:///{tmp_path}/web.db")
    yield store
    store.close()


@pytest.fixture
def app(web_store: Store) -> FastAPI:
    return create_app(web_store, secret=SECRET)


def propose(
    store: Store,
    pid: str = "clarity",
    text: str = "Use plain words.\nKeep answers short.",
    proposer: Actor = AGENT,
    evaluate: bool = True,
) -> int:
    """A pending revision with evidence and gate figures; returns its id."""
    a = store.propose(
        AmendmentDraft(
            op="revise",
            principle_id=pid,
            text=text,
            rationale="Critiques found the answers long-winded.",
            evidence=("critique:12", "output:7", "note-1"),
        ),
        proposer,
    )
    if evaluate:
        store.record_evaluation(
            a.id,
            Evaluation(
                before=0.612,
                after=0.734,
                passed=True,
                per_principle_before={pid: 0.5, "honesty": 0.9},
                per_principle_after={pid: 0.75, "honesty": 0.9},
            ),
            AGENT,
        )
    return a.id


class Client:
    """A TestClient that signs in and sends the page's CSRF token with its forms."""

    def __init__(self, app: FastAPI) -> None:
        self.http = TestClient(app, follow_redirects=False)
        self.csrf = ""

    def login(self, name: str, password: str | None = None) -> Response:
        page = self.http.get("/login")
        token = _CSRF.search(page.text)
        assert token, page.text
        return self.http.post(
            "/login",
            data={
                "username": name,
                "password": PASSWORDS.get(name, "") if password is None else password,
                "csrf_token": token.group(1),
                "next": "/",
            },
        )

    def get(self, path: str, **kw: Any) -> Response:
        response = self.http.get(path, **kw)
        found = _CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Response:
        if not self.csrf:
            self.get("/")
        return self.http.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kw)


def signed_in(app: FastAPI, name: str) -> Client:
    client = Client(app)
    response = client.login(name)
    assert response.status_code == 303, response.text
    client.get("/")
    return client


@pytest.fixture
def alice(app: FastAPI) -> Client:
    return signed_in(app, "alice")


@pytest.fixture
def bob(app: FastAPI) -> Client:
    return signed_in(app, "bob")


@pytest.fixture
def agent_token(web_store: Store) -> str:
    return web_store.issue_token(AGENT.name, label="tests")


def probed(store: Store, revision: int = 1) -> int:
    """A stored bias probe run with a planted refusal of one group (scripted, no critic);
    returns its id."""
    from agent._bias import probe
    from agent._probes import builtin_suite
    from principles import NewProbeRun
    from tests.agent.test_bias import backend

    report = probe(backend(refuse="Muslim"), [], builtin_suite(), limit=20)
    new = NewProbeRun(
        constitution="default",
        revision=revision,
        model="scripted:",
        suite="builtin",
        templates=report.templates,
        variants=report.variants,
        flagged=sum(g.significant for g in report.gaps),
        report=report.as_json(),
    )
    return store.record_probe_run(new, ALICE).id
