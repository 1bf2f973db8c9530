"""Packed scoring: every question about one output in one row after the cached prefix, a
token tree under a 4D mask; the scores equal the row-per-question layout's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from agent._prompts import JUDGE_OPTIONS, judge_prefix, judge_turn
from agent.models import ChatMessage
from agent.models._hf_packed import Job, pack, plan
from principles import Task, default_seed

PRINCIPLES = list(default_seed().principles)
TASK = Task(id="t1", prompt="What is the boiling point of water at sea level?")
ANSWER = "Water boils at 100 degrees Celsius at sea level."
BLOCKED = torch.finfo(torch.float32).min


def test_shared_tokens_are_laid_out_once_and_each_token_sees_only_its_ancestors() -> None:
    prefix = [7, 8, 9]
    jobs = [Job([*prefix, 1, 2, 3], 6), Job([*prefix, 1, 2, 4, 5], 5), Job([*prefix, 6], 4)]
    packed = pack(jobs, len(prefix), torch.float32)
    assert packed.input_ids.tolist() == [[1, 2, 3, 4, 5, 6]]
    assert packed.position_ids.tolist() == [[3, 4, 5, 5, 6, 3]]
    visible = (packed.mask[0, 0] == 0).int().tolist()
    # every node attends to the whole prefix, then to its own path in the tree only
    assert visible == [
        [1, 1, 1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 1, 0, 1, 0, 0],
        [1, 1, 1, 1, 1, 0, 1, 1, 0],
        [1, 1, 1, 0, 0, 0, 0, 0, 1],
    ]
    assert packed.mask[0, 0, 0, 4] == BLOCKED
    # reads: the prompt's last token, then every option token but the last
    assert packed.reads == [[2], [1, 3], [5]]


def test_plan_starts_a_new_pack_when_the_tree_would_pass_the_budget() -> None:
    jobs = [Job([0, 1, 2, 3], 4), Job([0, 1, 2, 4], 4), Job([0, 5, 6, 7], 4)]
    assert plan(jobs, 1, 5) == [[0, 1], [2]]
    assert plan(jobs, 1, 6) == [[0, 1], [2]]
    assert plan(jobs, 1, 7) == [[0, 1, 2]]
    # a job longer than the budget still gets a pack of its own
    assert plan([Job(list(range(10)), 10)], 0, 3) == [[0]]


@pytest.fixture
def layouts(default_backend: Any) -> Iterator[Any]:
    """The default model, given back in its default (packed) layout afterwards."""
    yield default_backend
    default_backend.score_layout = "packed"
    default_backend.pack_tokens = 2048


def _both(backend: Any, call: Any) -> tuple[Any, Any]:
    backend.score_prefix_cache.clear()
    backend.score_layout = "packed"
    packed = call()
    backend.score_layout = "rows"
    rows = call()
    backend.score_layout = "packed"
    return packed, rows


def _close(got: list[list[float]], want: list[list[float]], rel: float = 0.0) -> None:
    assert len(got) == len(want)
    for row_got, row_want in zip(got, want, strict=True):
        assert row_got == pytest.approx(row_want, abs=1e-4, rel=rel)


@pytest.mark.slow
def test_packed_critic_scores_equal_the_row_layout_on_the_default_model(layouts: Any) -> None:
    prefix = judge_prefix(PRINCIPLES, TASK, ANSWER)
    prompts = [judge_turn(p, k) for p in PRINCIPLES for k in range(3)]
    packed, rows = _both(
        layouts, lambda: layouts.score_options(prompts, JUDGE_OPTIONS, shared_prefix=prefix)
    )
    _close(packed, rows)
    assert packed != [[0.0] * 3] * len(prompts)


@pytest.mark.slow
def test_packed_multi_token_options_equal_the_row_layout(layouts: Any) -> None:
    options = ["Yes, it does.", "No, it does not.", "Not applicable here"]
    assert all(len(layouts.tokenizer(o)["input_ids"]) > 1 for o in options)
    prefix = judge_prefix(PRINCIPLES, TASK, ANSWER)
    prompts = [judge_turn(p, 0) for p in PRINCIPLES[:5]]
    packed, rows = _both(
        layouts, lambda: layouts.score_options(prompts, options, shared_prefix=prefix)
    )
    _close(packed, rows)


@pytest.mark.slow
def test_packed_features_equal_the_row_layout_across_several_packs(layouts: Any) -> None:
    prefix = judge_prefix(PRINCIPLES, TASK, ANSWER)
    prompts = [judge_turn(p, 1) for p in PRINCIPLES]
    layouts.pack_tokens = 64  # several packs

    def call() -> Any:
        return layouts.score_with_features(prompts, JUDGE_OPTIONS, shared_prefix=prefix, layer=-4)

    packed, rows = _both(layouts, call)
    _close([s.logprobs for s in packed], [s.logprobs for s in rows])
    # Hidden states reach the hundreds, where float32 rounding alone is about 3e-5 per
    # operation: they agree to float32's relative precision, not to an absolute 1e-4.
    _close([s.features for s in packed], [s.features for s in rows], rel=1e-6)


@pytest.mark.slow
def test_packed_scores_without_a_shared_prefix_equal_the_row_layout(layouts: Any) -> None:
    prompts = [
        [ChatMessage(role="user", content=q)]
        for q in ("Is the sky blue? Yes or No.", "Is fire cold? Yes or No.", "Is 2 > 1?")
    ]
    packed, rows = _both(layouts, lambda: layouts.score_options(prompts, ["Yes", "No"]))
    _close(packed, rows)
