"""Every control has an accessible name, and every page works with the keyboard alone.

The HTML of each page is parsed (stdlib html.parser): each input, select, textarea and button
must have a label (a `<label for>`, a wrapping `<label>`, `aria-label`, `aria-labelledby`,
or, for a button, its text). Keyboard use: only native controls (links, buttons, form
fields, summary) are interactive, no positive tabindex reorders focus, ids are unique (so
labels point at one control), and a skip link leads to the main content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from store import Store
from tests.charter.web.conftest import Client, probed, propose, signed_in
from tests.conftest import ALICE, CAROL

CONTROLS = {"input", "select", "textarea", "button"}


@dataclass
class Control:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    wrapped: bool = False


@dataclass
class Page(HTMLParser):
    controls: list[Control] = field(default_factory=list)
    label_for: set[str] = field(default_factory=set)
    ids: list[str] = field(default_factory=list)
    tabindexes: list[int] = field(default_factory=list)
    clickables: list[str] = field(default_factory=list)
    h1: int = 0
    lang: str = ""
    skip_target: str = ""
    _labels: int = 0
    _open: list[Control] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if "tabindex" in a:
            self.tabindexes.append(int(a["tabindex"]))
        if any(k.startswith("on") for k in a) or a.get("role") == "button":
            self.clickables.append(tag)
        if tag == "html":
            self.lang = a.get("lang", "")
        if tag == "h1":
            self.h1 += 1
        if tag == "a" and "skip" in a.get("class", ""):
            self.skip_target = a.get("href", "")
        if tag == "label":
            self._labels += 1
            if "for" in a:
                self.label_for.add(a["for"])
        if tag in CONTROLS and a.get("type") != "hidden":
            control = Control(tag, a, wrapped=self._labels > 0)
            self.controls.append(control)
            if tag in ("button", "textarea", "select"):
                self._open.append(control)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._labels -= 1
        if self._open and self._open[-1].tag == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for control in self._open:
            control.text += data

    def unlabelled(self) -> list[str]:
        bad = []
        for c in self.controls:
            named = (
                c.wrapped
                or c.attrs.get("aria-label", "").strip()
                or c.attrs.get("aria-labelledby", "").strip()
                or c.attrs.get("id", "") in self.label_for
                or (c.tag == "button" and c.text.strip())
            )
            if not named:
                bad.append(f"<{c.tag} {c.attrs}>")
        return bad


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def check(html: str, path: str) -> Page:
    page = parse(html)
    assert page.lang == "en", path
    assert page.h1 == 1, f"{path}: {page.h1} h1 elements"
    assert page.skip_target == "#main" and "main" in page.ids, path
    assert not page.unlabelled(), f"{path}: controls without a label: {page.unlabelled()}"
    assert len(page.ids) == len(set(page.ids)), f"{path}: duplicate ids"
    assert all(t <= 0 for t in page.tabindexes), f"{path}: positive tabindex"
    assert not page.clickables, f"{path}: non-native clickable elements {page.clickables}"
    return page


@pytest.fixture
def pages(app: FastAPI, web_store: Store) -> tuple[Client, list[str]]:
    """A store in every state a page can show, and the paths that show them."""
    pending = propose(web_store)
    own = propose(web_store, pid="privacy", text="Private.", proposer=ALICE)
    applied = propose(web_store, pid="fairness", text="Be fair.")
    web_store.decide(applied, CAROL, "approve", apply=True)
    clean = propose(web_store, pid="autonomy", text="Respect choices.")
    approved = propose(web_store, pid="helpfulness", text="Help.")
    web_store.decide(approved, CAROL, "approve")
    web_store.decide(pending, CAROL, "comment", "a comment")
    client = signed_in(app, "alice")
    return client, [
        "/",
        "/amendments",
        "/amendments?status=all",
        f"/amendments/{pending}",
        f"/amendments/{own}",
        f"/amendments/{applied}",
        f"/amendments/{clean}",
        f"/amendments/{approved}",
        "/principles",
        "/principles/fairness",
        "/constitution",
        "/constitution?at=1",
        "/audit",
        "/probes",
        f"/probes?run={probed(web_store)}",
        "/amendments/999",
    ]


def test_every_control_on_every_page_is_labelled(pages: tuple[Client, list[str]]) -> None:
    client, paths = pages
    seen = 0
    for path in paths:
        response = client.get(path)
        assert response.status_code in (200, 404), path
        seen += len(check(response.text, path).controls)
    assert seen > 40  # the forms were really there


def test_the_amendment_page_offers_every_decision(pages: tuple[Client, list[str]]) -> None:
    client, paths = pages
    page = check(client.get(paths[3]).text, paths[3])
    buttons = {c.text.strip() for c in page.controls if c.tag == "button"}
    assert {"Approve and apply", "Reject", "Save edit", "Comment", "Sign out"} <= buttons
    fields = {c.attrs.get("name") for c in page.controls if c.tag != "button"}
    assert {"comment", "reason", "title", "text", "rationale"} <= fields


def test_the_sign_in_page_is_labelled(app: FastAPI) -> None:
    page = check(TestClient(app).get("/login").text, "/login")
    names = {c.attrs.get("name") for c in page.controls}
    assert names == {"username", "password", None}  # None: the submit button


def test_the_checker_catches_unlabelled_controls() -> None:
    bad = parse('<html lang="en"><input name="x"><button></button><select id="s"></select>')
    assert len(bad.unlabelled()) == 3
    good = parse(
        '<label for="x">X</label><input id="x"><label>Y <input></label>'
        '<button>Go</button><select aria-label="S"></select>'
    )
    assert good.unlabelled() == []
