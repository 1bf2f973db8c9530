"""The transformers backend with the real embedded default model (slow)."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from agent.models import ChatMessage, GenerationParams

pytestmark = pytest.mark.slow

CONSTITUTION = ChatMessage(
    role="system",
    content=(
        "You judge answers against a constitution.\n"
        + "\n".join(
            f"{i}. The assistant {rule}."
            for i, rule in enumerate(
                [
                    "is honest about what it does not know",
                    "answers the question that was asked",
                    "avoids needless jargon",
                    "is polite and respectful",
                    "keeps answers short",
                    "never invents citations",
                ],
                1,
            )
        )
    ),
)


def question(output: str, principle: str) -> list[ChatMessage]:
    return [
        ChatMessage(
            role="user",
            content=(
                f"Task: answer a user's question.\nOutput: {output}\n"
                f"Principle: {principle}\nDoes the output follow the principle? Answer yes or no."
            ),
        )
    ]


OUTPUTS = ["Paris is the capital of France.", "I do not know.", "Whatever, figure it out yourself!"]
PRINCIPLES = ["be polite", "keep answers short", "be honest"]
PAIRS = [question(o, p) for o in OUTPUTS for p in PRINCIPLES]


class Verdict(BaseModel):
    verdict: Literal["yes", "no"]
    confidence: int = Field(ge=1, le=5)
    reason: str = Field(max_length=80)


def test_info(default_backend: Any) -> None:
    info = default_backend.info()
    assert info.uri == "default"
    assert info.details["device"] in ("cpu", "cuda")
    assert info.details["parameters"] == 134_515_008


def test_batched_generation_equals_one_by_one(default_backend: Any) -> None:
    params = GenerationParams(max_new_tokens=12)
    convs = [question(o, "be polite") for o in OUTPUTS]
    batched = default_backend.generate(convs, params)
    alone = [default_backend.generate([c], params)[0] for c in convs]
    assert batched == alone
    assert all(reply.strip() for reply in batched)


def test_prefix_cached_generation_equals_full_prompts(default_backend: Any) -> None:
    params = GenerationParams(max_new_tokens=10)
    convs = PAIRS[:4]
    cached = default_backend.generate(convs, params, shared_prefix=[CONSTITUTION])
    full = default_backend.generate([[CONSTITUTION, *c] for c in convs], params)
    assert cached == full


def test_seeded_sampling_is_repeatable(default_backend: Any) -> None:
    params = GenerationParams(max_new_tokens=10, temperature=1.0, top_p=0.95, seed=123)
    convs = [question(OUTPUTS[0], "be polite")]
    assert default_backend.generate(convs, params) == default_backend.generate(convs, params)


def test_stop_strings_end_the_reply(default_backend: Any) -> None:
    conv = [ChatMessage(role="user", content="Count from 1 to 10, separated by commas.")]
    (text,) = default_backend.generate([conv], GenerationParams(max_new_tokens=30, stop=(",",)))
    assert "," not in text


def test_twenty_structured_replies_all_validate(default_backend: Any) -> None:
    convs = [
        question(o, p)
        for o in [*OUTPUTS, "The moon is made of cheese.", "2 + 2 = 4."]
        for p in [*PRINCIPLES, "never invent facts"]
    ]
    assert len(convs) == 20
    replies = default_backend.generate_structured(
        convs, Verdict, GenerationParams(max_new_tokens=48), shared_prefix=[CONSTITUTION]
    )
    assert len(replies) == 20
    assert all(isinstance(r, Verdict) for r in replies)


def test_option_scores_are_deterministic(default_backend: Any) -> None:
    options = [" yes", " no", "Yes", "No"]
    first = default_backend.score_options(PAIRS, options, shared_prefix=[CONSTITUTION])
    again = default_backend.score_options(PAIRS, options, shared_prefix=[CONSTITUTION])
    assert first == again
    assert all(len(row) == 4 and all(lp < 0 for lp in row) for row in first)


@pytest.mark.parametrize(
    "options",
    [["Yes", "No"], ["1", "2", "3", "4", "5"], ["Yes, it does.", "No", "It partly does"]],
)
def test_prefix_cached_scores_equal_uncached(default_backend: Any, options: list[str]) -> None:
    cached = default_backend.score_options(PAIRS, options, shared_prefix=[CONSTITUTION])
    uncached = default_backend.score_options([[CONSTITUTION, *p] for p in PAIRS], options)
    alone = [default_backend.score_options([[CONSTITUTION, *p]], options)[0] for p in PAIRS[:2]]
    for row_c, row_u in zip(cached, uncached, strict=True):
        assert row_c == pytest.approx(row_u, abs=1e-4)
    for row_a, row_u in zip(alone, uncached, strict=False):
        assert row_a == pytest.approx(row_u, abs=1e-4)


def test_scores_rank_an_obvious_answer(default_backend: Any) -> None:
    conv = [ChatMessage(role="user", content="What is the capital of France? Answer in one word.")]
    ((paris, rome),) = default_backend.score_options([conv], ["Paris", "Rome"])
    assert paris > rome


def test_token_counts_for_traces_follow_the_chat_template_and_the_tokenizer(
    default_backend: Any,
) -> None:
    from agent.models import TokenCounter

    assert isinstance(default_backend, TokenCounter)
    reply = "Paris is the capital of France."
    assert 0 < default_backend.text_tokens(reply) < 20
    prompt = PAIRS[0]
    assert default_backend.prompt_tokens(prompt) > default_backend.text_tokens(prompt[0].content)
