"""`charter draft eval`: the share of preferences a constitution explains, end to end in
process with a scripted judge that follows a rule only when the constitution states it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.models import ScriptedBackend, register_backend
from store import Store
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


@register_backend("icai_test")
def _drafter(target: str, **options: Any) -> ScriptedBackend:
    from tests.agent.test_icai import backend

    return backend()


def test_draft_from_preferences_proposes_what_helps_and_applies_nothing(
    cli_default: CLI, tmp_path: Path
) -> None:
    from tests.agent.test_icai import pairs

    path = tmp_path / "icai.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
            for p in pairs()
        )
    )
    before = cli_default.json("principles", "list")
    args = ("draft", "--preferences", str(path), "--samples", "9", "--model", "icai_test:")
    report = cli_default.json(*args)
    assert isinstance(report, dict)
    assert [c["id"] for c in report["candidates"] if c["kept"]] == ["cite-sources"]
    assert report["heldout_after"]["accuracy"] > report["heldout_before"]["accuracy"]
    [number] = report["proposed"]
    assert cli_default.json("principles", "list") == before  # nothing applied
    with Store(str(cli_default.db)) as store:
        amendment = store.amendment(number)
    assert amendment.status == "proposed" and amendment.proposer == "agent:charter-agent"
    assert amendment.draft.op == "add" and amendment.draft.principle_id == "cite-sources"
    assert any("training pairs: 1.00" in e for e in amendment.draft.evidence)
    assert any("held-out pairs" in e for e in amendment.draft.evidence)
    again = cli_default.json(*args, "--seed", "1")
    assert isinstance(again, dict) and again["proposed"] == []
    assert f"cite-sources: duplicates amendment {number}" in again["failed"]
    out = cli_default.ok(*args)
    assert "cite-sources" in out
    code, _, err = cli_default("draft", "--max", "2")
    assert code == 4 and "give --preferences FILE" in err
