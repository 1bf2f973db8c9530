"""A lean decode loop for the transformers backend, in place of `model.generate`.

It keeps only what Charter's requests use (greedy or top-k/top-p sampling, EOS, stop
strings, a token budget, a grammar, a cache of the prompts, left-padded batches) and
removes what was measured to cost time: transformers' per-module machinery in every
forward step (`_hf_llama.step` for Llama models), the copy of the whole key/value cache at
every step (`_hf_prompts.ReservedLayer`), two sorts of the whole vocabulary per sampled row
and step (`_choose`), the EOS step after a grammar's last token, and, when sampling, the
rows that have already ended.

Guarantees:
- greedy decoding makes, on the same batch, the forward calls `generate` makes (the
  uncached tokens, position ids counted over attended tokens, the 2D mask or none when
  nothing is padded, the last position's logits), bit for bit, so its tokens are
  `generate`'s;
- sampling applies, in `generate`'s order, the grammar mask, the temperature, top-k and
  top-p, then draws one token per row as `torch.multinomial` does, drawing the random
  numbers of the whole batch: with the same seed it draws the tokens `generate` draws, but
  where float rounding tips a draw;
- a row ends at an EOS token, at the step whose text first contains a stop string (the
  text keeps it: the caller cuts), as soon as its grammar is complete and allows nothing
  but a stop token (the closing brace of a JSON object), or at the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import (
    Cache,
    DynamicCache,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from agent.models import _hf_llama as llama
from agent.models._hf_prompts import reserve


class RowGrammar(Protocol):
    """Per-row constrained decoding: masks a step's logits, follows the chosen tokens."""

    def mask(self, logits: torch.Tensor, rows: Sequence[int]) -> None:
        """Set to -inf, in place, every token that would leave its row's grammar; row i of
        `logits` is row `rows[i]` of the batch as it began."""
        ...

    def accept(self, row: int, token: int) -> bool:
        """Advance row `row` by `token`; True once the row's grammar allows nothing else
        than a stop token (its reply is complete)."""
        ...


@dataclass(frozen=True)
class Batch:
    """Rows laid out by `left_padded`: `input_ids` and `mask` (0 on the pads) span all
    columns; `cache` holds the keys and values of the first `cached` columns, per row, or
    is None (nothing cached)."""

    input_ids: torch.Tensor
    mask: torch.Tensor
    cache: DynamicCache | None = None
    cached: int = 0


@dataclass(frozen=True)
class Decoding:
    """How to pick tokens and when to stop. `temperature == 0` is greedy.

    `top_k` defaults to 50 because that is what `model.generate` has always applied to
    Charter's sampled replies: a `GenerationConfig(top_k=None)` is filled with
    transformers' default of 50; 0 turns it off.
    """

    max_new_tokens: int
    eos_ids: Sequence[int]
    pad_id: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 50
    stop: Sequence[str] = ()


def left_padded(
    rows: Sequence[Sequence[int]], cached: Sequence[int], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask for `rows` whose first `cached[r]` tokens are in the
    cache: `[pads | cached_r | pads | rest_r]`, the cached parts right-aligned in
    `max(cached)` columns and the rests after them, so that every row's next token is in
    the same column. One shared prefix gives `[prefix | pads | suffix]`; `prompt_cache`'s
    rows (`cached = len - 1`) give `[pads | prompt_r | last token]`."""
    width = max(cached)
    suffixes = [list(row[n:]) for row, n in zip(rows, cached, strict=True)]
    total = width + max(len(s) for s in suffixes)
    input_ids = torch.full((len(rows), total), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), total), dtype=torch.long)
    for r, (row, n, suffix) in enumerate(zip(rows, cached, suffixes, strict=True)):
        input_ids[r, width - n : width] = torch.tensor(list(row[:n]), dtype=torch.long)
        input_ids[r, total - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
        mask[r, width - n : width] = 1
        mask[r, total - len(suffix) :] = 1
    return input_ids, mask


def decode(
    model: PreTrainedModel,
    batch: Batch,
    decoding: Decoding,
    *,
    tokenizer: PreTrainedTokenizerBase | None = None,
    grammar: RowGrammar | None = None,
) -> list[list[int]]:
    """The new tokens of each row, up to and including the token that ended it (an EOS,
    the last token of a stop string or of a complete grammar), or the budget's last.

    Greedy decoding keeps every row in the batch to the end (fed a pad token once it has
    ended), so that every forward call is `generate`'s and so are the tokens. Sampled
    decoding drops the rows that have ended, which makes the later steps cheaper; it still
    draws the random numbers of the whole batch, so a row's draws are `generate`'s and its
    tokens differ only where float rounding in the smaller batch tips a draw.
    """
    if decoding.stop and tokenizer is None:
        raise ValueError("stop strings need the tokenizer")
    sampling = decoding.temperature > 0
    rows = batch.input_ids.shape[0]
    device = model.device
    mask: torch.Tensor | None = batch.mask.to(device)
    positions = (batch.mask.cumsum(-1) - 1).masked_fill(batch.mask == 0, 0).to(device)
    if bool((batch.mask == 1).all()):
        mask = None
    cache = batch.cache if batch.cache is not None else DynamicCache(config=model.config)
    forward = _forward(model)
    eos = set(decoding.eos_ids)
    out: list[list[int]] = [[] for _ in range(rows)]
    in_batch = list(range(rows))  # the batch's rows, by their index in `out`
    ended: set[int] = set()
    step_ids = batch.input_ids[:, batch.cached :].to(device)
    step_positions = positions[:, batch.cached :]
    with torch.inference_mode():
        for step in range(decoding.max_new_tokens):
            logits = forward(step_ids, step_positions, mask, cache)
            if step == 0:
                reserve(cache, decoding.max_new_tokens)
            if grammar is not None:
                grammar.mask(logits, in_batch)
            chosen = _choose(logits, decoding, rows, in_batch) if sampling else _argmax(logits)
            for r, token in zip(in_batch, chosen, strict=True):
                if r not in ended:
                    out[r].append(token)
                    if _ended(out[r], eos, decoding, tokenizer, grammar, r):
                        ended.add(r)
            if len(ended) == rows:
                break
            if sampling and ended.intersection(in_batch):
                keep = [i for i, r in enumerate(in_batch) if r not in ended]
                _select(cache, keep)
                in_batch, chosen = [in_batch[i] for i in keep], [chosen[i] for i in keep]
                step_positions = step_positions[keep]
                mask = mask[keep] if mask is not None else None
            tokens = [
                decoding.pad_id if r in ended else t for r, t in zip(in_batch, chosen, strict=True)
            ]
            step_ids = torch.tensor(tokens, dtype=torch.long, device=device)[:, None]
            step_positions = step_positions[:, -1:] + 1
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones((len(in_batch), 1))], dim=-1)
    return out


Forward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, Cache], torch.Tensor]


def _forward(model: PreTrainedModel) -> Forward:
    """A step's float32 last-position logits: `_hf_llama.step` where it computes the model's
    forward (bitwise), else the model's own forward with `generate`'s arguments."""
    if llama.supports(model):
        return lambda ids, positions, mask, cache: llama.step(
            model,  # type: ignore[arg-type]
            ids,
            positions,
            mask,
            cache,
        )

    def call(
        ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None, cache: Cache
    ) -> torch.Tensor:
        out = model(
            input_ids=ids,
            position_ids=positions,
            attention_mask=mask,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
            return_dict=True,
        )
        logits: torch.Tensor = out.logits[:, -1].to(copy=True, dtype=torch.float32)
        return logits

    return call


def _select(cache: Cache, keep: list[int]) -> None:
    """Keep only the batch rows `keep` in every layer of `cache`."""
    index = torch.tensor(keep, dtype=torch.long)
    for layer in cache.layers:
        layer.batch_select_indices(index.to(layer.keys.device))  # type: ignore[union-attr]


def reference(
    model: PreTrainedModel,
    batch: Batch,
    decoding: Decoding,
    tokenizer: PreTrainedTokenizerBase,
    processors: Sequence[LogitsProcessor] = (),
) -> list[list[int]]:
    """`decode`'s result computed by `model.generate` (with xgrammar's processor for a
    grammar): the reference the lean loop is tested and measured against. Rows end at the
    same tokens, except that a grammar's row also spends a step on its EOS."""
    sampling = decoding.temperature > 0
    config = GenerationConfig(
        max_new_tokens=decoding.max_new_tokens,
        do_sample=sampling,
        temperature=decoding.temperature if sampling else None,
        top_p=decoding.top_p if sampling else None,
        top_k=decoding.top_k if sampling else None,
        pad_token_id=decoding.pad_id,
        eos_token_id=list(decoding.eos_ids),
        stop_strings=list(decoding.stop) or None,
    )
    extra: dict[str, Any] = {"cache": batch.cache} if batch.cache is not None else {}
    with torch.inference_mode():
        out = model.generate(  # type: ignore[operator]
            input_ids=batch.input_ids,
            attention_mask=batch.mask,
            generation_config=config,
            logits_processor=LogitsProcessorList(list(processors)),
            tokenizer=tokenizer if decoding.stop else None,
            **extra,
        )
    eos = set(decoding.eos_ids)
    rows: list[list[int]] = []
    for generated in out[:, batch.input_ids.shape[1] :].tolist():
        ends = [i for i, token in enumerate(generated) if token in eos]
        rows.append(generated[: ends[0] + 1] if ends else generated)
    return rows


def _argmax(logits: torch.Tensor) -> list[int]:
    return [int(t) for t in torch.argmax(logits, dim=-1).tolist()]


def _choose(logits: torch.Tensor, decoding: Decoding, rows: int, in_batch: list[int]) -> list[int]:
    """One draw per batch row, as `generate` draws it, computed on the top-k candidates
    only: `generate` sorts and normalises the whole vocabulary per row and step (its top-p
    warper, then the softmax), though nothing outside the top k keeps any mass; at batch 8
    that took about as long as the forward pass itself (bench/_generation.py).

    The steps are `generate`'s: temperature, top-k, top-p over the ascending cumulative
    probabilities (the largest always kept), softmax, then `torch.multinomial`'s draw, the
    argmax of the probabilities over exponential noise, with the noise of all `rows`
    drawn in order so that a row's draw does not depend on which rows remain. Only the
    order of a few float sums differs, so a draw can differ where rounding tips it (and
    where several tokens tie at the k-th logit, which `generate` keeps all of)."""
    if decoding.temperature != 1.0:
        logits = logits / decoding.temperature
    vocab = logits.shape[-1]
    k = decoding.top_k if 0 < decoding.top_k < vocab else vocab
    values, indices = torch.topk(logits, k)
    ascending, tokens = values.flip(-1), indices.flip(-1)
    if decoding.top_p < 1.0:
        drop = ascending.softmax(-1).cumsum(-1) <= 1 - decoding.top_p
        drop[..., -1] = False
        ascending = ascending.masked_fill(drop, float("-inf"))
    probs = ascending.softmax(-1)
    noise = torch.empty((rows, vocab), dtype=probs.dtype).exponential_(1)
    if len(in_batch) < rows:
        noise = noise[in_batch]
    picked = torch.argmax(probs / noise.to(probs.device).gather(1, tokens), dim=-1)
    return [int(t) for t in tokens.gather(1, picked[:, None]).squeeze(1).tolist()]


def _ended(
    tokens: list[int],
    eos: set[int],
    decoding: Decoding,
    tokenizer: PreTrainedTokenizerBase | None,
    grammar: RowGrammar | None,
    row: int,
) -> bool:
    last = tokens[-1]
    if last in eos:
        return True
    if grammar is not None and grammar.accept(row, last):
        return True
    if decoding.stop and tokenizer is not None:
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        return any(s and s in text for s in decoding.stop)
    return False
