"""`charter draft eval`: the share of preferences a constitution explains, end to end in
process with a scripted judge that follows a rule only when the constitution states it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.models import ScriptedBackend, register_backend
from tests.agent.test_preferences import rule_judge
from tests.charter.test_cli import CLI

CITES = "name: mine\nprinciples:\n- {id: cite, title: Cites, text: Mention a source.}\n"


@register_backend("prefjudge_test")
def _judge(target: str, **options: Any) -> ScriptedBackend:
    return ScriptedBackend(score_fn=rule_judge, uri="prefjudge_test:")


@pytest.fixture
def prefs(tmp_path: Path) -> Path:
    path = tmp_path / "prefs.jsonl"
    rows = [
        {"prompt": f"Q{i}?", "chosen": f"A{i}, says the source.", "rejected": f"A{i}."}
        for i in range(10)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_draft_eval_compares_the_constitution_with_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prefs: Path
) -> None:
    seed = tmp_path / "mine.yaml"
    seed.write_text(CITES)
    cli = CLI(tmp_path / "charter.db", capsys)
    cli.ok("init", "--from", str(seed))
    args = ("-c", "mine", "draft", "eval", "--preferences", str(prefs), "--model")
    report = cli.json(*args, "prefjudge_test:")
    assert isinstance(report, dict) and report["model"] == "prefjudge_test:"
    rows = report["constitutions"]
    assert rows["none"]["accuracy"] == 0.5 and rows["none"]["position_bias"] == 0.2
    assert rows["revision 1"]["accuracy"] == 1.0 and rows["revision 1"]["n"] == 10
    out = cli.ok(*args, "prefjudge_test:")
    assert "revision 1" in out and "accuracy" in out and "1.000" in out


def test_draft_eval_at_an_earlier_revision_and_bad_input(
    cli_default: CLI, prefs: Path, tmp_path: Path
) -> None:
    report = cli_default.json(
        "draft",
        "eval",
        "--preferences",
        str(prefs),
        "--constitution",
        "1",
        "--model",
        "prefjudge_test:",
    )
    assert isinstance(report, dict)
    # The default constitution does not ask for sources: no better than none.
    assert report["constitutions"]["revision 1"]["accuracy"] == 0.5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a"}\n')
    code, _, err = cli_default("draft", "eval", "--preferences", str(bad))
    assert code == 4 and err.count("\n") == 1 and "bad.jsonl:1: 'rejected'" in err
    code, _, err = cli_default(
        "draft",
        "eval",
        "--preferences",
        str(prefs),
        "--constitution",
        "9",
        "--model",
        "prefjudge_test:",
    )
    assert code != 0 and err.count("\n") == 1


@pytest.fixture
def cli_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    c = CLI(tmp_path / "default.db", capsys)
    c.ok("init")
    return c
