"""`charter.client.ConstitutionClient` against the real app under uvicorn on loopback: the TTL
cache spares requests, revalidation gets 304s, a server that is down leaves the application
with its last good copy (in memory, or on disk across a restart), and with no copy at all
the error says so. The server counts what it is asked."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from charter.client import ClientError, ConstitutionClient, ServerUnavailable
from charter.web import create_app
from principles import SYSTEM, Change, Principle, default_seed
from store import Store
from tests.charter.web.conftest import SECRET


class Counting:
    """An ASGI wrapper that records (path, status) of every HTTP answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, counted)


class Live:
    """The review app with its read API, served by uvicorn in a thread until `stop`."""

    def __init__(self, store: Store) -> None:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{port}"
        self.counting = Counting(create_app(store, secret=SECRET))
        config = uvicorn.Config(self.counting, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    @property
    def statuses(self) -> list[int]:
        return [status for path, status in self.counting.seen if path.startswith("/api/")]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Live, Store, str]]:
    store = Store(f"sqlite:///{tmp_path}/client.db")
    store.init(default_seed())
    store.add_user("app", kind="agent")
    token = store.issue_token("app", scope="read")
    live = Live(store)
    yield live, store, token
    live.stop()
    store.close()


def revise_clarity(store: Store) -> None:
    principle = Principle(id="clarity", title="Clarity", text="Say it plainly.")
    store.commit([Change(principle_id="clarity", principle=principle)], SYSTEM, "edit")


def test_within_the_ttl_the_client_asks_the_server_once(served: tuple[Live, Store, str]) -> None:
    live, store, token = served
    with ConstitutionClient(live.url, token, ttl=60) as client:
        first = client.get()
        again = client.get()
    assert first == again and first.revision == 1 and first.hash == store.revision("head").hash
    assert live.statuses == [200]


def test_after_the_ttl_the_client_revalidates_and_a_304_keeps_its_copy(
    served: tuple[Live, Store, str],
) -> None:
    live, store, token = served
    with ConstitutionClient(live.url, token, ttl=0) as client:
        first = client.get()
        assert client.get() == first
        revise_clarity(store)
        fresh = client.get()
    assert live.statuses == [200, 304, 200]
    assert fresh.revision == 2 and fresh.hash != first.hash
    assert "Say it plainly." in fresh.markdown()


def test_labels_revisions_and_markdown_come_through(served: tuple[Live, Store, str]) -> None:
    live, store, token = served
    store.set_label("production", 1, SYSTEM)
    revise_clarity(store)
    with ConstitutionClient(live.url, token) as client:
        production = client.get(label="production")
        second = client.get(revision=2)
    assert (production.revision, production.label, second.revision) == (1, "production", 2)
    url = f"{live.url}/api/v1/constitutions/default?label=production&format=markdown"
    listed = subprocess.run(
        ["curl", "-s", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed.stdout == production.markdown()


def test_a_server_that_is_down_leaves_the_last_good_copy(
    served: tuple[Live, Store, str], caplog: pytest.LogCaptureFixture
) -> None:
    live, _, token = served
    with ConstitutionClient(live.url, token, ttl=0, timeout=2) as client:
        good = client.get()
        live.stop()
        with caplog.at_level(logging.WARNING, logger="charter.client"):
            assert client.get() == good
    assert "last good copy" in caplog.text and "revision 1" in caplog.text


def test_the_disk_copy_outlives_the_process_that_fetched_it(
    served: tuple[Live, Store, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live, _, token = served
    cache = tmp_path / "cache"
    with ConstitutionClient(live.url, token, cache_dir=cache) as client:
        good = client.get(label=None)
    with ConstitutionClient(live.url, token, ttl=0, cache_dir=cache) as restarted:
        assert restarted.get() == good  # revalidated from the disk copy's ETag
    assert live.statuses == [200, 304]
    live.stop()
    with (
        ConstitutionClient(live.url, token, cache_dir=cache, timeout=2) as offline,
        caplog.at_level(logging.WARNING, logger="charter.client"),
    ):
        assert offline.get() == good
    assert "last good copy" in caplog.text


def test_with_no_copy_at_all_a_server_that_is_down_is_a_clear_error(
    served: tuple[Live, Store, str], tmp_path: Path
) -> None:
    live, _, token = served
    live.stop()
    with (
        ConstitutionClient(live.url, token, cache_dir=tmp_path / "empty", timeout=2) as client,
        pytest.raises(ServerUnavailable, match="no copy of constitution default"),
    ):
        client.get()


def test_refusals_are_errors_never_hidden_by_a_cached_copy(
    served: tuple[Live, Store, str],
) -> None:
    live, store, token = served
    with ConstitutionClient(live.url, token, ttl=0) as client:
        client.get()
        with pytest.raises(ClientError, match="one of"):
            client.get(label="production", revision=1)
        store.revoke_access("app")
        with pytest.raises(ClientError, match="401") as refused:
            client.get()
        assert refused.value.status == 401
    with (
        ConstitutionClient(live.url, "chr_wrong") as stranger,
        pytest.raises(ClientError, match="sign in first"),
    ):
        stranger.get("nowhere")


def test_the_client_imports_neither_the_web_app_nor_the_store() -> None:
    probe = (
        "import sys, charter.client\n"
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'store', 'charter.web', 'torch')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
