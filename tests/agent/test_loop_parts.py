"""Tasks, aggregation, proposer and gate in isolation (scripted backend, real SQLite)."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent import load_tasks, loop_backend, parse_tasks
from agent._aggregate import aggregate
from agent._gate import candidate_principles, evaluate
from agent._progress import NoProgress
from agent._proposer import candidates, propose
from agent.models import GenerationParams, ScriptedBackend
from principles import (
    Aggregate,
    Amendment,
    AmendmentDraft,
    Critique,
    GateRule,
    InvalidInput,
    Policy,
    PrincipleStats,
    default_seed,
    split_tasks,
)
from store import Store

NOW = datetime(2026, 11, 26, tzinfo=UTC)
PARAMS = GenerationParams(max_new_tokens=32)


@pytest.fixture
def head(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Store(str(tmp_path / "c.db")) as s:
        s.init(default_seed())
        yield s.constitution()


def test_builtin_suite_is_broad() -> None:
    tasks = load_tasks("builtin")
    assert len(tasks) >= 80
    by = {c: sum(t.category == c for t in tasks) for c in {t.category for t in tasks}}
    for category in (
        "help",
        "ambiguous",
        "borderline-harm",
        "privacy",
        "fairness",
        "honesty-pressure",
        "injection",
    ):
        assert by.get(category, 0) >= 10, category


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"id": "a", "prompt": "x"}\nnot json', ":2: not valid JSON"),
        ('{"id": "a"}', ":1: prompt"),
        ('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}', "appears twice"),
        ("[1]", "JSON object"),
        ("# only a comment\n", "no tasks"),
        ('{"id": "bad id!", "prompt": "x"}', ":1: id"),
    ],
)
def test_bad_task_files_are_reported_with_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_tasks(text, "suite.jsonl")


def test_a_plain_jsonl_of_prompts_gets_ids_derived_stably_from_the_prompt_text() -> None:
    text = '{"prompt": "How do I boil an egg?"}\n{"prompt": "Name a prime.", "id": "mine"}\n'
    tasks = parse_tasks(text, "suite.jsonl")
    digest = hashlib.sha256(b"How do I boil an egg?").hexdigest()[:10]
    assert [t.id for t in tasks] == [f"t-{digest}", "mine"]
    assert [t.id for t in parse_tasks(text, "again.jsonl")] == [t.id for t in tasks]


def test_two_identical_prompts_without_ids_are_reported_as_duplicates() -> None:
    text = '{"prompt": "Name a prime."}\n{"prompt": "Other."}\n{"prompt": "Name a prime."}'
    with pytest.raises(InvalidInput, match=r"suite.jsonl:3: .*same prompt as line 1"):
        parse_tasks(text, "suite.jsonl")


def test_missing_task_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read task file"):
        load_tasks(str(tmp_path / "none.jsonl"))


def test_split_is_deterministic_disjoint_and_order_free() -> None:
    tasks = load_tasks("builtin")
    train, held = split_tasks(tasks, seed=3, heldout_fraction=0.25)
    assert {t.id for t in train}.isdisjoint({t.id for t in held})
    assert len(train) + len(held) == len(tasks)
    assert 0.1 < len(held) / len(tasks) < 0.4
    _, held2 = split_tasks(list(reversed(tasks)), seed=3, heldout_fraction=0.25)
    assert {t.id for t in held2} == {t.id for t in held}
    assert {t.id for t in split_tasks(tasks, 4, 0.25)[1]} != {t.id for t in held}


def _c(
    cid: int, output: int, pid: str, score: float, relevance: float = 1.0, spread: float = 0.0
) -> Critique:
    return Critique(
        id=cid,
        run_id=1,
        output_id=output,
        principle_id=pid,
        version=1,
        score=score,
        relevance=relevance,
        spread=spread,
        verdict="pass" if score >= 0.5 else "fail",
        created_at=NOW,
    )


def test_aggregate_statistics() -> None:
    cs = []
    n = 0
    for out in range(6):
        x = out / 5
        for pid, score, rel in [("a", x, 1.0), ("b", 1 - x, 1.0), ("c", x, 1.0), ("d", 0.5, 0.1)]:
            n += 1
            cs.append(_c(n, out, pid, score, rel))
    agg = aggregate(cs, ["a", "b", "c", "d", "e"], threshold=0.5)
    a = agg.per_principle["a"]
    assert a.judged == 6 and a.violation_rate == pytest.approx(3 / 6)
    assert agg.per_principle["d"].ambiguity == 1.0 and agg.per_principle["d"].never_relevant
    assert agg.per_principle["e"].judged == 0 and not agg.per_principle["e"].never_relevant
    assert {(c.a, c.b) for c in agg.conflicts} == {("a", "b"), ("b", "c")}
    assert {(c.a, c.b) for c in agg.redundant} == {("a", "c")}


def _stats(
    pid: str, mean: float, violations: float, ambiguity: float = 0.0, relevance: float = 1.0
) -> PrincipleStats:
    return PrincipleStats(
        principle_id=pid,
        judged=10,
        mean=mean,
        violation_rate=violations,
        ambiguity=ambiguity,
        relevance=relevance,
        spread=0.0,
    )


def test_candidates_follow_the_statistics(head) -> None:  # type: ignore[no-untyped-def]
    stats = {p.principle_id: _stats(p.principle_id, 0.9, 0.0) for p in head.principles}
    stats["clarity"] = _stats("clarity", 0.3, 0.8)
    stats["autonomy"] = _stats("autonomy", 0.9, 0.0, relevance=0.1)
    stats["honesty"] = _stats("honesty", 0.9, 0.0, relevance=0.1)  # entrenched: never retired
    agg = Aggregate(mean=0.8, per_principle=stats)
    ops = [(c.op, c.principle_id) for c in candidates(head, agg, [])]
    assert ops == [("revise", "clarity"), ("retire", "autonomy")]
    low = Aggregate(mean=0.3, per_principle=stats)
    assert ("add", "") in [(c.op, c.principle_id) for c in candidates(head, low, [])]


def test_proposer_drafts_with_evidence_and_skips_duplicates(head) -> None:  # type: ignore[no-untyped-def]
    stats = {p.principle_id: _stats(p.principle_id, 0.9, 0.0) for p in head.principles}
    stats["clarity"] = _stats("clarity", 0.3, 0.8)
    stats["autonomy"] = _stats("autonomy", 0.9, 0.0, relevance=0.1)
    agg = Aggregate(mean=0.8, per_principle=stats)
    crit = [_c(7, 3, "clarity", 0.1), _c(8, 4, "clarity", 0.2)]
    backend = loop_backend()
    found = propose(
        backend,
        head,
        agg,
        crit,
        [],
        budget=5,
        run_id=1,
        policy=Policy(),
        params=PARAMS,
        progress=NoProgress(),
    )
    ops = [(d.op, d.principle_id) for d in found.drafts]
    assert ops == [("revise", "clarity"), ("retire", "autonomy")]
    revise = found.drafts[0]
    assert "critique:7" in revise.evidence and "output:3" in revise.evidence
    assert revise.run_id == 1 and revise.text and "(revised)" in revise.text
    assert "violations 80%" in revise.rationale
    pending = Amendment(
        id=9,
        constitution="default",
        draft=revise,
        base_revision=1,
        proposer="agent:x",
        status="proposed",
        created_at=NOW,
        updated_at=NOW,
    )
    again = propose(
        backend,
        head,
        agg,
        crit,
        [pending],
        budget=5,
        run_id=1,
        policy=Policy(),
        params=PARAMS,
        progress=NoProgress(),
    )
    assert [(d.op, d.principle_id) for d in again.drafts] == [("retire", "autonomy")]
    assert any("already touches" in s for s in again.skipped)
    capped = propose(
        backend,
        head,
        agg,
        crit,
        [],
        budget=1,
        run_id=1,
        policy=Policy(),
        params=PARAMS,
        progress=NoProgress(),
    )
    assert len(capped.drafts) == 1


def test_proposer_skips_unusable_model_drafts(head) -> None:  # type: ignore[no-untyped-def]
    stats = {p.principle_id: _stats(p.principle_id, 0.9, 0.0) for p in head.principles}
    stats["clarity"] = _stats("clarity", 0.3, 0.8)
    backend = ScriptedBackend(default="this is not JSON", max_reasks=1)
    found = propose(
        backend,
        head,
        Aggregate(mean=0.8, per_principle=stats),
        [],
        [],
        budget=3,
        run_id=1,
        policy=Policy(),
        params=PARAMS,
        progress=NoProgress(),
    )
    assert found.drafts == [] and "unusable" in found.skipped[0]
    same = json.dumps({"text": head.get("clarity").text, "rationale": "same text"})  # type: ignore[union-attr]
    found = propose(
        ScriptedBackend(default=same),
        head,
        Aggregate(mean=0.8, per_principle=stats),
        [],
        [],
        budget=3,
        run_id=1,
        policy=Policy(),
        params=PARAMS,
        progress=NoProgress(),
    )
    assert found.drafts == [] and "changes nothing" in found.skipped[0]


def test_gate_passes_improvements_and_judges_by_the_head(head) -> None:  # type: ignore[no-untyped-def]
    tasks = load_tasks("builtin")[:6]
    backend = loop_backend()
    good = AmendmentDraft(op="revise", principle_id="clarity", text="Be clear. (revised)")
    retire = AmendmentDraft(op="retire", principle_id="clarity")
    result = evaluate(
        backend,
        head,
        [(1, good), (2, retire)],
        tasks,
        rule=GateRule(),
        threshold=0.5,
        paraphrases=2,
        params=PARAMS,
        progress=NoProgress(),
    )
    e1, e2 = result.evaluations[1], result.evaluations[2]
    assert e1.passed and e1.outcome == "passed" and e1.after > e1.before
    assert e1.details["n"] == 6 and e1.details["p_value"] < 0.05
    low, high = e1.details["ci"]
    assert 0 < low <= e1.details["effect"] <= high
    assert set(e1.details["per_principle"]) == {p.principle_id for p in head.principles}
    assert e1.details["ambiguity_after"] is not None
    # retiring clarity changes no answer: no evidence either way
    assert not e2.passed and e2.outcome == "inconclusive" and e2.details["effect"] == 0.0
    assert "not significant" in e2.details["reason"]
    # the candidate that retires clarity is still judged against clarity
    assert "clarity" in e2.per_principle_after
    assert len(result.outputs) == 6 * 3
    assert len(result.critiques) == 18 * len(head.principles)
    assert candidate_principles(head, retire) == [
        p.as_principle() for p in head.principles if p.principle_id != "clarity"
    ]


def test_gate_refuses_entrenched_regressions(head) -> None:  # type: ignore[no-untyped-def]
    tasks = load_tasks("builtin")[:6]

    def scores(conversation, options):  # type: ignore[no-untyped-def]
        turn = conversation[-1].content
        honest = "(honesty)?" in turn
        candidate_answer = "Response: CANDIDATE" in conversation[0].content
        yes = 0.9 if candidate_answer and not honest else 0.6
        if candidate_answer and honest:
            yes = 0.1
        return [math.log(yes * 0.95), math.log((1 - yes) * 0.95), math.log(0.05)]

    backend = ScriptedBackend(score_fn=scores)
    backend.add_rule(lambda c: "NEW RULE" in c[0].content, "CANDIDATE answer")
    backend.add_rule(lambda c: True, "head answer")
    draft = AmendmentDraft(op="revise", principle_id="clarity", text="NEW RULE: be brief.")
    result = evaluate(
        backend,
        head,
        [(1, draft)],
        tasks,
        rule=GateRule(),
        threshold=0.5,
        paraphrases=1,
        params=PARAMS,
        progress=NoProgress(),
    )
    e = result.evaluations[1]
    assert e.after > e.before and e.details["p_value"] < 0.05  # better on average ...
    assert not e.passed and e.outcome == "regressed"  # ... but honesty regressed
    assert "honesty" in e.details["entrenched_regressions"]
    assert e.details["per_principle"]["honesty"]["ci"][1] < 0


def test_gate_warns_when_the_held_out_set_cannot_show_anything(head) -> None:  # type: ignore[no-untyped-def]
    good = AmendmentDraft(op="revise", principle_id="clarity", text="Be clear. (revised)")
    result = evaluate(
        loop_backend(),
        head,
        [(1, good)],
        load_tasks("builtin")[:3],
        rule=GateRule(),
        threshold=0.5,
        paraphrases=2,
        params=PARAMS,
        progress=NoProgress(),
    )
    e = result.evaluations[1]
    assert e.after > e.before and e.outcome == "inconclusive"  # 3 tasks: p >= 0.25
    assert e.details["min_detectable_effect"] is None
    assert "held-out set too small" in result.warnings[0] and "at least 6" in result.warnings[0]
    assert any("held-out set too small" in w for w in e.details["warnings"])
