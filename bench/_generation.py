"""Generation figures for the transformers backend: the lean decode loop against
`model.generate`, in the same process, on the same prompts.

    .venv/bin/python bench/_generation.py     (offline; converts the default model if needed)

`decode_figures(backend)`: greedy decode tokens/s at batch 1 and 8 for the lean loop
(`agent.models._hf_decode.decode`) and for `model.generate` (`reference`), prefill time
subtracted, and their ratio; the tokens must be identical.
`draft_figures(backend)`: seconds per structured draft, as the proposer asks for them (three
revisions and a merge, three request variants each, sampled at the drafting temperature under
a grammar), through the backend with `decode_loop="generate"` (the old path) and "lean".
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent._drafting import SCHEMAS, TEMPERATURE, TOP_P
from agent._prompts import VARIANTS, merge_request, revise_request
from agent.models import ChatMessage, GenerationParams
from principles import PrincipleStats, default_seed

DECODE_TOKENS = 48
DRAFT_TOKENS = 256
DRAFT_SEED = 1014


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Median wall time of `repeat` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def decode_figures(backend: Any, new_tokens: int = DECODE_TOKENS) -> dict[str, float]:
    """Greedy decode tokens/s at batch 1 and 8, lean loop and `model.generate` alike, with
    the prefill (a 1-token run) subtracted; raises if their tokens differ."""
    from agent.models._hf_decode import decode, reference

    figures: dict[str, float] = {}
    for size in (1, 8):
        prompts = [
            backend.encode([ChatMessage(role="user", content=f"Tell me a story about item {i}.")])
            for i in range(size)
        ]
        old, old_tokens = _decode_rate(backend, reference, prompts, new_tokens)
        new, new_tokens_ = _decode_rate(backend, decode, prompts, new_tokens)
        if old_tokens != new_tokens_:
            raise AssertionError(f"the lean loop's greedy tokens differ at batch {size}")
        figures[f"generate_batch{size}_tok_s"] = round(old, 1)
        figures[f"lean_batch{size}_tok_s"] = round(new, 1)
        figures[f"speedup_batch{size}"] = round(new / old, 2)
    return figures


def _decode_rate(
    backend: Any, loop: Callable[..., list[list[int]]], prompts: list[list[int]], new_tokens: int
) -> tuple[float, list[list[int]]]:
    """Aggregate tokens/s of `loop` over left-padded `prompts`, and the tokens it chose."""
    from agent.models._hf_decode import Batch, Decoding, left_padded

    ids, mask = left_padded(prompts, [0] * len(prompts), backend.pad_id)

    def run(n: int) -> list[list[int]]:
        batch = Batch(ids.to(backend.device), mask.to(backend.device))
        decoding = Decoding(n, tuple(backend.eos_ids), backend.pad_id)
        return loop(backend.model, batch, decoding, tokenizer=backend.tokenizer)

    run(2)
    prefill = timed(lambda: run(1), 3)
    total = timed(lambda: run(new_tokens), 3)
    tokens = run(new_tokens)
    steps = max(len(row) for row in tokens)
    return len(prompts) * (steps - 1) / (total - prefill), tokens


def draft_requests() -> dict[str, list[list[ChatMessage]]]:
    """The proposer's structured requests for one iteration over the default constitution:
    three revisions and a merge, one conversation per request variant."""
    principles = [p for p in default_seed().principles if not p.entrenched]
    stats = PrincipleStats(
        principle_id="",
        judged=6,
        mean=0.4,
        violation_rate=0.5,
        ambiguity=0.3,
        relevance=1.0,
        spread=0.05,
    )
    revise = [revise_request(p, stats, v) for p in principles[:3] for v in range(VARIANTS)]
    a, b = principles[3], principles[4]
    return {"revise": revise, "merge": [merge_request(a, b, v) for v in range(VARIANTS)]}


def _draft(backend: Any, requests: dict[str, list[list[ChatMessage]]]) -> list[str]:
    """The proposer's structured calls, one per operation, sampled as it samples them."""
    params = GenerationParams(
        max_new_tokens=DRAFT_TOKENS, temperature=TEMPERATURE, top_p=TOP_P, seed=DRAFT_SEED
    )
    replies: list[str] = []
    for op, conversations in requests.items():
        schema = SCHEMAS[op]  # type: ignore[index]
        replies += [
            r.model_dump_json() for r in backend.generate_structured(conversations, schema, params)
        ]
    return replies


def draft_figures(
    backend: Any, replaced: Callable[[Callable[[], Any]], Any] = lambda run: run()
) -> dict[str, float]:
    """Seconds per drafted change (one structured reply per request variant) through the
    path that the lean one replaced (`decode_loop="generate"`: batched prefill after the
    shared prefix, `model.generate` with xgrammar's processor) and through the lean path;
    and how many of the sampled replies came out the same (the same seed draws the same
    numbers; rounding differences may tip a draw). The replaced path runs through
    `replaced` (bench/models.py leaves its memory peak out of Charter's)."""
    requests = draft_requests()
    for op in requests:  # grammars compile once per backend: not part of a draft's time
        backend._grammar_factory().compiled(SCHEMAS[op])  # type: ignore[index]
    changes = sum(len(convs) for convs in requests.values()) // VARIANTS
    was = backend.decode_loop
    figures: dict[str, float] = {"changes": changes}
    replies: dict[str, list[str]] = {}
    try:
        for loop in ("generate", "lean"):
            backend.decode_loop = loop
            backend.prefix_cache.clear()
            start = time.perf_counter()
            if loop == "generate":
                replies[loop] = replaced(lambda: _draft(backend, requests))
            else:
                replies[loop] = _draft(backend, requests)
            figures[f"{loop}_s_per_draft"] = round((time.perf_counter() - start) / changes, 2)
    finally:
        backend.decode_loop = was
    figures["speedup"] = round(figures["generate_s_per_draft"] / figures["lean_s_per_draft"], 2)
    figures["replies"] = len(replies["lean"])
    pairs = zip(replies["generate"], replies["lean"], strict=True)
    figures["same_replies"] = sum(old == new for old, new in pairs)
    return figures


def main() -> None:
    from agent.models import load_backend

    backend = load_backend("default")
    for name, value in decode_figures(backend).items():
        print(f"decode  {name:28} {value:8}")
    for name, value in draft_figures(backend).items():
        print(f"drafts  {name:28} {value:8}")


if __name__ == "__main__":
    main()
