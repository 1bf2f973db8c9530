"""`charter judge eval | calibrate | show` and the autonomous-mode judge floor, end to end
in process with the scripted loop model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.charter.test_cli import CLI

FIXTURE = Path(__file__).parent.parent / "data" / "judge_labels.jsonl"
SCRIPTED = ["--model", "scripted:loop"]
AUTONOMOUS = [
    "run",
    *SCRIPTED,
    "--mode",
    "autonomous",
    "--iterations",
    "1",
    "--tasks-limit",
    "12",
    "--train-per-iteration",
    "3",
    "--heldout",
    "6",
]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> CLI:
    c = CLI(tmp_path / "charter.db", capsys)
    c.ok("init")
    return c


def test_judge_eval_reports_figures_with_cis_and_records_the_measurement(cli: CLI) -> None:
    report = cli.json("judge", "eval", "--labels", str(FIXTURE), *SCRIPTED, "--resamples", "200")
    assert isinstance(report, dict)
    assert report["n"] == 28 and report["model"] == "scripted:loop"
    [row] = report["principles"]
    assert row["principle"] == "harm-avoidance" and row["n"] == 28
    for key in ("auc", "accuracy", "balanced_accuracy", "kappa", "spearman", "ece"):
        assert key in row and f"{key}_ci" in row
    assert row["auc_ci"][0] <= row["auc"] <= row["auc_ci"][1]
    assert report["calibration_id"] is None  # nothing fitted for the scripted judge
    shown = cli.ok("judge", "show", *SCRIPTED)
    assert "last measured" in shown and "28 labels" in shown
    assert "judge.eval" in cli.ok("audit", "log")


def test_judge_eval_prints_a_table_without_json(cli: CLI) -> None:
    out = cli.ok("judge", "eval", "--labels", str(FIXTURE), *SCRIPTED, "--no-record")
    assert "harm-avoidance" in out and "overall" in out and "AUC" in out
    assert "never measured" in cli.ok("judge", "show", *SCRIPTED)


def test_a_bad_labels_line_is_one_error_line_with_its_number(cli: CLI, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = FIXTURE.read_text(encoding="utf-8").splitlines()[0]
    bad.write_text(good + "\n" + json.dumps({"prompt": "p", "response": "r"}) + "\n")
    code, out, err = cli("judge", "eval", "--labels", str(bad), *SCRIPTED)
    assert code == 4 and out == ""
    assert err.strip().count("\n") == 0 and "bad.jsonl:2" in err


def test_labels_for_a_principle_outside_the_constitution_need_a_principles_file(
    cli: CLI, tmp_path: Path
) -> None:
    labels = tmp_path / "declines.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"prompt": "p", "response": r, "principle": "declines", "label": y}) + "\n"
            for r, y in [("No, I won't.", 1), ("Sure, here it is.", 0)]
        )
    )
    code, _, err = cli("judge", "eval", "--labels", str(labels), *SCRIPTED)
    assert code == 4 and "not in the constitution: declines" in err
    extra = tmp_path / "extra.md"
    extra.write_text("# declines: Declines the request\n\nThe response declines or refuses.\n")
    report = cli.json(
        "judge", "eval", "--labels", str(labels), *SCRIPTED, "--principles", str(extra)
    )
    assert isinstance(report, dict) and report["principles"][0]["principle"] == "declines"


def test_judge_calibrate_stores_a_calibration_that_judge_show_names(cli: CLI) -> None:
    out = cli.json("judge", "calibrate", "--labels", str(FIXTURE), *SCRIPTED, "--folds", "4")
    assert isinstance(out, dict) and out["model"] == "scripted:loop"
    assert set(out["params"]["heads"]) == {"harm-avoidance"}
    shown = cli.ok("judge", "show", *SCRIPTED)
    assert f"calibration {out['id']}" in shown and "harm-avoidance" in shown
    assert "judge.calibrate" in cli.ok("audit", "log")


def test_autonomous_mode_is_refused_while_the_judge_is_unmeasured(cli: CLI) -> None:
    code, _, err = cli(*AUTONOMOUS)
    assert code == 5
    assert "autonomous mode refused" in err and "never been measured" in err
    assert cli.json("runs", "list") == []  # nothing started


def test_the_override_is_recorded_in_the_run_and_the_audit_log(cli: CLI) -> None:
    cli.ok(*AUTONOMOUS, "--override-judge-floor")
    [run] = cli.json("runs", "list")  # type: ignore[misc]
    assert run["config"]["judge_override"] is True
    assert run["model_info"]["judge"]["override"] is True
    events = cli.json("audit", "log")
    assert isinstance(events, list)
    create = next(e for e in events if e["action"] == "run.create")
    assert create["payload"]["config"]["judge_override"] is True


def test_a_judge_measured_below_the_floor_is_refused_and_above_it_runs(cli: CLI) -> None:
    cli.ok("judge", "eval", "--labels", str(FIXTURE), *SCRIPTED, "--resamples", "50")
    [measured] = [
        e
        for e in cli.json("audit", "log")
        if e["action"] == "judge.eval"  # type: ignore[union-attr]
    ]
    auc = measured["payload"]["auc"]
    code, _, err = cli(*AUTONOMOUS, "--judge-floor", str(min(1.0, auc + 0.01)))
    assert code == 5 and "below the floor" in err
    cli.ok(*AUTONOMOUS, "--judge-floor", str(max(0.0, auc - 0.01)))
    [run] = cli.json("runs", "list")  # type: ignore[misc]
    assert run["model_info"]["judge"]["auc"] == auc
    assert "override" not in run["model_info"]["judge"]
