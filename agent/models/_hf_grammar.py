"""Grammar-constrained decoding for local models: every reply parses as the schema.

xgrammar compiles the pydantic model's JSON schema against the tokenizer's vocabulary;
at each step, every token that would leave the grammar is masked. Extra whitespace is not
allowed, so a small model cannot wander in blank space until its token budget runs out.
Compiled grammars are kept per schema.

Two ways to apply a grammar: `RowMasks`, one matcher per row driven by the backend's own
decode loop (`_hf_decode`), which also says when a row's reply is complete; and
`processor`, xgrammar's logits processor for `model.generate` (the reference path).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
import xgrammar as xgr
from pydantic import BaseModel
from transformers import LogitsProcessor, PreTrainedTokenizerBase
from xgrammar.contrib.hf import LogitsProcessor as XgrLogitsProcessor

from principles import ModelError


class GrammarFactory:
    """Compiles and caches grammars for one tokenizer."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> None:
        self._info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self._compiler = xgr.GrammarCompiler(self._info)
        self._compiled: dict[str, Any] = {}

    def compiled(self, schema: type[BaseModel]) -> Any:
        """The schema's grammar, compiled once per schema."""
        key = json.dumps(schema.model_json_schema(), sort_keys=True)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiler.compile_json_schema(key, any_whitespace=False)
            self._compiled[key] = compiled
        return compiled

    def processor(self, schema: type[BaseModel]) -> LogitsProcessor:
        """A fresh logits processor for `model.generate` (one per call, as xgrammar requires)."""
        processor: LogitsProcessor = XgrLogitsProcessor(self.compiled(schema))
        return processor

    def row_masks(self, schema: type[BaseModel], rows: int) -> RowMasks:
        """Fresh matchers for a batch of `rows` replies to `schema`."""
        return RowMasks(self.compiled(schema), rows, self._info.vocab_size)


class RowMasks:
    """One grammar matcher per batch row and their token bitmask (`_hf_decode.RowGrammar`).

    A row's bitmask for its next step is filled as soon as it accepts a token, so that the
    matcher can tell at once whether only a stop token may follow: the reply is complete.
    """

    def __init__(self, compiled: Any, rows: int, vocab_size: int) -> None:
        self._matchers = [xgr.GrammarMatcher(compiled) for _ in range(rows)]
        self._bitmask = xgr.allocate_token_bitmask(rows, vocab_size)
        self._vocab_size = vocab_size
        self._stops_only = _bits(self._matchers[0].stop_token_ids, self._bitmask.shape[1])
        for row, matcher in enumerate(self._matchers):
            matcher.fill_next_token_bitmask(self._bitmask, row)

    def mask(self, logits: torch.Tensor, rows: Sequence[int]) -> None:
        """Mask, in place, the tokens that row `rows[i]` may not take next in row i of
        `logits`."""
        bitmask = self._bitmask if len(rows) == len(self._matchers) else self._bitmask[rows]
        xgr.apply_token_bitmask_inplace(
            logits, bitmask.to(logits.device), vocab_size=self._vocab_size
        )

    def accept(self, row: int, token: int) -> bool:
        """Follow `token` in row `row`; True when nothing but a stop token may follow."""
        matcher = self._matchers[row]
        if not matcher.accept_token(token):  # the mask allowed it: a broken invariant
            raise ModelError(f"token {token} leaves the grammar of row {row}")
        if matcher.is_terminated():
            return True
        matcher.fill_next_token_bitmask(self._bitmask, row)
        return matcher.is_completed() and bool(torch.equal(self._bitmask[row], self._stops_only))


def _bits(tokens: Sequence[int], words: int) -> torch.Tensor:
    """A bitmask row (xgrammar's layout: int32 words, bit t % 32 of word t // 32) allowing
    exactly `tokens`."""
    values = [0] * words
    for token in tokens:
        values[token // 32] |= 1 << (token % 32)
    signed = [v - (1 << 32) if v >= 1 << 31 else v for v in values]
    return torch.tensor(signed, dtype=torch.int32)
