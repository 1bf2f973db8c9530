"""The read API for applications: /api/v1/constitutions, ETags and 304s, read-scoped tokens
(which fetch the constitution and are refused on every state-changing route), the errors
as one-line JSON, and the OpenAPI schema of the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from principles import SYSTEM, Change, Principle, parse_seed
from store import Store
from tests.charter.web.conftest import Client, propose

API = "/api/v1/constitutions"


@pytest.fixture
def read_token(web_store: Store) -> str:
    web_store.add_user("app", kind="agent")
    return web_store.issue_token("app", label="docs site", scope="read")


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **extra}


def revise_clarity(store: Store, text: str = "Say it plainly.") -> int:
    principle = Principle(id="clarity", title="Clarity", text=text)
    return store.commit(
        [Change(principle_id="clarity", principle=principle)], SYSTEM, "edit"
    ).number


def test_the_head_comes_as_json_with_the_revision_hash_as_etag(
    app: FastAPI, web_store: Store, read_token: str
) -> None:
    response = TestClient(app).get(f"{API}/default", headers=bearer(read_token))
    head = web_store.revision("head")
    assert response.status_code == 200
    assert response.headers["etag"] == f'"{head.hash}"'
    assert response.headers["cache-control"] == "private, max-age=0, must-revalidate"
    body = response.json()
    assert (body["name"], body["revision"], body["hash"], body["label"]) == (
        "default",
        1,
        head.hash,
        None,
    )
    stored = web_store.constitution()
    assert [p["id"] for p in body["principles"]] == [p.principle_id for p in stored.principles]
    first = body["principles"][0]
    assert set(first) == {"id", "title", "text", "entrenched", "version", "hash"}
    assert first["hash"] == stored.principles[0].hash and first["version"] == 1


def test_if_none_match_gets_304_until_a_new_revision_changes_the_etag(
    app: FastAPI, web_store: Store, read_token: str
) -> None:
    client = TestClient(app)
    etag = client.get(f"{API}/default", headers=bearer(read_token)).headers["etag"]
    again = client.get(f"{API}/default", headers=bearer(read_token, **{"if-none-match": etag}))
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    listed = bearer(read_token, **{"if-none-match": f'"other", W/{etag}'})
    assert client.get(f"{API}/default", headers=listed).status_code == 304
    revise_clarity(web_store)
    fresh = client.get(f"{API}/default", headers=bearer(read_token, **{"if-none-match": etag}))
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert fresh.json()["revision"] == 2


def test_a_label_a_revision_number_or_a_time_picks_the_revision(
    app: FastAPI, web_store: Store, read_token: str
) -> None:
    first = web_store.revision("head")
    web_store.set_label("production", 1, SYSTEM)
    revise_clarity(web_store)
    client = TestClient(app)

    def fetch(query: str) -> dict[str, object]:
        response = client.get(f"{API}/default?{query}", headers=bearer(read_token))
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    assert fetch("label=production")["revision"] == 1
    assert fetch("label=production")["label"] == "production"
    assert fetch("revision=2")["revision"] == 2
    when = (first.created_at + timedelta(microseconds=1)).isoformat()
    assert fetch(f"as_of={when.replace('+00:00', 'Z')}")["hash"] == first.hash
    assert fetch("")["revision"] == 2


def test_markdown_is_what_constitution_show_prints_with_its_own_etag(
    app: FastAPI, web_store: Store, read_token: str
) -> None:
    client = TestClient(app)
    by_query = client.get(f"{API}/default?format=markdown", headers=bearer(read_token))
    by_accept = client.get(f"{API}/default", headers=bearer(read_token, accept="text/markdown"))
    assert by_query.status_code == by_accept.status_code == 200
    assert by_query.text == by_accept.text
    assert by_query.headers["content-type"].startswith("text/markdown")
    head = web_store.revision("head")
    assert by_query.headers["etag"] == f'"{head.hash}-md"'
    seed = parse_seed(by_query.text, "md")
    assert [p.id for p in seed.principles] == [
        p.principle_id for p in web_store.constitution().principles
    ]
    assert by_query.text.startswith("---\nname: default\ndescription: revision 1\n---")
    json_etag = f'"{head.hash}"'
    crossed = client.get(
        f"{API}/default?format=markdown", headers=bearer(read_token, **{"if-none-match": json_etag})
    )
    assert crossed.status_code == 200


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("", 404, "constitution not found: nowhere"),
        ("label=nope", 404, "nope"),
        ("revision=99", 404, "99"),
        ("as_of=yesterday", 400, "bad time"),
        ("as_of=2026-01-01T00:00:00", 400, "timezone"),
        ("label=production&revision=1", 400, "one of"),
        ("format=pdf", 400, "format"),
        ("revision=two", 400, "revision"),
    ],
)
def test_bad_requests_get_one_line_json_errors(
    app: FastAPI, read_token: str, query: str, status: int, words: str
) -> None:
    name = "nowhere" if status == 404 and not query else "default"
    response = TestClient(app).get(f"{API}/{name}?{query}", headers=bearer(read_token))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert words in error and "\n" not in error


def test_without_a_token_the_api_answers_401_never_a_redirect(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    for path in (API, f"{API}/default", f"{API}/default/revisions"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"] and response.headers["www-authenticate"] == "Bearer"
    wrong = client.get(f"{API}/default", headers=bearer("chr_not-a-token"))
    assert wrong.status_code == 401


def test_listings_name_the_constitutions_and_their_revisions(
    app: FastAPI, web_store: Store, read_token: str
) -> None:
    web_store.set_label("production", 1, SYSTEM)
    revise_clarity(web_store)
    client = TestClient(app)
    listed = client.get(API, headers=bearer(read_token)).json()
    assert listed == [
        {
            "name": "default",
            "head": 2,
            "hash": web_store.revision("head").hash,
            "labels": {"production": 1},
        }
    ]
    revisions = client.get(f"{API}/default/revisions", headers=bearer(read_token)).json()
    assert [r["number"] for r in revisions] == [2, 1]
    assert revisions[0]["parent"] == 1 and revisions[0]["message"] == "edit"
    assert client.get(f"{API}/nowhere/revisions", headers=bearer(read_token)).status_code == 404


def test_a_person_signed_in_or_with_a_full_token_reads_too(
    app: FastAPI, web_store: Store, alice: Client
) -> None:
    assert alice.http.get(f"{API}/default").status_code == 200
    token = web_store.issue_token("bob")
    assert TestClient(app).get(f"{API}/default", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("approve", {"seen_edit": "0"}),
        ("reject", {"reason": "no"}),
        ("comment", {"comment": "hello"}),
        ("edit", {"text": "Other words."}),
        ("rebase", {}),
        ("apply", {}),
        ("critiques/1/label", {"judgment": "right"}),
    ],
)
def test_a_read_token_is_refused_on_every_state_changing_route(
    app: FastAPI, web_store: Store, action: str, form: dict[str, str]
) -> None:
    aid = propose(web_store)
    read = web_store.issue_token("bob", scope="read")
    response = TestClient(app).post(f"/amendments/{aid}/{action}", headers=bearer(read), data=form)
    assert response.status_code == 403
    assert "read-scoped token" in response.json()["error"]
    amendment = web_store.amendment(aid)
    assert amendment.status == "proposed" and not amendment.reviews


def test_a_read_token_cannot_approve_but_a_full_token_of_the_same_person_can(
    app: FastAPI, web_store: Store
) -> None:
    aid = propose(web_store)
    client = TestClient(app)
    read = web_store.issue_token("bob", scope="read")
    full = web_store.issue_token("bob")
    refused = client.post(
        f"/amendments/{aid}/approve", headers=bearer(read), data={"seen_edit": "0"}
    )
    assert refused.status_code == 403
    assert client.get("/amendments", headers=bearer(read)).status_code == 200
    done = client.post(f"/amendments/{aid}/approve", headers=bearer(full), data={"seen_edit": "0"})
    assert done.status_code == 200 and done.json()["status"] == "applied"
    assert client.post("/logout", headers=bearer(read)).status_code == 403


def test_the_openapi_schema_describes_the_read_api(app: FastAPI) -> None:
    response = TestClient(app).get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert set(schema["paths"]) == {
        "/api/v1/constitutions",
        "/api/v1/constitutions/{name}",
        "/api/v1/constitutions/{name}/revisions",
    }
    one = schema["paths"]["/api/v1/constitutions/{name}"]["get"]
    params = {p["name"] for p in one["parameters"]}
    assert {"name", "label", "revision", "as_of", "format", "if-none-match"} <= params
    assert {"200", "304", "400", "401", "404"} <= set(one["responses"])
    assert set(one["responses"]["200"]["content"]) == {"application/json", "text/markdown"}
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert one["security"] == [{"bearer": []}]
    assert "PublishedConstitution" in schema["components"]["schemas"]
    assert TestClient(app).get("/openapi.json").status_code == 404
