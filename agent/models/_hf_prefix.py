"""Reusing the key/value cache of a prompt prefix shared by a whole batch.

The critic asks the same constitution (the system turn) before thousands of different
(output, principle) questions. The prefix's keys and values are computed once, kept in a
small LRU keyed by its token ids, and repeated over each batch; only the suffixes run
through the model.

Layout of a batch after a prefix of P tokens: `[prefix | pads | suffix]` for generation
(suffixes left-padded so that every row's next token is at the same column) and
`[prefix | suffix | pads]` for scoring. The attention mask is ones over the prefix and the
suffix mask after it; position ids count only attended tokens, so a row sees exactly the
positions it would see if it were run alone and unpadded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from transformers import DynamicCache, PreTrainedModel

KV = list[tuple[torch.Tensor, torch.Tensor]]


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix every row shares."""
    if not rows:
        return 0
    first = rows[0]
    length = min(len(r) for r in rows)
    for row in rows[1:]:
        n = 0
        limit = min(length, len(row))
        while n < limit and row[n] == first[n]:
            n += 1
        length = n
    return length


class PrefixCache:
    """An LRU of prefix key/value tensors (batch 1) for one model."""

    def __init__(self, model: PreTrainedModel, capacity: int = 4, min_reuse: int = 16) -> None:
        self.model = model
        self.capacity = capacity
        self.min_reuse = min_reuse
        self._entries: OrderedDict[tuple[int, ...], KV] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.extended = 0

    def get(self, prefix: Sequence[int]) -> KV:
        """The prefix's per-layer (keys, values), computing them on a miss.

        On a miss, the cached prefix sharing the most leading tokens with this one (at least
        `min_reuse`) is cut to that shared part and only the remaining tokens are run: the
        critic's prefixes are the constitution followed by one output, so the constitution
        is computed once and each output costs only its own tokens.
        """
        key = tuple(prefix)
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        shared, base = self.nearest(key)
        shared = min(shared, len(key) - 1)
        device = self.model.device
        if base is not None and shared >= self.min_reuse:
            self.extended += 1
            cut = [(k[:, :, :shared], v[:, :, :shared]) for k, v in base]
            cache = DynamicCache(ddp_cache_data=cut, config=self.model.config)
            rest = key[shared:]
        else:
            cache = DynamicCache(config=self.model.config)
            rest = key
        ids = torch.tensor([list(rest)], dtype=torch.long, device=device)
        with torch.inference_mode():
            self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        entry = [(layer.keys, layer.values) for layer in cache.layers]  # type: ignore[union-attr]
        self._entries[key] = entry  # type: ignore[assignment]
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return self._entries[key]

    def nearest(self, tokens: Sequence[int]) -> tuple[int, KV | None]:
        """The cached prefix sharing the most leading tokens with `tokens`, and how many it
        shares (0 and None when none does); the LRU is left as it is."""
        shared, base = 0, None
        for cached, kv in self._entries.items():
            n = common_prefix_length([cached, tokens])
            if n > shared:
                shared, base = n, kv
        return shared, base

    def batch(self, prefix: Sequence[int], batch_size: int) -> DynamicCache:
        """A fresh cache holding the prefix once per row; the stored tensors stay untouched."""
        kv = self.get(prefix)
        expanded = [
            (k.expand(batch_size, -1, -1, -1), v.expand(batch_size, -1, -1, -1)) for k, v in kv
        ]
        return DynamicCache(ddp_cache_data=expanded, config=self.model.config)

    def clear(self) -> None:
        self._entries.clear()
