"""The lean decode loop's parts on a tiny random Llama: no download, a few seconds."""

from __future__ import annotations

from typing import Any

import pytest
import torch

pytest.importorskip("transformers")

from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from agent.models._hf_decode import Batch, Decoding, decode, left_padded, reference
from agent.models._hf_prefix import PrefixCache
from agent.models._hf_prompts import prompt_cache

PAD = 0
SYSTEM = [5, 9, 17, 33, 2, 8, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51]
ROWS = [
    [*SYSTEM, 60, 61, 62, 63, 70, 71],
    [*SYSTEM, 60, 61, 62, 63, 72, 73, 74, 75],
    [*SYSTEM, 90, 91, 92, 70],
    [*SYSTEM, 60, 61, 62, 63, 70, 71],
    [7, 7, 7, 8],
]


@pytest.fixture(scope="module")
def model() -> Any:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=PAD,
        bos_token_id=1,
        eos_token_id=2,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(config).eval()


def _padded(rows: list[list[int]]) -> Batch:
    ids, mask = left_padded(rows, [0] * len(rows), PAD)
    return Batch(ids, mask)


def _cached(model: Any, rows: list[list[int]], room: int) -> Batch:
    cache = prompt_cache(PrefixCache(model), rows, 0, room)
    ids, mask = left_padded(rows, [len(r) - 1 for r in rows], PAD)
    return Batch(ids, mask, cache, max(len(r) for r in rows) - 1)


def test_the_lean_step_gives_the_models_logits_bit_for_bit(model: Any) -> None:
    from agent.models import _hf_llama as llama

    assert llama.supports(model)
    batch = _padded(ROWS[:3])
    positions = (batch.mask.cumsum(-1) - 1).masked_fill(batch.mask == 0, 0)
    with torch.inference_mode():
        caches = [DynamicCache(config=model.config) for _ in range(2)]
        ours = llama.step(model, batch.input_ids, positions, batch.mask, caches[0])
        theirs = model(
            input_ids=batch.input_ids,
            position_ids=positions,
            attention_mask=batch.mask,
            cache=caches[1],
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1]
    assert torch.equal(ours, theirs)


def test_prompt_cache_holds_each_row_as_if_run_alone_and_computes_shared_runs_once(
    model: Any,
) -> None:
    fed: list[int] = []
    hook = model.model.embed_tokens.register_forward_hook(
        lambda _m, args, _out: fed.append(args[0].numel())
    )
    try:
        cache = prompt_cache(PrefixCache(model), ROWS, 0, room=4)
    finally:
        hook.remove()
    nodes = {tuple(row[: i + 1]) for row in ROWS for i in range(len(row) - 1)}
    assert sum(fed) == len(nodes)
    width = max(len(r) for r in ROWS) - 1
    for r, row in enumerate(ROWS):
        with torch.inference_mode():
            alone = model(input_ids=torch.tensor([row[:-1]]), use_cache=True).cache
        for layer, mine in zip(alone.layers, cache.layers, strict=True):
            keys = mine.keys[r]
            assert torch.allclose(keys[:, width - len(row) + 1 :], layer.keys[0], atol=1e-5)
            assert not keys[:, : width - len(row) + 1].any()


@pytest.mark.parametrize("cached", [False, True])
def test_greedy_decoding_gives_generates_tokens(model: Any, cached: bool) -> None:
    decoding = Decoding(12, (2,), PAD)
    make = (lambda: _cached(model, ROWS, 12)) if cached else (lambda: _padded(ROWS))
    assert decode(model, make(), decoding) == reference(model, make(), decoding, None)  # type: ignore[arg-type]


def test_sampling_draws_generates_tokens_though_ended_rows_leave_the_batch(model: Any) -> None:
    decoding = Decoding(16, tuple(range(3, 128, 9)), PAD, temperature=0.9, top_p=0.9, top_k=40)
    torch.manual_seed(3)
    lean = decode(model, _cached(model, ROWS, 16), decoding)
    torch.manual_seed(3)
    old = reference(model, _cached(model, ROWS, 16), decoding, None)  # type: ignore[arg-type]
    assert len({len(row) for row in lean}) > 1  # rows ended at different steps
    assert lean == old
