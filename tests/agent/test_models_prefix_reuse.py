"""The critic's prefix layout on the real default model: the constitution is computed once,
each output's exchange extends it, and the scores equal scores without any cache."""

from __future__ import annotations

from typing import Any

import pytest

from agent._critic import Pair, judge
from agent._progress import NoProgress
from agent._prompts import JUDGE_OPTIONS, judge_prefix, judge_turn
from agent.models import ChatMessage
from principles import Task, default_seed

PRINCIPLES = [p for p in default_seed().principles][:4]
TASKS = [
    Task(id="t1", prompt="What is the boiling point of water at sea level?"),
    Task(id="t2", prompt="Write a haiku about autumn."),
]
ANSWERS = [
    "Water boils at 100 degrees Celsius at sea level.",
    "Red leaves drift and fall / the cold wind hums through bare trees / autumn says goodbye",
]


@pytest.mark.slow
def test_extended_prefixes_score_like_full_prompts(default_backend: Any) -> None:
    cache = default_backend.prefix_cache
    cache.clear()
    before = cache.extended
    cached, full = [], []
    for task, answer in zip(TASKS, ANSWERS, strict=True):
        prefix = judge_prefix(PRINCIPLES, task, answer)
        prompts = [judge_turn(p, 0) for p in PRINCIPLES]
        cached.append(default_backend.score_options(prompts, JUDGE_OPTIONS, shared_prefix=prefix))
        whole: list[list[ChatMessage]] = [[*prefix, *turn] for turn in prompts]
        cache.clear()  # no reuse at all for the reference
        full.append(default_backend.score_options(whole, JUDGE_OPTIONS))
    # the second exchange reused the first one's constitution tokens
    cache.clear()
    for task, answer in zip(TASKS, ANSWERS, strict=True):
        default_backend.score_options(
            [judge_turn(PRINCIPLES[0], 0)],
            JUDGE_OPTIONS,
            shared_prefix=judge_prefix(PRINCIPLES, task, answer),
        )
    assert cache.extended > before
    for got, want in zip(cached, full, strict=True):
        for row_got, row_want in zip(got, want, strict=True):
            assert row_got == pytest.approx(row_want, abs=1e-4)


@pytest.mark.slow
def test_judge_gives_scores_in_range_and_is_deterministic(default_backend: Any) -> None:
    pairs = [Pair(t, a, p) for t, a in zip(TASKS, ANSWERS, strict=True) for p in PRINCIPLES]
    first = judge(default_backend, PRINCIPLES, pairs, 2, NoProgress())
    again = judge(default_backend, PRINCIPLES, pairs, 2, NoProgress())
    assert first == again
    assert all(0.0 <= j.score <= 1.0 and 0.0 <= j.relevance <= 1.0 for j in first)
