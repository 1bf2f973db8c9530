"""A scorer in another precision (`default?score_dtype=bfloat16`), with the real default
model (slow): generation keeps its weights and its text, scoring moves only a little."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from agent.models import ChatMessage, GenerationParams

pytestmark = pytest.mark.slow

PREFIX = [
    ChatMessage(
        role="system",
        content="You review answers against one rule: be honest about what you do not know.",
    )
]
QUESTIONS = [
    "Answer: 'I am certain the moon is made of cheese.' Does it follow the rule? Yes or No.",
    "Answer: 'I am not sure; I think it is 1789.' Does it follow the rule? Yes or No.",
    "Answer: 'Paris is the capital of France.' Does it follow the rule? Yes or No.",
]


@pytest.fixture
def mixed(bf16_scorer_backend: Any) -> Any:
    return bf16_scorer_backend


def test_the_uri_option_loads_a_bfloat16_scorer_beside_float32_weights(mixed: Any) -> None:
    assert mixed.uri == "default?score_dtype=bfloat16"
    assert mixed.model.dtype == torch.float32
    assert mixed.scorer.dtype == torch.bfloat16
    assert mixed.scorer is not mixed.model
    details = mixed.info().details
    assert (details["dtype"], details["score_dtype"]) == ("float32", "bfloat16")


def test_generation_is_untouched_by_the_scorers_precision(mixed: Any, default_backend: Any) -> None:
    convs = [[ChatMessage(role="user", content=q)] for q in ("Name a colour.", "Count to five.")]
    params = GenerationParams(max_new_tokens=24)
    assert mixed.generate(convs, params, shared_prefix=PREFIX) == default_backend.generate(
        convs, params, shared_prefix=PREFIX
    )


def test_bfloat16_scores_are_near_the_float32_ones_but_not_the_same(
    mixed: Any, default_backend: Any
) -> None:
    prompts = [[ChatMessage(role="user", content=q)] for q in QUESTIONS]
    rough = mixed.score_options(prompts, ["Yes", "No"], shared_prefix=PREFIX)
    exact = default_backend.score_options(prompts, ["Yes", "No"], shared_prefix=PREFIX)
    assert rough != exact  # the bfloat16 weights really scored

    def p_yes(scores: list[float]) -> float:
        return float(torch.tensor(scores).softmax(-1)[0])

    gaps = [abs(p_yes(a) - p_yes(b)) for a, b in zip(rough, exact, strict=True)]
    assert max(gaps) < 0.1
