"""Grammar-constrained decoding for local models: every reply parses as the schema.

xgrammar compiles the pydantic model's JSON schema against the tokenizer's vocabulary;
its logits processor masks, at each step, every token that would leave the grammar. Extra
whitespace is not allowed, so a small model cannot wander in blank space until its token
budget runs out. Compiled grammars are kept per schema.
"""

from __future__ import annotations

import json
from typing import Any

import xgrammar as xgr
from pydantic import BaseModel
from transformers import LogitsProcessor, PreTrainedTokenizerBase
from xgrammar.contrib.hf import LogitsProcessor as XgrLogitsProcessor


class GrammarFactory:
    """Compiles and caches grammars for one tokenizer."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> None:
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self._compiler = xgr.GrammarCompiler(info)
        self._compiled: dict[str, Any] = {}

    def processor(self, schema: type[BaseModel]) -> LogitsProcessor:
        """A fresh logits processor (one per `generate` call, as xgrammar requires)."""
        key = json.dumps(schema.model_json_schema(), sort_keys=True)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiler.compile_json_schema(key, any_whitespace=False)
            self._compiled[key] = compiled
        processor: LogitsProcessor = XgrLogitsProcessor(compiled)
        return processor
