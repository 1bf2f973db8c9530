"""End to end in real headless Chromium: sign in, review, approve, find the result.

The server is the real app under uvicorn on a free loopback port, in a thread. The browser
is Debian's /usr/bin/chromium driven by Playwright; the test fails (it does not skip) when
that browser is missing. Screenshots land in test-artifacts/ (gitignored).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.web import create_app
from store import Store
from tests.charter.web.conftest import PASSWORDS, SECRET, add_people, probed, propose

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Store, int]]:
    import uvicorn

    store = Store(f"sqlite:///{tmp_path}/browser.db")
    from principles import default_seed

    store.init(default_seed())
    add_people(store)
    aid = propose(store)
    port = free_port()
    config = uvicorn.Config(
        create_app(store, secret=SECRET), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store, aid
    srv.should_exit = True
    thread.join(10)
    store.close()


@pytest.mark.slow
def test_review_in_a_real_browser(server: tuple[str, Store, int]) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install chromium (apt-get install chromium)")
    from playwright.sync_api import ConsoleMessage, expect, sync_playwright

    base, store, aid = server
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                problems.append(f"{page.url}: {message.text} @ {message.location}")

        page.on("console", on_console)
        page.on("pageerror", lambda e: problems.append(str(e)))

        # Sign in with the keyboard alone: the user name field has focus on arrival.
        page.goto(base + "/amendments")
        expect(page).to_have_url(f"{base}/login?next=%2Famendments")
        expect(page.get_by_label("User name")).to_be_focused()
        page.keyboard.type("alice")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORDS["alice"])
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{base}/amendments")

        # The queue lists the pending amendment.
        row = page.get_by_role("link", name="revise clarity")
        expect(row).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "queue.png"), full_page=True)

        # The amendment page: side-by-side diff with word highlighting, evidence, gate.
        row.click()
        expect(page).to_have_url(f"{base}/amendments/{aid}")
        diff = page.locator("table.diff")
        expect(diff).to_be_visible()
        expect(diff.locator("del").first).to_contain_text("language, structure longer answers")
        expect(diff.locator("ins").first).to_have_text("words.")
        expect(page.get_by_text("critique:12")).to_be_visible()
        expect(page.get_by_text("0.612 → 0.734")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "amendment.png"), full_page=True)

        # A comment goes through HTMX (CSRF header, no reload) and shows up in place.
        page.get_by_label("Add a comment").fill("Reads well.")
        page.get_by_role("button", name="Comment", exact=True).click()
        expect(page.locator("#reviews")).to_contain_text("Reads well.")
        expect(page).to_have_url(f"{base}/amendments/{aid}")

        # Approve with the keyboard: type the comment, Tab to the button, Enter.
        page.get_by_label("Comment on your approval (optional)").focus()
        page.keyboard.type("Clearer and shorter.")
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Approve and apply")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{base}/amendments/{aid}?done=approved")
        expect(page.get_by_role("status").filter(has_text="Approved and applied")).to_be_visible()

        # The new head revision and the audit event are there.
        page.get_by_role("link", name="revision 2").first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("The constitution at revision 2")
        expect(page.locator("#p-clarity + p")).to_contain_text("Keep answers short.")
        page.get_by_role("link", name="Audit log").click()
        expect(page.get_by_text("Verified: all")).to_be_visible()
        approve = page.locator("tr", has_text="review.approve")
        expect(approve).to_contain_text("human:alice")
        expect(approve).to_contain_text(f"amendment:{aid}")
        expect(page.locator("tr", has_text="amendment.applied")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)

        # The principle page's version picker swaps the diff in place (HTMX).
        page.goto(f"{base}/principles/clarity")
        page.get_by_label("From version").select_option("2")
        expect(page.locator("#diff")).to_contain_text("The same version on both sides.")
        page.screenshot(path=str(ARTIFACTS / "principle.png"), full_page=True)
        page.get_by_role("link", name="Dashboard").click()
        expect(page.get_by_role("heading", name="Recent changes")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

        # The bias probe page: a chart per attribute, the planted gap flagged.
        run = probed(store, revision=2)
        page.get_by_role("link", name="Bias probes").click()
        expect(page.get_by_role("heading", name=f"Run #{run}: revision 2")).to_be_visible()
        expect(page.get_by_role("img", name="religion: gaps between groups")).to_be_visible()
        expect(page.locator("svg.chart")).to_have_count(7)
        expect(page.locator("rect.bar.flagged").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "probes.png"), full_page=True)
        browser.close()

    assert store.constitution().revision == 2
    assert store.amendment(aid).status == "applied"
    assert not problems, problems  # no script errors, no content-security-policy violations
    for name in ("queue.png", "amendment.png", "probes.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
