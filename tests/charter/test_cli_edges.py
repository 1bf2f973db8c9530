"""The CLI's edges: whatever a user types, one line on stderr, the documented exit code, and
nothing written (out-of-range ids, files that are not databases, usage errors, bad
constitution files), on SQLite and on PostgreSQL; and which constitution a command acts on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from charter.cli import main
from principles import Principle, Seed
from store import Store


class Shell:
    """`charter --db URL --as alice ARGS` in process: (exit code, stdout, stderr)."""

    def __init__(self, db: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        argv = sys.argv
        sys.argv = ["charter", "--db", self.db, "--as", "alice", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        finally:
            sys.argv = argv
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, err
        return out + err

    def events(self) -> int:
        """How many audit events the database holds: what a refused command must not change."""
        with Store(self.db) as store:
            return len(store.audit_log(limit=None))

    def names(self) -> list[str]:
        with Store(self.db) as store:
            return store.constitutions()


@pytest.fixture
def shell(db_url: str, capsys: pytest.CaptureFixture[str]) -> Shell:
    """A CLI over an empty SQLite file or the emptied PostgreSQL database."""
    return Shell(db_url, capsys)


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


def seed(name: str, *pids: str) -> Seed:
    return Seed(
        name=name,
        principles=tuple(Principle(id=p, title=p.title(), text=f"{p}.") for p in pids),
    )


# Beyond PostgreSQL's INTEGER, beyond SQLite's; below zero, below SQLite's.
OUT_OF_RANGE = [str(2**31), str(2**63), "-1", str(-(2**63) - 1)]


def test_ids_beyond_the_databases_integer_range_are_simply_not_found(shell: Shell) -> None:
    shell.ok("init")
    shell.ok("amend", "propose", "revise", "clarity", "--text", "Use plain words.")
    before = shell.events()
    commands = [  # {} is the id; `--` lets a negative one through as an argument
        "amend show -- {}",
        "amend approve -- {}",
        "amend apply -- {}",
        "amend reject -m no -- {}",
        "amend comment -- {} hello",
        "review show -- {}",
        "review approve -- {}",
        "review rebase -- {}",
        "review label --right -- {} 1",
        "runs show -- {}",
        "export training-data --run {}",
        "revisions show -- {}",
        "revert -- {}",
        "labels set production -- {}",
        "constitution show --at {}",
    ]
    for number in OUT_OF_RANGE:
        versions = [] if number.startswith("-") else [f"principles show clarity@{number}"]
        for command in commands + versions:
            code, out, err = shell(*command.format(number).split())
            assert code == 3 and "not found" in err and one_line(err), (command, number, err)
            assert out == ""
    assert shell.events() == before


def test_a_file_that_is_not_a_database_is_a_database_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"these are my notes, not a database\n" * 200)
    for args in (["principles", "list"], ["init"], ["audit", "verify"]):
        code, out, err = Shell(str(junk), capsys)(*args)
        assert code == 8 and one_line(err) and "not a database" in err, err
        assert out == ""
    assert junk.read_bytes() == b"these are my notes, not a database\n" * 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["amend", "show", "abc"], "Invalid value"),
        (["amend", "show"], "Missing argument"),
        (["amend", "list", "--bogus"], "No such option"),
        (["amend", "show", "-1"], "No such option"),
        (["nonsense"], "No such command"),
        (["revisions", "list", "-n", str(2**63)], "Invalid value"),
        (["audit", "log", "-n", str(2**63)], "Invalid value"),
        (["audit", "log", "-n", "0"], "Invalid value"),
    ],
)
def test_usage_errors_show_the_usage_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    db = tmp_path / "charter.db"
    code, out, err = Shell(str(db), capsys)(*args)
    assert code == 2, err
    assert err.startswith("Usage: charter") and message in err.splitlines()[-1]
    assert "internal error" not in err and "Traceback" not in err and out == ""
    assert not db.exists()


def test_a_group_without_a_command_shows_its_help_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = Shell(str(tmp_path / "charter.db"), capsys)("amend")
    assert code == 2 and "propose" in out and err == ""


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Constitution files a user could hand to `init --from`, and what the error must say."""
    files = {
        "deep.json": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        "deep.yaml": ("a: " + "[" * 5_000, "nested too deeply"),
        "deep.md": ("---\na: " + "[" * 5_000 + "\n---\n# a: b\nx\n", "nested too deeply"),
        "nul.json": (
            '{"name": "x", "principles": [{"id": "a", "title": "T", "text": "x\\u0000y"}]}',
            "NUL",
        ),
        "nul.yaml": ('name: x\nprinciples:\n- {id: a, title: T, text: "x\\0y"}\n', "NUL"),
        "nul-title.yaml": ('principles:\n- {id: a, title: "T\\0", text: x}\n', "NUL"),
        "nul-raw.yaml": ("name: x\nprinciples:\n- {id: a, title: T, text: x\0y}\n", "line 3"),
        "nul.md": ("# a: Title\nsome\0text\n", "NUL"),
        "bad.yaml": ("name: x\nprinciples:\n  - id: a\n   title: b\n", "line 4, column 4"),
        "bad.md": ("---\nname: [x\n---\n# a: b\ntext\n", "line 2"),
        "bad.json": ('{"name": "x",\n "principles": [}', "line 2"),
    }
    made = {}
    for name, (text, message) in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        made[name] = (path, message)
    return made


def test_bad_constitution_files_are_one_line_exit_4_and_create_nothing(
    shell: Shell, tmp_path: Path
) -> None:
    for name, (path, message) in bad_files(tmp_path).items():
        code, out, err = shell("init", "--from", str(path))
        assert code == 4 and one_line(err) and message in err, (name, err)
        assert out == ""
    assert shell.names() == []


def test_one_constitution_in_a_database_is_used_without_c(shell: Shell, tmp_path: Path) -> None:
    cai = tmp_path / "cai.json"
    cai.write_text(seed("cai", "be-kind").model_dump_json(), encoding="utf-8")
    said = shell.ok("init", "--from", str(cai))
    assert "created constitution 'cai'" in said and "select it with -c cai" in said
    assert "be-kind" in shell.ok("principles", "list")
    assert "be-kind" in shell.ok("constitution", "show")
    shell.ok("amend", "propose", "revise", "be-kind", "--text", "Be kinder.")
    assert "be-kind" in shell.ok("amend", "list")


def test_several_constitutions_without_default_need_c(shell: Shell) -> None:
    with Store(shell.db) as store:
        store.init(seed("beta", "b"))
        store.init(seed("alpha", "a"))
    before = shell.events()
    code, out, err = shell("principles", "list")
    assert code == 3 and one_line(err) and "alpha, beta" in err and "-c" in err, err
    assert out == ""
    assert "alpha" in shell.ok("-c", "alpha", "principles", "list")
    assert shell.events() == before
    shell.ok("audit", "verify")  # commands that name no constitution still work


def test_default_is_used_when_it_is_one_of_several(shell: Shell) -> None:
    shell.ok("init")
    with Store(shell.db) as store:
        store.init(seed("other", "x"))
    assert "honesty" in shell.ok("principles", "list")
    assert "initial constitution" in shell.ok("-c", "other", "revisions", "list")


def test_init_uses_default_unless_named_even_beside_another(shell: Shell) -> None:
    with Store(shell.db) as store:
        store.init(seed("cai", "be-kind"))
    said = shell.ok("init")
    assert "created constitution 'default'" in said and "select it" not in said
    assert sorted(shell.names()) == ["cai", "default"]


def test_c_names_the_constitution_that_init_from_a_file_creates(
    shell: Shell, tmp_path: Path
) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\nprinciples:\n- {id: be-kind, title: Be kind, text: Be kind.}\n")
    said = shell.ok("-c", "ours", "init", "--from", str(mine))
    assert "created constitution 'ours'" in said and "'mine'" in said
    assert "select it with -c ours" in said
    assert shell.names() == ["ours"]
    assert "be-kind" in shell.ok("-c", "ours", "principles", "list")
    code, _, err = shell("-c", "ours", "init", "--from", str(mine))
    assert code == 4 and "already exists" in err and one_line(err)
    assert shell("-c", "ours", "init", "--from", str(mine), "--if-missing")[0] == 0
    code, _, err = shell("-c", "Not A Name", "init")
    assert code == 4 and one_line(err) and "name" in err
    assert shell.names() == ["ours"]
