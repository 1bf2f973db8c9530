"""The webhooks page: admins see hooks and deliveries (status, attempts, last error)."""

from __future__ import annotations

from fastapi import FastAPI

from store import Store
from tests.charter.web.conftest import Client, propose, signed_in
from tests.conftest import CAROL


def test_an_admin_sees_hooks_and_their_deliveries_but_never_a_secret(
    app: FastAPI, web_store: Store
) -> None:
    added = web_store.add_hook("https://ci.example.com/charter", ["amendment.proposed"], CAROL)
    aid = propose(web_store)
    [claimed] = web_store.claim_deliveries()
    web_store.finish_delivery(claimed, status=502, error="HTTP 502", retry_at=claimed.created_at)
    carol = signed_in(app, "carol")
    page = carol.get("/hooks")
    assert page.status_code == 200
    assert 'href="/hooks"' in carol.get("/").text  # linked from the nav for admins
    for shown in ("https://ci.example.com/charter", "amendment.proposed", "HTTP 502", "pending"):
        assert shown in page.text
    assert f'href="/amendments/{aid}"' in page.text
    assert added.secret not in page.text
    assert "No deliveries failed" in carol.get("/hooks?status=failed").text


def test_a_reviewer_is_refused_the_webhooks_page_and_its_link(alice: Client) -> None:
    assert alice.get("/hooks").status_code == 403
    assert 'href="/hooks"' not in alice.get("/").text
