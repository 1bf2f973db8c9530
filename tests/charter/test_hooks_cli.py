"""`charter hooks`: add, list, remove, test, log and deliver, and one line for bad input."""

from __future__ import annotations

import io
import json

import pytest

from store import Store
from tests.charter.test_cli import CLI, cli
from tests.conftest import CAROL
from tests.receiver import receiver

__all__ = ["cli"]  # the CLI on a fresh database (tests/charter/test_cli.py)


def test_add_list_log_and_remove_a_hook(cli: CLI) -> None:
    code, out, err = cli("hooks", "add", "https://ci.example.com/x", "--events", "label.moved")
    assert code == 0 and "webhook 1 added" in err
    secret = out.strip()
    assert len(secret) >= 32  # printed once, on stdout
    [listed] = cli.json("hooks", "list")
    assert listed["url"] == "https://ci.example.com/x" and listed["events"] == ["label.moved"]
    assert secret not in cli.ok("hooks", "list") + str(listed)
    cli.ok("labels", "set", "active", "1")
    [delivery] = cli.json("hooks", "log")
    assert (delivery["event"], delivery["status"], delivery["attempts"]) == (
        "label.moved",
        "pending",
        0,
    )
    assert "label.moved" in cli.ok("hooks", "log", "--hook", "1", "--status", "pending")
    assert cli.json("hooks", "log", "--status", "delivered") == []
    code, _, err = cli("hooks", "remove", "1")
    assert code == 0 and "webhook 1 removed" in err
    assert cli.json("hooks", "list") == []
    assert cli.json("hooks", "log")[0]["status"] == "failed"


def test_a_secret_from_stdin_is_used_and_never_printed(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("my-own-secret-0123456789\n"))
    out = cli.ok(
        "hooks", "add", "http://127.0.0.1:9/", "--events", "run.finished", "--secret-from-stdin"
    )
    assert out == ""
    with Store(str(cli.db)) as store:
        [hook] = store.hooks()
        store.ping_hook(hook.id)
        [claimed] = store.claim_deliveries()
    assert claimed.secret == "my-own-secret-0123456789"  # the secret that signs deliveries


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("add", "ftp://example.com/", "--events", "label.moved"), 4, "http:// or https://"),
        (("add", "https://example.com/", "--events", "label.gone"), 4, "unknown event"),
        (("remove", "7"), 3, "webhook not found: 7"),
        (("test", "7"), 3, "webhook not found: 7"),
        (("log", "--status", "lost"), 4, "unknown status"),
    ],
)
def test_bad_input_is_one_line_and_its_exit_code(
    cli: CLI, args: tuple[str, ...], code: int, message: str
) -> None:
    got, out, err = cli("hooks", *args)
    assert (got, out) == (code, "")
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_only_an_admin_adds_hooks_once_people_are_registered(cli: CLI) -> None:
    cli.ok("users", "add", "alice", "--role", "reviewer", "--no-password")
    code, _, err = cli("hooks", "add", "https://example.com/", "--events", "label.moved")
    assert code == 5 and "only an admin" in err
    cli.ok("users", "add", "carol", "--role", "admin", "--no-password")
    assert (
        cli("hooks", "add", "https://example.com/", "--events", "label.moved", user="carol")[0] == 0
    )


def test_hooks_test_sends_a_ping_and_deliver_once_sends_what_is_due(cli: CLI) -> None:
    with receiver() as got:
        cli.ok("hooks", "add", got.url, "--events", "label.moved")
        code, _, err = cli("hooks", "test", "1")
        assert code == 0 and "accepted the ping (HTTP 204)" in err
        got.fail_next = 1
        code, _, err = cli("hooks", "test", "1")
        assert code == 1 and "did not accept the ping: HTTP 500" in err
        cli.ok("labels", "set", "active", "1")
        code, _, err = cli("hooks", "deliver", "--once")
        assert code == 0 and "1 delivery attempt(s) made" in err
        events = [r.headers["charter-event"] for r in got.accepted()]
    assert events == ["ping", "label.moved"]


def test_charter_run_delivers_its_events_while_and_after_it_runs(cli: CLI) -> None:
    with receiver() as got:
        cli.ok("hooks", "add", got.url, "--events", "run.finished")
        cli.ok(
            "run",
            "--model",
            "scripted:loop",
            "--iterations",
            "1",
            "--tasks-limit",
            "12",
            "--train-per-iteration",
            "3",
            "--heldout",
            "6",
        )
        [finished] = got.accepted()  # sent by the run's own dispatcher before it exited
    assert finished.headers["charter-event"] == "run.finished"
    assert json.loads(finished.body)["data"]["status"] == "completed"


def test_charter_serve_delivers_events_beside_the_web_ui(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    with receiver() as got:
        cli.ok("hooks", "add", got.url, "--events", "label.moved")

        def fake_run(*_: object, **__: object) -> None:  # the server's lifetime
            with Store(str(cli.db)) as store:
                store.set_label("active", 1, CAROL)
            got.wait_for(1)

        monkeypatch.setattr(uvicorn, "run", fake_run)
        cli.ok("serve", "--port", "8125")
        [moved] = got.accepted()
    assert moved.headers["charter-event"] == "label.moved"
