"""The lean decode loop against `model.generate`, with the real default model (slow)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import BaseModel, Field

from agent.models import ChatMessage, GenerationParams

pytestmark = pytest.mark.slow

SYSTEM = ChatMessage(
    role="system",
    content="You are a careful critic. You judge answers against a short constitution: "
    "be honest, be polite, keep answers short, never invent citations.",
)
QUESTIONS = [
    "Tell me a story about a cat.",
    "What is the capital of France?",
    "Write a haiku about rain.",
    "Explain gravity to a child in two sentences.",
]


class Draft(BaseModel):
    title: str = Field(min_length=3, max_length=40)
    text: str = Field(min_length=10, max_length=120)


def _batch(backend: Any, count: int, prefix: bool) -> tuple[Any, list[list[int]]]:
    from agent.models._hf_decode import Batch, left_padded

    convs = [[ChatMessage(role="user", content=q)] for q in QUESTIONS[:count]]
    rows, cached = backend._encode_batch(convs, [SYSTEM] if prefix else None)
    ids, mask = left_padded(rows, [cached] * len(rows), backend.pad_id)
    cache = backend.prefix_cache.batch(rows[0][:cached], len(rows)) if cached else None
    return Batch(ids, mask, cache, cached), rows


def _decoding(backend: Any, n: int, **options: Any) -> Any:
    from agent.models._hf_decode import Decoding

    return Decoding(n, tuple(backend.eos_ids), backend.pad_id, **options)


@pytest.mark.parametrize("count", [1, 4])
@pytest.mark.parametrize("prefix", [False, True])
def test_greedy_tokens_equal_generate_token_for_token(
    default_backend: Any, count: int, prefix: bool
) -> None:
    from agent.models._hf_decode import decode, reference

    decoding = _decoding(default_backend, 32)
    lean = decode(default_backend.model, _batch(default_backend, count, prefix)[0], decoding)
    tokenizer = default_backend.tokenizer
    old = reference(
        default_backend.model, _batch(default_backend, count, prefix)[0], decoding, tokenizer
    )
    assert lean == old
    assert all(len(row) > 5 for row in lean)


def test_proposer_like_rows_decode_like_generate_from_the_prompt_cache(
    default_backend: Any,
) -> None:
    """Rows that share a system turn, and in pairs a worked example, as the proposer's do:
    their prompts come from `prompt_cache` (each shared run computed once), greedy decoding
    matches `generate` on that cache, and the replies match full prompts run one by one."""
    from agent.models._hf_decode import Batch, decode, left_padded, reference
    from agent.models._hf_prompts import prompt_cache

    examples = [("Name a fruit.", "An apple."), ("Name a colour.", "Blue.")]
    asks = [ChatMessage(role="user", content=q) for q in QUESTIONS[1:3]]
    convs = [
        [SYSTEM, ChatMessage(role="user", content=q), ChatMessage(role="assistant", content=a), ask]
        for q, a in examples
        for ask in asks
    ]
    rows, _ = default_backend._encode_batch(convs, None)

    def batch() -> Batch:
        cache = prompt_cache(default_backend.prefix_cache, rows, 0, 24)
        ids, mask = left_padded(rows, [len(r) - 1 for r in rows], default_backend.pad_id)
        return Batch(ids, mask, cache, max(len(r) for r in rows) - 1)

    model, tokenizer = default_backend.model, default_backend.tokenizer
    decoding = _decoding(default_backend, 24)
    lean = decode(model, batch(), decoding)
    assert lean == reference(model, batch(), decoding, tokenizer)
    full = [reference(model, _full(default_backend, row), decoding, tokenizer)[0] for row in rows]
    assert tokenizer.batch_decode(lean, skip_special_tokens=True) == tokenizer.batch_decode(
        full, skip_special_tokens=True
    )


def _full(backend: Any, row: list[int]) -> Any:
    from agent.models._hf_decode import Batch, left_padded

    ids, mask = left_padded([row], [0], backend.pad_id)
    return Batch(ids, mask)


def test_stop_strings_end_rows_where_generate_ends_them(default_backend: Any) -> None:
    from agent.models._hf_decode import decode, reference

    decoding = _decoding(default_backend, 40, stop=(".", ","))
    tokenizer = default_backend.tokenizer
    lean = decode(
        default_backend.model, _batch(default_backend, 4, True)[0], decoding, tokenizer=tokenizer
    )
    old = reference(default_backend.model, _batch(default_backend, 4, True)[0], decoding, tokenizer)
    texts = tokenizer.batch_decode(lean, skip_special_tokens=True)
    # generate pads a row that met a stop string with the pad token, here also the EOS
    assert texts == tokenizer.batch_decode(old, skip_special_tokens=True)
    assert all(any(s in text for s in (".", ",")) for text in texts)


def test_seeded_sampling_draws_what_generate_draws(default_backend: Any) -> None:
    from agent.models._hf_decode import decode, reference

    decoding = _decoding(default_backend, 24, temperature=0.7, top_p=0.95)
    torch.manual_seed(7)
    lean = decode(default_backend.model, _batch(default_backend, 4, False)[0], decoding)
    torch.manual_seed(7)
    old = reference(
        default_backend.model,
        _batch(default_backend, 4, False)[0],
        decoding,
        default_backend.tokenizer,
    )
    assert lean == old


@pytest.mark.parametrize("count", [1, 3])
def test_structured_draft_equals_generate_with_xgrammar_and_ends_at_its_brace(
    default_backend: Any, count: int
) -> None:
    from agent.models._hf_decode import decode, reference

    grammars = default_backend._grammar_factory()
    decoding = _decoding(default_backend, 128)
    batch, rows = _batch(default_backend, count, True)
    lean = decode(
        default_backend.model, batch, decoding, grammar=grammars.row_masks(Draft, len(rows))
    )
    old = reference(
        default_backend.model,
        _batch(default_backend, count, True)[0],
        decoding,
        default_backend.tokenizer,
        [grammars.processor(Draft)],
    )
    eos = set(default_backend.eos_ids)
    assert lean == [row[:-1] if row and row[-1] in eos else row for row in old]
    for text in default_backend.tokenizer.batch_decode(lean):
        assert text.endswith("}")
        Draft.model_validate_json(text)


def test_backend_replies_are_the_same_through_either_loop(default_backend: Any) -> None:
    convs = [[ChatMessage(role="user", content=q)] for q in QUESTIONS]
    params = GenerationParams(max_new_tokens=32, stop=("\n",))
    was = default_backend.decode_loop
    try:
        default_backend.decode_loop = "generate"
        old = default_backend.generate(convs, params, shared_prefix=[SYSTEM])
        old_drafts = default_backend.generate_structured(convs[:2], Draft, params)
        default_backend.decode_loop = "lean"
        lean = default_backend.generate(convs, params, shared_prefix=[SYSTEM])
        lean_drafts = default_backend.generate_structured(convs[:2], Draft, params)
    finally:
        default_backend.decode_loop = was
    assert lean == old
    assert lean_drafts == old_drafts
