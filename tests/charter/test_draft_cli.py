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
    code, out, err = cli_default(*args)
    assert code == 0 and "cite-sources" in out and "a duplicate" in out
    assert f"set aside: cite-sources: duplicates amendment {number}" in err
    code, _, err = cli_default("draft", "--max", "2")
    assert code == 4 and "give --purpose TEXT or --preferences FILE" in err


@register_backend("purpose_test")
def _purpose_drafter(target: str, **options: Any) -> ScriptedBackend:
    from tests.agent.test_purpose import backend

    return backend()


def test_init_empty_then_draft_from_a_purpose_proposes_with_evaluations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.agent.test_purpose import PURPOSE, tasks

    task_file = tmp_path / "tasks.jsonl"
    task_file.write_text("".join(json.dumps(t.model_dump()) + "\n" for t in tasks()))
    cli = CLI(tmp_path / "empty.db", capsys)
    code, _, err = cli("init", "--empty")
    assert code == 0 and "with 0 principles" in err and "charter draft --purpose" in err
    assert cli.json("principles", "list") == []
    code, _, err = cli("run", "--model", "scripted:")
    assert code == 4 and "has no principles yet" in err and err.count("\n") == 1
    args = ("draft", "--purpose", PURPOSE, "--tasks", str(task_file), "--samples", "6")
    report = cli.json(*args, "--model", "purpose_test:")
    assert isinstance(report, dict) and report["purpose"] == PURPOSE
    kept = {c["id"]: c["kept"] for c in report["candidates"]}
    # the harmful draft lowers the purpose's score (4 tasks: not significant, still dropped)
    assert kept == {"show-examples": True, "no-examples": False, "name-programs": False}
    assert cli.json("principles", "list") == []  # nothing applied
    [number] = report["proposed"]
    with Store(str(cli.db)) as store:
        amendment = store.amendment(number)
        assert store.verify().ok
    assert amendment.status == "proposed" and amendment.proposer == "agent:charter-agent"
    assert amendment.draft.op == "add" and amendment.draft.principle_id == "show-examples"
    assert amendment.evaluation is not None and amendment.evaluation.outcome == "passed"
    assert amendment.evaluation.before < amendment.evaluation.after
    assert amendment.draft.evidence[0] == f"purpose: {PURPOSE}"
    assert any("held-out (10 tasks)" in e and ": passed" in e for e in amendment.draft.evidence)
    again = cli.json(*args, "--model", "purpose_test:")
    assert isinstance(again, dict) and again["proposed"] == []
    assert any("duplicates amendment" in f for f in again["failed"])
    assert [c["amendment"] for c in report["candidates"]] == [number, None, None]
    code, out, err = cli(*args, "--model", "purpose_test:", "--max", "1")
    assert code == 0 and "show-examples" in out and "passed" in out and "a duplicate" in out
    assert "proposed 0 amendment(s)" in err and f"duplicates amendment {number}" in err
    for bad, message in [
        (("--purpose", "be good"), "3 words or more"),
        (("--purpose", PURPOSE, "--preferences", str(task_file)), "give --purpose TEXT or"),
        (("--purpose", PURPOSE, "--tasks", str(tmp_path / "none.jsonl")), "cannot read task"),
    ]:
        code, _, err = cli("draft", *bad, "--model", "purpose_test:")
        assert code == 4 and message in err and err.count("\n") == 1
