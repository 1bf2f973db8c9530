"""The proposer's drafting: several candidates per change, degenerate ones rejected and
recorded, the best-formed kept, nothing proposed when every candidate is junk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import loop_backend, start_run
from agent._drafting import ROUNDS, TEMPERATURE
from agent._progress import NoProgress
from agent._prompts import VARIANTS, revise_request, worked_examples
from agent._proposer import Proposals, propose
from agent.models import ChatMessage, GenerationParams, ScriptedBackend
from principles import (
    Aggregate,
    Constitution,
    Policy,
    PrincipleStats,
    RunConfig,
    check_draft,
    default_seed,
)
from store import Store

PARAMS = GenerationParams(max_new_tokens=64, seed=42)
LOOPED = " ".join(["Be clear and concise in every answer."] * 8)
JUDGES = (
    "This response is not a good example of the principle's text. The judges disagree by "
    "0.04 on the average, and the judges agree by 0.04 on the average."
)
GOOD = "Use plain words and short sentences. Define any technical term the user may not know."
GOOD_BUT_PADDED = "Use plain words and short sentences. Clear writing helps every reader."


@pytest.fixture
def head(tmp_path: Path) -> Iterator[Constitution]:
    with Store(str(tmp_path / "c.db")) as s:
        s.init(default_seed())
        yield s.constitution()


def _stats(pid: str, violations: float = 0.0) -> PrincipleStats:
    return PrincipleStats(
        principle_id=pid,
        judged=10,
        mean=0.9 - violations,
        violation_rate=violations,
        ambiguity=0.0,
        relevance=1.0,
        spread=0.0,
    )


def _clarity_needs_work(head: Constitution) -> Aggregate:
    stats = {p.principle_id: _stats(p.principle_id) for p in head.principles}
    stats["clarity"] = _stats("clarity", 0.8)
    return Aggregate(mean=0.8, per_principle=stats)


def _variant(conversation: list[ChatMessage]) -> int:
    """Which worked example the request showed (its assistant turn)."""
    shown = next(m.content for m in conversation if m.role == "assistant")
    return next(i for i, t in enumerate(worked_examples()) if json.loads(shown)["text"] == t)


def _by_variant(*texts: str) -> ScriptedBackend:
    backend = ScriptedBackend()
    backend.add_rule(lambda _c: True, lambda c: json.dumps({"text": texts[_variant(c)]}))
    return backend


def _propose(backend: ScriptedBackend, head: Constitution) -> Proposals:
    return propose(
        backend,
        head,
        _clarity_needs_work(head),
        [],
        [],
        budget=3,
        run_id=1,
        policy=Policy(),
        params=PARAMS,
        progress=NoProgress(),
    )


def test_each_variant_shows_a_different_worked_example(head: Constitution) -> None:
    clarity = head.get("clarity")
    assert clarity is not None
    requests = [revise_request(clarity.as_principle(), _stats("clarity", 0.8), v) for v in range(3)]
    assert len({json.dumps([m.content for m in r]) for r in requests}) == VARIANTS == 3
    for request in requests:
        assert request[-1].role == "user" and "Be clear and concise" in request[-1].content
        assert "0.8" not in request[-1].content and "80%" not in request[-1].content
    for example in worked_examples():
        assert check_draft(example, original=None) == [], example


def test_degenerate_candidates_are_rejected_with_reasons_and_the_good_one_kept(
    head: Constitution,
) -> None:
    backend = _by_variant(LOOPED, JUDGES, GOOD)
    found = _propose(backend, head)
    [draft] = found.drafts
    assert draft.principle_id == "clarity" and draft.text == GOOD
    assert "violations 80%" in draft.rationale
    assert [(r["principle"], r["op"], r["candidate"]) for r in found.rejected] == [
        ("clarity", "revise", 0),
        ("clarity", "revise", 1),
    ]
    assert {"repetition", "repeated-sentence"} <= set(found.rejected[0]["reasons"])
    assert {"meta-talk", "copied-statistics"} <= set(found.rejected[1]["reasons"])
    assert found.rejected[1]["text"].startswith("This response is not")
    assert all(r["messages"] for r in found.rejected)
    assert found.figures == {
        "attempted": 1,
        "well_formed": 1,
        "candidates": 3,
        "candidates_well_formed": 1,
    }
    # one batched call for all variants, sampled with a seed; no second round was needed
    [call] = backend.history
    assert call.method == "generate_structured" and len(call.conversations) == VARIANTS
    assert call.params is not None and call.params.temperature == TEMPERATURE
    assert call.params.seed is not None


def test_among_well_formed_candidates_the_one_with_more_rules_wins(head: Constitution) -> None:
    found = _propose(_by_variant(GOOD_BUT_PADDED, GOOD, LOOPED), head)
    assert [d.text for d in found.drafts] == [GOOD]
    assert found.figures["candidates_well_formed"] == 2


def test_a_change_whose_candidates_are_all_degenerate_is_not_proposed(
    head: Constitution,
) -> None:
    clarity = head.get("clarity")
    assert clarity is not None
    backend = _by_variant(LOOPED, JUDGES, clarity.text)
    found = _propose(backend, head)
    assert found.drafts == []
    assert len(backend.history) == ROUNDS  # a second round was tried with a new seed
    seeds = {c.params.seed for c in backend.history if c.params is not None}
    assert len(seeds) == ROUNDS
    [skip] = found.skipped
    assert skip.startswith(
        f"revise clarity: every one of {VARIANTS * ROUNDS} candidate drafts was degenerate"
    )
    assert "unchanged" in skip and "meta-talk" in skip
    assert len(found.rejected) == VARIANTS * ROUNDS
    assert found.figures["attempted"] == 1 and found.figures["well_formed"] == 0


def test_the_propose_step_records_drafting_figures_and_rejections(tmp_path: Path) -> None:
    with Store(str(tmp_path / "c.db")) as store:
        store.init(default_seed())
        config: dict[str, Any] = dict(
            model="scripted:loop",
            iterations=1,
            tasks_limit=12,
            train_per_iteration=3,
            heldout_size=2,
            seed=7,
        )
        run = start_run(store, loop_backend(), RunConfig.model_validate(config))
        result = store.step_result(run.id, 1, "propose")
        assert result["rejected_drafts"] == []
        figures = result["drafting"]
        assert figures["attempted"] >= 1 and figures["well_formed"] == figures["attempted"]
        assert figures["candidates"] == figures["attempted"] * VARIANTS
