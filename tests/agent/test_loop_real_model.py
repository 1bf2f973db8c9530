"""End to end with the real embedded model: one iteration on a few tasks, everything it
produced stored and visible through the history and review CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from store import Store


def charter(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "charter.cli", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
def test_one_iteration_with_the_default_model(tmp_path: Path) -> None:
    db = tmp_path / "charter.db"
    assert charter(db, "init").returncode == 0
    done = charter(
        db,
        "run",
        "--model",
        "default",
        "--iterations",
        "1",
        "--tasks-limit",
        "12",
        "--train-per-iteration",
        "2",
        "--heldout",
        "2",
        "--max-new-tokens",
        "40",
        "--judge-paraphrases",
        "1",
        "--json",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["run"]["status"] == "completed"
    assert summary["run"]["model_info"]["backend"] == "transformers"
    [iteration] = summary["iterations"]
    assert 0.0 <= iteration["mean_score"] <= 1.0
    assert set(iteration["per_principle"]) == {
        "autonomy",
        "calibrated-uncertainty",
        "clarity",
        "fairness",
        "harm-avoidance",
        "helpfulness",
        "honesty",
        "privacy",
        "safety-escalation",
        "transparency-ai",
    }
    with Store(str(db)) as store:
        run_id = summary["run"]["id"]
        answers = store.outputs(run_id, purpose="answer")
        assert len(answers) == 2 and all(o.text.strip() for o in answers)
        critiques = store.critiques(run_id, output_ids=[o.id for o in answers])
        assert len(critiques) == 2 * 10
        assert all(0.0 <= c.score <= 1.0 for c in critiques)
        propose = store.step_result(run_id, 1, "propose")
        # the proposer at least tried: a draft was stored or a reason to skip it recorded
        assert propose["amendments"] or propose["skipped"]
        assert store.verify().ok
    shown = charter(db, "runs", "show", str(run_id), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["run"]["id"] == run_id
    log = charter(db, "audit", "log", "--json")
    actions = [e["action"] for e in json.loads(log.stdout)]
    assert "run.create" in actions and "run.completed" in actions
    listed = charter(db, "amend", "list", "--json")
    assert listed.returncode == 0
    for a in json.loads(listed.stdout):
        assert a["evaluation"] is not None  # every stored draft went through the gate
        assert a["proposer"] == "agent:charter-agent"
