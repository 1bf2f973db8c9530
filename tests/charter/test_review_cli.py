"""`charter review`, `charter users` and `charter serve`, in process."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from charter.cli import main
from principles import AmendmentDraft, Evaluation
from store import Store
from tests.conftest import AGENT


class CLI:
    def __init__(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys

    def __call__(self, *args: str, user: str = "alice", stdin: str = "") -> tuple[int, str, str]:
        self.capsys.readouterr()
        argv, real_stdin = sys.argv, sys.stdin
        sys.argv = ["charter", "--db", str(self.db), "--as", user, *args]
        sys.stdin = io.StringIO(stdin)
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            sys.argv, sys.stdin = argv, real_stdin
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str, user: str = "alice", stdin: str = "") -> str:
        code, out, err = self(*args, user=user, stdin=stdin)
        assert code == 0, err
        return out + err


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    c = CLI(tmp_path / "charter.db", capsys)
    c.ok("init")
    return c


def agent_proposal(db: Path, pid: str = "clarity", text: str = "Use plain words.") -> int:
    with Store(str(db)) as store:
        a = store.propose(
            AmendmentDraft(
                op="revise",
                principle_id=pid,
                text=text,
                rationale="answers ran long",
                evidence=("critique:4", "output:2"),
            ),
            AGENT,
        )
        store.record_evaluation(
            a.id,
            Evaluation(
                before=0.5,
                after=0.625,
                passed=True,
                per_principle_before={pid: 0.25},
                per_principle_after={pid: 0.5},
            ),
            AGENT,
        )
        return a.id


def test_list_and_show(cli: CLI) -> None:
    aid = agent_proposal(cli.db)
    listed = cli.ok("review", "list")
    assert "revise clarity" in listed and "0.500->0.625" in listed
    shown = cli.ok("review", "show", str(aid))
    assert "amendment 1: revise clarity [proposed]" in shown
    assert "critique:4" in shown and "output:2" in shown
    assert "gate: 0.500 -> 0.625 (+0.125), passed" in shown and "+0.250" in shown
    assert "1 more approval(s) for a quorum of 1" in shown
    assert "+Use plain words." in shown and "--- clarity@1" in shown
    assert "\x1b[" not in shown  # no colour off a terminal
    data = json.loads(cli.ok("review", "show", str(aid), "--json"))
    assert data["rebase"]["state"] == "current" and data["missing_approvals"] == 1
    assert "+Use plain words." in data["diff"]
    assert [x["amendment"]["id"] for x in json.loads(cli.ok("review", "list", "--json"))] == [aid]
    assert cli("review", "list", "--status", "nope")[0] == 4


def test_show_reports_entrenched_and_stale(cli: CLI) -> None:
    honesty = agent_proposal(cli.db, "honesty", "Never lie.")
    assert "a human must approve" in cli.ok("review", "show", str(honesty))
    first = agent_proposal(cli.db, text="First.")
    second = agent_proposal(cli.db, text="Second.")
    cli.ok("review", "approve", str(first))
    assert "STALE" in cli.ok("review", "show", str(second))
    code, _, err = cli("review", "approve", str(second))
    assert code == 6 and "is stale" in err
    assert [
        x["amendment"]["id"]
        for x in json.loads(cli.ok("review", "list", "--status", "stale", "--json"))
    ] == [second]


def test_approve_applies_at_quorum(cli: CLI) -> None:
    aid = agent_proposal(cli.db)
    out = cli.ok("review", "approve", str(aid), "-m", "good")
    assert "approved and applied: revision 2" in out
    assert "Use plain words." in cli.ok("principles", "show", "clarity")
    other = agent_proposal(cli.db, "privacy", "Private.")
    assert "is approved (1 approval(s))" in cli.ok("review", "approve", str(other), "--no-apply")


def test_reject_and_comment(cli: CLI) -> None:
    aid = agent_proposal(cli.db)
    assert cli("review", "reject", str(aid))[0] == 4
    cli.ok("review", "comment", str(aid), "why so short?", user="bob")
    assert "is rejected" in cli.ok("review", "reject", str(aid), "--reason", "too terse")
    shown = cli.ok("review", "show", str(aid))
    assert "bob comment (edit 0): why so short?" in shown and "reject" in shown


def test_edit_with_text_file_and_editor(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aid = agent_proposal(cli.db)
    cli.ok("review", "edit", str(aid), "--text", "Plain words, please.", user="bob")
    code, _, err = cli("review", "approve", str(aid), user="bob")
    assert code == 5 and "proposed or edited" in err
    source = tmp_path / "text.md"
    source.write_text("From a file.\n")
    cli.ok("review", "edit", str(aid), "--file", str(source), user="carol")
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "Written in the editor.\\n" > "$1"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    cli.ok("review", "edit", str(aid), user="dave")
    with Store(str(cli.db)) as store:
        a = store.amendment(aid)
    assert a.draft.text == "Written in the editor." and a.edit == 3
    assert a.editors == ("human:bob", "human:carol", "human:dave")
    unchanged = tmp_path / "noop.sh"
    unchanged.write_text("#!/bin/sh\ntrue\n")
    unchanged.chmod(unchanged.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", str(unchanged))
    code, _, err = cli("review", "edit", str(aid), user="dave")
    assert code == 4 and "not changed" in err
    assert "approved and applied" in cli.ok("review", "approve", str(aid), user="erin")


def test_rebase(cli: CLI) -> None:
    mine = agent_proposal(cli.db)
    other = agent_proposal(cli.db, "privacy", "Private.")
    cli.ok("review", "approve", str(other))
    assert "rebases cleanly" in cli.ok("review", "show", str(mine))
    assert "rebased onto revision 2" in cli.ok("review", "rebase", str(mine))
    assert cli("review", "rebase", str(mine))[0] == 4


def test_users_and_the_agent_identity(cli: CLI) -> None:
    out = cli.ok(
        "users", "add", "rita", "--role", "reviewer", "--password-stdin", stdin="rita-password-1\n"
    )
    assert "human rita added as reviewer" in out
    code, stdout, err = cli("users", "add", "charter-agent", "--agent", user="rita")
    assert code == 0 and stdout.strip().startswith("chr_") and "shown once" in err
    users = json.loads(cli.ok("users", "list", "--json"))
    assert [(u["name"], u["kind"], u["roles"]) for u in users] == [
        ("charter-agent", "agent", []),
        ("rita", "human", ["reviewer"]),
    ]
    assert "argon2" not in json.dumps(users) and "rita-password-1" not in json.dumps(users)
    aid = agent_proposal(cli.db)
    code, _, err = cli("review", "approve", str(aid), user="charter-agent")
    assert code == 5 and "agents never approve" in err
    events = json.loads(cli.ok("audit", "log", "--json"))
    assert events[-1]["action"] == "review.refused" and events[-1]["actor"] == "agent:charter-agent"
    assert "user.create" in [e["action"] for e in events]
    token = cli("users", "token", "rita", "--label", "ci", user="rita")[1].strip()
    with Store(str(cli.db)) as store:
        found = store.token_access(token)
        assert found is not None and found.user.name == "rita"
    assert "1 token(s) of rita revoked" in cli.ok("users", "revoke", "rita", user="rita")
    cli.ok("users", "passwd", "rita", "--password-stdin", stdin="a-new-password\n", user="rita")
    with Store(str(cli.db)) as store:
        assert store.authenticate("rita", "a-new-password") is not None


def test_users_disable_signs_out_everywhere_until_enabled(cli: CLI) -> None:
    cli.ok("users", "add", "carol", "--role", "admin", "--no-password", user="carol")
    cli.ok(
        "users", "add", "rita", "--role", "reviewer", "--password-stdin",
        stdin="rita-password-1\n", user="carol",
    )  # fmt: skip
    with Store(str(cli.db)) as store:
        session = store.start_session("rita", timedelta(hours=1))
    assert "rita disabled" in cli.ok("users", "disable", "rita", user="carol")
    with Store(str(cli.db)) as store:
        assert store.session_user(session.id) is None
        assert store.authenticate("rita", "rita-password-1") is None
    listed = {u["name"]: u for u in json.loads(cli.ok("users", "list", "--json", user="carol"))}
    assert listed["rita"]["disabled_at"] and listed["carol"]["disabled_at"] is None
    code, out, err = cli("users", "disable", "rita", user="carol")
    assert (code, out, err.count("\n")) == (4, "", 1) and "already disabled" in err
    assert "rita enabled" in cli.ok("users", "enable", "rita", user="carol")
    with Store(str(cli.db)) as store:
        assert store.authenticate("rita", "rita-password-1") is not None
        store.start_session("rita", timedelta(hours=1))
    said = cli.ok("users", "revoke", "rita", user="carol")
    assert "0 token(s) of rita revoked, 1 session(s) ended" in said
    events = json.loads(cli.ok("audit", "log", "--json", user="carol"))
    assert [e["action"] for e in events][-4:] == [
        "user.disable",
        "user.enable",
        "session.start",
        "user.token.revoke",
    ]
    code, out, err = cli("users", "disable", "nobody", user="carol")
    assert (code, out, err.count("\n")) == (3, "", 1) and "user not found" in err


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["users", "add", "x"], "", 4, "give a role"),
        (["users", "add", "x", "--role", "owner", "--no-password"], "", 4, "unknown role"),
        (
            ["users", "add", "x", "--role", "reviewer", "--password-stdin"],
            "short\n",
            4,
            "too short",
        ),
        (["users", "add", "x", "--role", "reviewer", "--password-stdin"], "", 4, "no password"),
        (["users", "add", "x", "--role", "reviewer"], "", 4, "use --password-stdin"),
        (
            ["users", "passwd", "nobody", "--password-stdin"],
            "long-enough-pw\n",
            3,
            "user not found",
        ),
        (["review", "show", "9"], "", 3, "amendment not found"),
        (["review", "edit", "9", "--text", "x"], "", 3, "amendment not found"),
    ],
)
def test_user_errors_are_one_line(
    cli: CLI, args: list[str], stdin: str, code: int, message: str
) -> None:
    got, out, err = cli(*args, stdin=stdin)
    assert got == code, err
    assert message in err and err.count("\n") == 1 and out == ""


def test_serve_refuses_a_database_without_a_constitution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = CLI(tmp_path / "empty.db", capsys)("serve", "--port", "1")
    assert code == 3 and "charter init" in err


def test_serve_builds_the_app_with_a_stored_secret(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, str, int]] = []

    def fake_run(app: object, host: str, port: int, **_: object) -> None:
        calls.append((app, host, port))

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.delenv("CHARTER_SECRET", raising=False)
    out = cli.ok("serve", "--port", "8123")
    assert "http://127.0.0.1:8123/" in out and "no users yet" in out
    assert calls and calls[0][1:] == ("127.0.0.1", 8123)
    with Store(str(cli.db)) as store:
        secret = store.secret("web-session")
    cli.ok("serve", "--port", "8124")
    with Store(str(cli.db)) as store:
        assert store.secret("web-session") == secret
    monkeypatch.setenv("CHARTER_SECRET", "from-the-environment-0123456789")
    from charter.web import resolve_secret

    with Store(str(cli.db)) as store:
        assert resolve_secret(store) == "from-the-environment-0123456789"
    assert os.environ["CHARTER_SECRET"]


def gate_evaluation(tasks: int, lift: float) -> Evaluation:
    """What the gate stores for a candidate that lifts clarity by `lift` on `tasks` tasks."""
    from agent._gate import gate_details
    from agent._significance import Scored, compare, decide
    from principles import GateRule

    rule = GateRule()
    head = [Scored(f"t{i}", p, 0.5 + 0.01 * i, 0.04) for i in range(tasks) for p in ("a", "b")]
    cand = [Scored(s.task, s.principle, s.score + lift * (s.principle == "a"), 0.04) for s in head]
    comparison = compare(head, cand, rule=rule)
    decision = decide(comparison, set(), rule)
    return Evaluation(
        before=0.5,
        after=0.5 + lift / 2,
        passed=decision.outcome == "passed",
        outcome=decision.outcome,
        per_principle_before={"a": 0.5, "b": 0.5},
        per_principle_after={"a": 0.5 + lift, "b": 0.5},
        details=gate_details(comparison, decision),
    )


def test_show_gives_the_gate_outcome_effect_ci_p_and_warnings(cli: CLI) -> None:
    aid = agent_proposal(cli.db)
    with Store(str(cli.db)) as store:
        store.record_evaluation(aid, gate_evaluation(tasks=4, lift=0.2), AGENT)
    shown = cli.ok("review", "show", str(aid))
    assert "gate: 0.500 -> 0.600 (+0.100), inconclusive" in shown
    assert "effect +0.100, 95% CI [+0.0" in shown and "p = 0.125, n = 4 held-out tasks" in shown
    assert "warning: held-out set too small: with 4 task(s)" in shown
    assert "95% CI" in shown and "0.125" in shown  # per-principle columns
    data = json.loads(cli.ok("review", "show", str(aid), "--json"))
    evaluation = data["amendment"]["evaluation"]
    assert evaluation["outcome"] == "inconclusive" and evaluation["details"]["n"] == 4
