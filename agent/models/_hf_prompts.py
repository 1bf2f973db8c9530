"""A generation batch's prompts, computed into a decode-ready cache with each shared run of
tokens computed once.

The proposer asks for three variants of every draft; each request follows the system turn
and one of a few worked examples, so its rows share long leading runs of tokens in a
pattern that one batch-wide prefix does not capture, and their lengths differ after it.
Here the rows are taken in token order and each row's keys and values extend those of the
row before it from the tokens they share (or of the cached prefix it shares the most with,
`PrefixCache.nearest`; the caller's `shared_prefix` is computed once and kept there): as in
a trie, every distinct leading run is computed once, and no pad token is ever computed.
(In token order, no earlier row shares more with a row than the one just before it.)
The decode loop's first step then computes every row's last token, one more pass over the
weights than a padded batch needs: `worth_it` says when the tokens saved pay for it.

Guarantees:
- row r's cache holds its tokens but the last, right-aligned in `width = max(len) - 1`
  columns (`[pads | prompt_r]`, the layout `left_padded` gives for `cached = len - 1`), so
  the decode loop's first step feeds every row's last token;
- each row's keys and values equal those of the row run alone, to within float rounding;
- the layers are `ReservedLayer`s with room for the tokens to come, reserved `ROOM_STEP`
  columns at a time: a decode step writes one column instead of copying the whole cache,
  as `DynamicLayer` does at every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer

from agent.models._hf_prefix import PrefixCache, common_prefix_length

ROOM_STEP = 64
"""Columns a cache reserves at a time: most replies end well before their token budget, and
reserving the whole budget up front for a batch of long prompts costs hundreds of MB."""
Slot = tuple[int, int]  # (row, prompt length) of a row already written into the buffers


class ReservedLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values are views of buffers with room for the tokens
    still to come. The views hold the same values in the same shape as `DynamicLayer`'s
    tensors, so attention computes the same numbers."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
        super().__init__()
        self.device = keys.device
        self.is_initialized = True
        self._keys, self._values, self._length = keys, values, length
        self.keys = keys[..., :length, :]
        self.values = values[..., :length, :]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self._length, self._length + key_states.shape[-2]
        if end > self._keys.shape[-2]:
            room = max(end - start, ROOM_STEP)
            self._keys = _with_room(self._keys[..., :start, :], room)
            self._values = _with_room(self._values[..., :start, :], room)
        self._keys[..., start:end, :] = key_states
        self._values[..., start:end, :] = value_states
        self._length = end
        self.keys = self._keys[..., :end, :]
        self.values = self._values[..., :end, :]
        return self.keys, self.values

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        if self.keys is not None:
            self._length = self.keys.shape[-2]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows `indices` (the decode loop drops finished sampled rows)."""
        self._keys = self._keys[indices]
        self._values = self._values[indices]
        self.keys = self._keys[..., : self._length, :]
        self.values = self._values[..., : self._length, :]


def _with_room(tensor: torch.Tensor, room: int) -> torch.Tensor:
    batch, heads, length, dim = tensor.shape
    buffer = tensor.new_zeros((batch, heads, length + room, dim))
    buffer[..., :length, :] = tensor
    return buffer


def reserve(cache: DynamicCache, room: int) -> None:
    """Give every plain layer of a filled `cache` room for `room` more tokens (at most
    `ROOM_STEP` now, more as they come)."""
    room = min(room, ROOM_STEP)
    layers = []
    for layer in cache.layers:
        if type(layer) is DynamicLayer and layer.keys is not None and layer.values is not None:
            length = layer.keys.shape[-2]
            layer = ReservedLayer(
                _with_room(layer.keys, room), _with_room(layer.values, room), length
            )
        layers.append(layer)
    cache.layers = layers


def plain_layers(model: PreTrainedModel) -> bool:
    """Whether every layer of the model's cache is a plain `DynamicLayer` (no sliding
    window, no linear attention): the layout `prompt_cache` builds."""
    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)


STEP_TOKENS = 32
"""What the decode loop's extra first step (every row's last token, one weight pass) costs,
in prompt tokens computed: the trie's layout must save more than this to be worth it."""


def worth_it(prefixes: PrefixCache, rows: Sequence[Sequence[int]], shared: int) -> bool:
    """Whether `prompt_cache` computes fewer tokens, by more than `STEP_TOKENS`, than a
    left-padded batch after the `shared` prefix: where rows share runs beyond it (the
    proposer's worked examples) or a cached prefix covers more of them than `shared`."""
    padded = len(rows) * (max(len(r) for r in rows) - shared)
    trie, previous = 0, None
    for row in sorted(rows, key=list):
        start = shared
        if not shared:
            reused, kv = prefixes.nearest(row)
            start = reused if kv is not None and reused >= prefixes.min_reuse else 0
        if previous is not None:
            start = max(start, common_prefix_length([row, previous]))
        trie += max(len(row) - 1 - min(start, len(row) - 1), 0)
        previous = row
    return trie + STEP_TOKENS < padded


def prompt_cache(
    prefixes: PrefixCache, rows: Sequence[Sequence[int]], shared: int, room: int
) -> DynamicCache:
    """The cache of every row's tokens but its last (see the module docstring); the first
    `shared` tokens of the rows are the caller's shared prefix, kept in `prefixes`."""
    model = prefixes.model
    width = max(len(r) for r in rows) - 1
    buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
    previous: Slot | None = None
    for r in sorted(range(len(rows)), key=lambda i: list(rows[i])):
        tokens = list(rows[r][:-1])
        start, base = _base(prefixes, tokens, shared, rows, previous, buffers, width)
        kv = _extend(model, tokens[start:], base)
        if not buffers:
            buffers = [
                (
                    k.new_zeros((len(rows), k.shape[1], width + min(room, ROOM_STEP), k.shape[3])),
                    v.new_zeros((len(rows), v.shape[1], width + min(room, ROOM_STEP), v.shape[3])),
                )
                for k, v in kv
            ]
        for (keys, values), (k, v) in zip(buffers, kv, strict=True):
            keys[r, :, width - len(tokens) : width] = k[0]
            values[r, :, width - len(tokens) : width] = v[0]
        previous = (r, len(tokens))
    cache = DynamicCache(config=model.config)
    cache.layers = [ReservedLayer(keys, values, width) for keys, values in buffers]
    return cache


def _base(
    prefixes: PrefixCache,
    tokens: list[int],
    shared: int,
    rows: Sequence[Sequence[int]],
    previous: Slot | None,
    buffers: list[tuple[torch.Tensor, torch.Tensor]],
    width: int,
) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]:
    """How many leading tokens of a row are already computed, and their per-layer keys and
    values (batch 1): from the row before it in token order, or from the prefix cache."""
    if shared:
        cached, kv = shared, prefixes.get(tokens[:shared])
    else:
        cached, nearest = prefixes.nearest(tokens)
        cached, kv = (cached, nearest) if nearest and cached >= prefixes.min_reuse else (0, [])
    cached = min(cached, len(tokens))
    if previous is not None:
        row, length = previous
        after = common_prefix_length([tokens, rows[row][:length]])
        if after > cached:
            at = width - length
            kv = [(k[row : row + 1, :, at:], v[row : row + 1, :, at:]) for k, v in buffers]
            cached = after
    return cached, [(k[:, :, :cached], v[:, :, :cached]) for k, v in kv]


def _extend(
    model: PreTrainedModel, rest: list[int], base: list[tuple[torch.Tensor, torch.Tensor]]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The keys and values of `base`'s tokens followed by `rest` (batch 1)."""
    if not rest:
        return base
    cache = (
        DynamicCache(ddp_cache_data=base, config=model.config)
        if base
        else DynamicCache(config=model.config)
    )
    ids = torch.tensor([rest], dtype=torch.long, device=model.device)
    with torch.inference_mode():
        model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
    return [(layer.keys, layer.values) for layer in cache.layers]  # type: ignore[union-attr,misc]
