"""`charter probe bias` end to end in process, with a scripted agent that refuses one
group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.models import ScriptedBackend, register_backend
from tests.charter.test_cli import CLI


@register_backend("bias_test")
def _biased(target: str, **options: Any) -> ScriptedBackend:
    from tests.agent.test_bias import backend

    b = backend(refuse="Muslim")
    b.uri = "bias_test:"
    return b


def test_probe_bias_reports_gaps_and_flags_the_planted_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = CLI(tmp_path / "charter.db", capsys)
    cli.ok("init")
    args = ("probe", "bias", "--model", "bias_test:", "--limit", "20")
    report = cli.json(*args, "--json")
    assert isinstance(report, dict) and report["revision"] == 1 and report["templates"] == 20
    rows = report["gaps"]
    assert {"attribute", "groups", "gap", "gap_ci", "p_value", "p_adjusted"} <= set(rows[0])
    flagged = [(g["source"], g["attribute"], g["metric"]) for g in rows if g["significant"]]
    assert ("agent", "religion", "refusal") in flagged
    refusal = next(g for g in rows if (g["attribute"], g["metric"]) == ("religion", "refusal"))
    assert refusal["highest"] == "muslim" and refusal["parity_difference"] == 1.0
    assert {g["source"] for g in rows} == {"agent", "critic"}
    code, out, err = cli(*args)
    assert code == 0 and "FLAGGED" in out and "religion" in out and "stored as probe run 2" in err
    runs = cli.json("probe", "list", "--json")
    assert isinstance(runs, list) and [r["id"] for r in runs] == [report["probe_run"], 2]
    assert runs[0]["revision"] == 1 and runs[0]["flagged"] >= 1 and "report" not in runs[0]
    cli.ok("amend", "propose", "revise", "clarity", "--text", "Use plain words, always.")
    cli.ok("amend", "approve", "1", user="bob")
    cli.ok("amend", "apply", "1", user="bob")
    code, _, err = cli("probe", "compare", "1", "2")
    assert code == 3 and "probe run not found: revision 2" in err
    cli.ok(*args)  # the same planted bias under revision 2
    compared = cli.json("probe", "compare", "1", "head", "--json")
    assert isinstance(compared, dict) and (compared["before"], compared["after"]) == (2, 3)
    row = next(
        r for r in compared["gaps"] if (r["attribute"], r["metric"]) == ("religion", "refusal")
    )
    assert row["change"] == 0 and row["direction"] == "similar"
    assert row["before"]["significant"] and row["after"]["significant"]
    code, out, _ = cli("probe", "compare", "1", "2")
    assert code == 0 and "similar" in out and "religion" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "kind": "advice", "text": "no slot here"}\n')
    for extra, message in [
        (("--suite", str(bad)), "{person} slot"),
        (("--revision", "9"), "9"),
    ]:
        code, _, err = cli(*args, *extra)
        assert code != 0 and message in err and err.count("\n") == 1


def test_tasks_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = CLI(tmp_path / "charter.db", capsys)
    report = cli.json("tasks", "report", "builtin", "--json")
    assert isinstance(report, dict) and report["tasks"] == 108
    assert report["categories"]["help"] == 27 and "gender" in report["mentions"]
    code, out, err = cli("tasks", "report", "builtin")
    assert code == 0 and "fairness" in out and "shorter than 4 words" in err
    code, _, err = cli("tasks", "report", str(tmp_path / "none.jsonl"))
    assert code == 4 and "cannot read task file" in err and err.count("\n") == 1


@register_backend("bias_loop_test")
def _biased_loop(target: str, **options: Any) -> ScriptedBackend:
    from tests.agent.test_bias_loop import biased_backend

    b = biased_backend()
    b.uri = "bias_loop_test:"
    return b


def test_a_run_after_a_probe_drafts_against_its_gaps_and_amend_show_prints_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.agent.test_bias_loop import suite_file

    cli = CLI(tmp_path / "charter.db", capsys)
    cli.ok("init")
    model = ("--model", "bias_loop_test:")
    cli.ok("probe", "bias", *model, "--suite", str(suite_file(tmp_path)))
    loop = ("run", *model, "--iterations", "1", "--tasks-limit", "24", "--seed", "7")
    code, _, err = cli(*loop, "--bias", "sometimes")
    assert code != 0 and "sometimes" in err
    summary = cli.json(*loop, "--train-per-iteration", "4", "--json")
    assert isinstance(summary, dict)
    shown = {}
    for aid in summary["pending"]:
        _, out, _ = cli("amend", "show", str(aid))
        shown[aid] = out
    assert shown and all("bias gaps of probe run 1, measured again" in s for s in shown.values())
    assert any("WIDENED" in s and "widens the religion refusal gap" in s for s in shown.values())
    assert any("revise fairness" in s and "WIDENED" not in s for s in shown.values())
