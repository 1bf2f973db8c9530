"""The CLI end to end, in process (fast) and as a real process (exit codes, imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from charter.cli import main


class CLI:
    def __init__(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys

    def __call__(self, *args: str, user: str = "alice") -> tuple[int, str, str]:
        self.capsys.readouterr()
        argv = sys.argv
        sys.argv = ["charter", "--db", str(self.db), "--as", user, *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            sys.argv = argv
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str, user: str = "alice") -> str:
        code, out, err = self(*args, user=user)
        assert code == 0, err
        return out

    def json(self, *args: str, user: str = "alice") -> object:
        return json.loads(self.ok(*args, "--json", user=user))


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    c = CLI(tmp_path / "charter.db", capsys)
    c.ok("init")
    return c


def test_init_and_list(cli: CLI) -> None:
    rows = cli.json("principles", "list")
    assert isinstance(rows, list) and len(rows) == 10
    assert {r["principle_id"] for r in rows} >= {"honesty", "privacy"}
    assert "honesty" in cli.ok("principles", "list")
    code, _, err = cli("init")
    assert code == 4 and "already exists" in err
    assert cli("init", "--if-missing")[0] == 0


def test_init_from_file_and_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text("name: mine\nprinciples:\n- {id: be-kind, title: Be kind, text: Be kind.}\n")
    cli = CLI(tmp_path / "x.db", capsys)
    cli.ok("init", "--from", str(good))
    assert [r["principle_id"] for r in cli.json("-c", "mine", "principles", "list")] == ["be-kind"]
    bad = tmp_path / "bad.md"
    bad.write_text("# Not A Slug: x\ntext\n")
    code, _, err = CLI(tmp_path / "y.db", capsys)("init", "--from", str(bad))
    assert code == 4 and err.count("\n") == 1 and "heading" in err
    code, _, err = CLI(tmp_path / "z.db", capsys)("init", "--from", str(tmp_path / "missing.md"))
    assert code == 4 and "no such constitution file" in err


def test_amendment_flow_and_history(cli: CLI) -> None:
    cli.ok("amend", "propose", "revise", "clarity", "--text", "Use plain words.", "-r", "shorter")
    code, _, err = cli("amend", "approve", "1")
    assert code == 5 and "may not approve" in err
    assert "1 approval" in cli("amend", "approve", "1", user="bob")[2]
    shown = cli.json("amend", "show", "1")
    assert isinstance(shown, dict) and "+Use plain words." in shown["diff"]
    cli.ok("amend", "apply", "1", user="bob")
    history = cli.json("principles", "history", "clarity")
    assert [v["number"] for v in history] == [1, 2]  # type: ignore[union-attr]
    assert "Use plain words." in cli.ok("principles", "show", "clarity")
    assert "Be clear" in cli.ok("principles", "show", "clarity@1")
    diff = cli.ok("principles", "diff", "clarity@1", "clarity@2")
    assert "+Use plain words." in diff and "--- clarity@1" in diff
    side = cli.json("principles", "diff", "clarity@1", "clarity@2", "--side-by-side")
    assert side["side_by_side"]  # type: ignore[index]
    blame = cli.json("principles", "blame", "clarity")
    assert blame == [  # type: ignore[comparison-overlap]
        {**blame[0], "version": 2, "revision": 2, "amendment_id": 1, "text": "Use plain words."}  # type: ignore[index]
    ]
    revs = cli.json("revisions", "list")
    assert [r["number"] for r in revs] == [2, 1]  # type: ignore[union-attr]
    rdiff = cli.json("revisions", "diff", "1", "2")
    assert [c["principle"] for c in rdiff["changes"]] == ["clarity"]  # type: ignore[index]
    assert "clarity" in cli.ok("revisions", "show", "2")
    found = cli.json("principles", "search", "plain words")
    assert [v["number"] for v in found] == [2]  # type: ignore[union-attr]
    assert cli.json("amend", "list", "--status", "applied")[0]["id"] == 1  # type: ignore[index]


def test_constitution_show_formats_and_time(cli: CLI) -> None:
    cli.ok("amend", "propose", "retire", "clarity")
    cli.ok("amend", "approve", "1", user="bob")
    cli.ok("amend", "apply", "1", user="bob")
    md = cli.ok("constitution", "show", "--at", "1")
    assert "# clarity: Be clear and concise" in md and "[entrenched]" in md
    assert "clarity" not in cli.ok("constitution", "show", "--format", "yaml")
    data = json.loads(cli.ok("constitution", "show", "--format", "json"))
    assert len(data["principles"]) == 9
    rev1_time = cli.json("revisions", "show", "1")["created_at"]  # type: ignore[index]
    as_of = cli.ok("constitution", "show", "--as-of", rev1_time.replace("+00:00", "Z"))
    assert "# clarity:" in as_of
    code, _, err = cli("constitution", "show", "--as-of", "2020-01-01T00:00:00")
    assert code == 4 and "timezone" in err
    code, _, err = cli("constitution", "show", "--as-of", "2020-01-01T00:00:00Z")
    assert code == 3 and "not found" in err


def test_revert_labels_and_audit(cli: CLI, tmp_path: Path) -> None:
    cli.ok("amend", "propose", "revise", "clarity", "--text", "v2")
    cli.ok("amend", "approve", "1", user="bob")
    cli.ok("amend", "apply", "1", user="bob")
    cli.ok("labels", "set", "production", "1")
    assert cli.json("labels", "list")[0]["revision"] == 1  # type: ignore[index]
    assert "Be clear" in cli.ok("principles", "list", "--at", "production")
    cli.ok("revert", "production")
    assert "Be clear" in cli.ok("principles", "show", "clarity")
    assert [v["number"] for v in cli.json("principles", "history", "clarity")] == [1, 2, 3]  # type: ignore[union-attr]
    anchor = tmp_path / "anchor.json"
    cli.ok("audit", "anchor", "--out", str(anchor))
    code, _, err = cli("audit", "verify", "--anchor", str(anchor))
    assert code == 0 and "intact" in err and "matches" in err
    events = cli.json("audit", "log")
    actions = [e["action"] for e in events]  # type: ignore[union-attr]
    assert "label.set" in actions and actions[-1] == "revision.create"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["principles", "show", "nope"], 3, "not found"),
        (["principles", "show", "clarity@x"], 4, "bad version"),
        (["principles", "diff", "clarity@1", "clarity@9"], 3, "clarity@9"),
        (["amend", "propose", "frob", "x"], 4, "unknown op"),
        (["amend", "propose", "add", "Bad Slug", "--title", "t", "--text", "x"], 4, "principle id"),
        (["amend", "propose", "revise", "clarity", "--text", "   "], 4, "empty"),
        (["amend", "propose", "retire", "missing"], 3, "missing"),
        (["amend", "approve", "1"], 3, "amendment not found"),
        (
            ["amend", "propose", "revise", "clarity", "--text", "x", "--merge-from", "honesty"],
            4,
            "only for a merge",
        ),
        (["revisions", "show", "7"], 3, "revision not found"),
        (["labels", "set", "Bad Label", "1"], 4, "label"),
        (["audit", "verify", "--anchor", "/nonexistent"], 4, "cannot read anchor"),
    ],
)
def test_user_errors_are_one_line_with_distinct_codes(
    cli: CLI, args: list[str], code: int, message: str
) -> None:
    got, out, err = cli(*args)
    assert got == code, err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_no_database_means_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = CLI(tmp_path / "fresh.db", capsys)("principles", "list")
    assert code == 3 and "constitution not found: default" in err


def test_help_is_fast_and_never_imports_torch() -> None:
    probe = (
        "import sys; sys.argv = ['charter', '--help']\n"
        "from charter.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'xgrammar') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "HEAVY []" in done.stdout
    assert "principles" in done.stdout and "audit" in done.stdout


def test_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "charter"
    done = subprocess.run(
        [str(exe), "--db", str(tmp_path / "c.db"), "init"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [str(exe), "--db", str(tmp_path / "c.db"), "principles", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(json.loads(listed.stdout)) == 10


def test_registered_agent_cannot_approve_through_any_command(cli: CLI) -> None:
    """`--as` names a registered user: its kind holds on every command, so the agent's
    identity is refused by `amend approve` as by `review approve`, and the refusal is audited."""
    cli.ok("users", "add", "charter-agent", "--agent")
    cli.ok("amend", "propose", "revise", "clarity", "--text", "Shorter.", user="alice")
    for group in ("amend", "review"):
        code, _, err = cli(group, "approve", "1", user="charter-agent")
        assert code == 5 and "agent" in err
    refused = [e for e in cli.json("audit", "log") if e["action"] == "review.refused"]  # type: ignore[index, union-attr]
    assert len(refused) == 2 and refused[0]["actor"] == "agent:charter-agent"  # type: ignore[index]
    assert cli.json("amend", "show", "1")["amendment"]["status"] == "proposed"  # type: ignore[index]
