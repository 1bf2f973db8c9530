"""The CLI end to end, in process (fast) and as a real process (exit codes, imports)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from charter.cli import main
from store import Store
from tests.conftest import reset_pg


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


def test_init_refuses_a_constitution_over_the_size_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.md"
    big.write_text("".join(f"# p{i}: Principle {i}\nDo thing {i}.\n\n" for i in range(30)))
    cli = CLI(tmp_path / "big.db", capsys)
    code, _, err = cli("init", "--from", str(big))
    assert code == 5 and err.count("\n") == 1 and "30 principles; the cap is 24" in err
    with Store(str(tmp_path / "big.db")) as store:
        assert store.constitutions() == [] and store.audit_log() == []


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


def test_init_never_prints_a_postgresql_urls_password(
    pg_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reset_pg(pg_database)
    scheme, rest = pg_database.split("://", 1)
    user, host = rest.split("@", 1)
    with_password = f"{scheme}://{user}:hunter2-secret@{host}"  # trust auth ignores it
    cli = CLI(tmp_path / "unused.db", capsys)
    cli.db = with_password  # type: ignore[assignment]
    said = [cli(*args) for args in (("init",), ("init",), ("init", "--if-missing"))]
    assert [code for code, _, _ in said] == [0, 4, 0]
    assert not any("hunter2" in out + err for _, out, err in said)
    assert f"{user}:***@" in said[0][2] and f"{user}:***@" in said[2][2]


def test_reserved_names_never_act_through_as(cli: CLI) -> None:
    """`--as charter` read like the system actor and `--as charter-agent` like the agent;
    neither becomes a person, even in the single-user mode of a database with no people."""
    cli.ok("amend", "propose", "revise", "clarity", "--text", "Shorter.")
    for name in ("charter", "charter-agent"):
        code, _, err = cli("review", "approve", "1", user=name)
        assert code == 5 and "reserved" in err and err.count("\n") == 1
    shown = cli.json("amend", "show", "1")
    assert shown["amendment"]["status"] == "proposed"  # type: ignore[index]
    assert not shown["amendment"]["reviews"]  # type: ignore[index]


def test_once_people_are_registered_as_must_name_one_of_them(cli: CLI) -> None:
    cli.ok("users", "add", "rita", "--role", "reviewer", "--no-password")
    cli.ok("amend", "propose", "revise", "clarity", "--text", "Shorter.", user="rita")
    code, _, err = cli("amend", "approve", "1", user="mallory")
    assert code == 5 and "mallory is not a registered user" in err
    assert cli.json("amend", "show", "1")["amendment"]["status"] == "proposed"  # type: ignore[index]
    code, _, err = cli("users", "add", "eve", "--role", "admin", "--no-password", user="mallory")
    assert code == 5 and [u["name"] for u in cli.json("users", "list")] == ["rita"]  # type: ignore[index]


def test_escapes_stored_before_they_were_refused_print_as_visible_escapes(cli: CLI) -> None:
    """A reviewer reading `review show`, `amend list` or `audit log` sees `\\x1b[8m`, not a
    terminal that stops showing the words after it; JSON escapes them too."""
    cli.ok("amend", "propose", "revise", "clarity", "--text", "Be clear.", "-r", "why")
    hidden = "\x1b[8m"
    with sqlite3.connect(cli.db) as conn:
        conn.execute(
            "UPDATE amendments SET rationale = ?, text = ?", (f"why{hidden}", f"Be{hidden} vague.")
        )
        conn.execute(
            "INSERT INTO reviews (amendment_id, reviewer, decision, comment, edit, created_at) "
            "VALUES (1, ?, 'comment', ?, 0, '2024-01-01 00:00:00')",
            (f"human:e{hidden}ve", "fine\x9b8m by me"),
        )
        conn.execute(
            "INSERT INTO audit_events (seq, at, actor, action, subject, payload, prev_hash, hash) "
            "VALUES (99, '2024-01-01 00:00:00', ?, 'x', 'amendment:1', '{}', '', '')",
            (f"human:e{hidden}ve",),
        )
    for args in (("review", "show", "1"), ("amend", "show", "1"), ("audit", "log")):
        _, out, err = cli(*args)
        assert "\x1b" not in out + err and "\x9b" not in out + err, args
        assert "\\x1b[8m" in out, args
    assert "\\x9b" in cli.ok("review", "show", "1")
    as_json = cli.ok("amend", "show", "1", "--json")
    assert "\x1b" not in as_json and "\x9b" not in as_json and "\\u009b" in as_json
    assert json.loads(as_json)["amendment"]["draft"]["rationale"] == f"why{hidden}"


def test_square_brackets_in_user_text_are_never_read_as_rich_markup(cli: CLI) -> None:
    cli.ok("amend", "propose", "add", "kind", "--title", "[red]Be[/red] kind", "--text", "[b]x")
    cli.ok("amend", "approve", "1", user="bob")
    cli.ok("amend", "apply", "1", user="bob")
    assert "[red]Be[/red] kind" in cli.ok("principles", "list")
    assert "[b]x" in cli.ok("principles", "show", "kind")
    code, _, err = cli("revert", "1", "-m", "[bold]undo", user="bob")
    assert code == 0 and "revision 3: [bold]undo" in err
    assert "[bold]undo" in cli.ok("revisions", "list")


def test_a_command_that_exits_with_a_code_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from charter import cli as cli_module

    probe = typer.Typer()

    @probe.command()
    def fails() -> None:
        raise typer.Exit(7)

    monkeypatch.setattr(cli_module, "app", probe)
    monkeypatch.setattr(sys, "argv", ["charter"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 7
