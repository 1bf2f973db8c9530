"""Labelling evidence critiques on the amendment page: right/wrong, CSRF, the agent refused."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from store import Store
from tests.charter.web.conftest import Client, signed_in
from tests.charter.web.test_accessibility import check
from tests.evidence import amendment_with_evidence


def with_evidence(store: Store) -> tuple[int, list[int]]:
    """An amendment whose evidence is a failing and an unclear critique (not the passing one)."""
    return amendment_with_evidence(
        store, prompt="Explain DNS.", answer="DNS is a map.", text="Be brief.", rationales=True
    )


def test_a_reviewer_labels_a_critique_and_sees_the_label(alice: Client, web_store: Store) -> None:
    aid, (clarity, privacy, _) = with_evidence(web_store)
    page = alice.get(f"/amendments/{aid}").text
    assert page.count("Not labelled yet.") == 2
    assert f'action="/amendments/{aid}/critiques/{clarity}/label"' in page
    response = alice.post(
        f"/amendments/{aid}/critiques/{clarity}/label", {"judgment": "wrong", "note": "clear"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/amendments/{aid}?done=labelled"
    page = alice.get(response.headers["location"]).text
    assert "Label recorded." in page and "human:alice: wrong" in page
    [label] = web_store.judge_labels()
    assert (label.critique_id, label.label, label.labeller.name, label.note) == (
        clarity,
        1.0,
        "alice",
        "clear",
    )
    last = web_store.audit_log()[-1]
    assert (last.actor, last.action, last.payload["amendment"]) == (
        "human:alice",
        "judge.label",
        aid,
    )
    assert "Follows" in page and "Violates" in page  # the unclear one asks for the verdict
    alice.post(f"/amendments/{aid}/critiques/{privacy}/label", {"judgment": "follows"})
    assert "human:alice: follows" in alice.get(f"/amendments/{aid}").text


def test_htmx_swaps_the_evidence_section(alice: Client, web_store: Store) -> None:
    aid, (clarity, *_) = with_evidence(web_store)
    alice.get(f"/amendments/{aid}")
    response = alice.http.post(
        f"/amendments/{aid}/critiques/{clarity}/label",
        data={"judgment": "right"},
        headers={"HX-Request": "true", "X-CSRF-Token": alice.csrf},
    )
    assert response.status_code == 200
    assert response.text.startswith('<section id="evidence"')
    assert "Label recorded." in response.text and "human:alice: right" in response.text
    refused = alice.http.post(
        f"/amendments/{aid}/critiques/{clarity}/label",
        data={"judgment": "maybe"},
        headers={"HX-Request": "true", "X-CSRF-Token": alice.csrf},
    )
    assert refused.status_code == 400 and refused.headers["HX-Retarget"] == "#flash"
    assert "unknown judgment" in refused.text


def test_labelling_without_the_csrf_token_is_refused(alice: Client, web_store: Store) -> None:
    aid, (clarity, *_) = with_evidence(web_store)
    path = f"/amendments/{aid}/critiques/{clarity}/label"
    assert alice.http.post(path, data={"judgment": "right"}).status_code == 403
    response = alice.http.post(path, data={"judgment": "right", "csrf_token": "forged"})
    assert response.status_code == 403 and "CSRF" in response.text
    assert web_store.judge_labels(superseded=True) == []


def test_the_agent_is_refused_and_audited(app: FastAPI, web_store: Store, agent_token: str) -> None:
    aid, (clarity, *_) = with_evidence(web_store)
    response = TestClient(app).post(
        f"/amendments/{aid}/critiques/{clarity}/label",
        headers={"authorization": f"Bearer {agent_token}"},
        data={"judgment": "right"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "policy"
    assert "only people label critiques" in response.json()["error"]
    last = web_store.audit_log()[-1]
    assert (last.actor, last.action, last.subject) == (
        "agent:charter-agent",
        "judge.refused",
        f"critique:{clarity}",
    )
    assert web_store.judge_labels(superseded=True) == []
    assert web_store.verify().ok


def test_a_critique_outside_the_evidence_is_refused(alice: Client, web_store: Store) -> None:
    aid, (_, unclear, honesty) = with_evidence(web_store)
    response = alice.post(f"/amendments/{aid}/critiques/{honesty}/label", {"judgment": "right"})
    assert response.status_code == 400
    assert f"critique {honesty} is not evidence of amendment {aid}" in response.text
    assert 'role="alert"' in response.text
    response = alice.post(f"/amendments/{aid}/critiques/{unclear}/label", {"judgment": "right"})
    assert response.status_code == 400 and "give the right verdict" in response.text


def test_a_script_with_a_token_labels_and_gets_json(app: FastAPI, web_store: Store) -> None:
    aid, (clarity, *_) = with_evidence(web_store)
    token = web_store.issue_token("bob", label="script")
    response = TestClient(app).post(
        f"/amendments/{aid}/critiques/{clarity}/label",
        headers={"authorization": f"Bearer {token}"},
        data={"judgment": "right"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": 1,
        "critique_id": clarity,
        "principle": "clarity",
        "label": 0,
        "labeller": "human:bob",
    }
    evidence = (
        TestClient(app)
        .get(f"/amendments/{aid}", headers={"authorization": f"Bearer {token}"})
        .json()["evidence"]
    )
    assert evidence[0]["labels"][0]["said"] == "right"


def test_the_label_controls_are_accessible(app: FastAPI, web_store: Store) -> None:
    aid, _ = with_evidence(web_store)
    alice = signed_in(app, "alice")
    alice.post(f"/amendments/{aid}/critiques/1/label", {"judgment": "right"})
    page = check(alice.get(f"/amendments/{aid}").text, f"/amendments/{aid}")
    buttons = [c for c in page.controls if c.attrs.get("name") == "judgment"]
    assert [b.text.strip() for b in buttons] == ["Right", "Wrong", "Follows", "Violates"]
    assert all(b.attrs["aria-label"].startswith(b.text.strip()) for b in buttons)
