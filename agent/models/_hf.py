"""The transformers backend: any causal LM from a directory, a hub id or a converted GGUF.

This module imports torch and transformers at its top; only the factories registered in
`_local.py` import it, when a local backend is loaded.

Guarantees:
- replies follow the model's own chat template; batches are left-padded for generation;
- with a `shared_prefix`, the prefix's key/value cache is computed once and reused, and
  replies and scores equal those computed without it (scores to within float rounding);
  where it saves work, a generation batch computes every run of tokens its rows share
  once, and reuses any cached prefix it starts with (`_hf_prompts`);
- structured replies are generated under a grammar, so they always parse, and end at the
  grammar's last token; a reply cut short by the token budget is regenerated with a larger
  budget, then `MalformedReply`;
- generation runs `_hf_decode`'s lean loop (`decode_loop="lean"`, the default): on the same
  batch its greedy tokens, and its seeded draws, are those of `model.generate`
  (`decode_loop="generate"`, the path it replaced, kept as the reference it is measured and
  tested against);
- `score_options` runs one forward pass per pack of prompts (`score_layout="packed"`, the
  default: every prompt after the cached prefix in one row, a token tree under a 4D mask;
  see `_hf_packed`) or per padded batch of rows (`"rows"`); both give the same scores to
  within float rounding, option by option, for single- and multi-token options;
- with a `score_dtype` (say "bfloat16") other than `dtype`, scoring runs on a second copy of
  the weights in that precision, with its own prefix cache, and generation is untouched: a
  faster critic whose agreement with people bench/judge.py measures per URI
  (`default?score_dtype=bfloat16`); calibrations are kept per URI, so it has its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import BaseModel, ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from agent.models._hf_decode import Batch, Decoding, decode, left_padded, reference
from agent.models._hf_packed import Job, pack, plan
from agent.models._hf_prefix import PrefixCache, common_prefix_length
from agent.models._hf_prompts import plain_layers, prompt_cache, worth_it
from agent.models._structured import parse_reply
from agent.models._types import (
    BackendInfo,
    ChatMessage,
    Conversation,
    GenerationParams,
    SchemaT,
    ScoredPrompt,
    cut_at_stop,
    full_conversation,
)
from principles import InvalidInput, MalformedReply, ModelError

if TYPE_CHECKING:
    from agent.models._hf_grammar import GrammarFactory

RELEVANCE_TOKENS = 512
NEUTRAL_REQUEST = "Say something."
SCORE_LAYOUTS = ("packed", "rows")
DECODE_LOOPS = ("lean", "generate")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str | None) -> str:
    """`device` if given, else CUDA when present, else the CPU."""
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str | None, device: str) -> torch.dtype:
    """fp32 on the CPU (bf16 changes greedy text after a few tokens), bf16 on CUDA."""
    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise InvalidInput(f"unknown dtype {dtype!r}: expected one of {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


class TransformersBackend:
    """A local causal language model run by transformers (see the module docstring)."""

    name = "transformers"

    def __init__(
        self,
        source: str | Path,
        *,
        uri: str,
        device: str | None = None,
        dtype: str | None = None,
        score_dtype: str | None = None,
        threads: int | None = None,
        batch_size: int = 8,
        score_batch_size: int = 16,
        score_batch_tokens: int = 4096,
        score_layout: str = "packed",
        pack_tokens: int = 2048,
        prefix_cache_size: int = 4,
        max_structured_retries: int = 2,
        decode_loop: str = "lean",
    ) -> None:
        self.uri = uri
        self.source = str(source)
        self.batch_size = batch_size
        self.score_batch_size = score_batch_size
        self.score_batch_tokens = score_batch_tokens
        if score_layout not in SCORE_LAYOUTS:
            raise InvalidInput(
                f"unknown score_layout {score_layout!r}: expected one of {', '.join(SCORE_LAYOUTS)}"
            )
        self.score_layout = score_layout
        if decode_loop not in DECODE_LOOPS:
            raise InvalidInput(
                f"unknown decode_loop {decode_loop!r}: expected one of {', '.join(DECODE_LOOPS)}"
            )
        self.decode_loop = decode_loop
        self.pack_tokens = pack_tokens
        self.max_structured_retries = max_structured_retries
        self.threads = threads or os.cpu_count() or 1
        torch.set_num_threads(self.threads)
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.score_dtype = pick_dtype(score_dtype, self.device) if score_dtype else self.dtype
        started = time.perf_counter()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source)
            self.model = self._load(self.dtype)
            # Scoring runs on its own copy of the weights when its precision differs.
            same = self.score_dtype == self.dtype
            self.scorer = self.model if same else self._load(self.score_dtype)
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load model {self.source!r}: {error}") from error
        self.load_seconds = time.perf_counter() - started
        if self.tokenizer.chat_template is None:
            raise ModelError(f"model {self.source!r} has no chat template")
        self.tokenizer.padding_side = "left"
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids: list[int] = list(eos) if isinstance(eos, list) else [eos]
        pad = self.tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else self.eos_ids[0]
        self.prefix_cache = PrefixCache(self.model, prefix_cache_size)
        self.score_prefix_cache = (
            self.prefix_cache
            if self.scorer is self.model
            else PrefixCache(self.scorer, prefix_cache_size)
        )
        self._plain_cache = plain_layers(self.model)
        self._grammars: GrammarFactory | None = None

    def _load(self, dtype: torch.dtype) -> Any:
        model = AutoModelForCausalLM.from_pretrained(self.source, dtype=dtype)
        model.to(self.device)  # type: ignore[arg-type]
        model.eval()
        return model

    def info(self) -> BackendInfo:
        return BackendInfo(
            uri=self.uri,
            backend=self.name,
            model=self.source,
            details={
                "device": self.device,
                "dtype": str(self.dtype).removeprefix("torch."),
                "score_dtype": str(self.score_dtype).removeprefix("torch."),
                "threads": self.threads,
                "score_layout": self.score_layout,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "load_seconds": round(self.load_seconds, 3),
            },
        )

    # -- prompts -------------------------------------------------------------------------

    def encode(
        self, messages: Sequence[ChatMessage], *, generation_prompt: bool = True
    ) -> list[int]:
        """Token ids of `messages` under the model's chat template."""
        text = self.tokenizer.apply_chat_template(
            [m.model_dump() for m in messages],
            add_generation_prompt=generation_prompt,
            tokenize=False,
        )
        ids: list[int] = self.tokenizer(str(text), add_special_tokens=False)["input_ids"]
        return ids

    def prompt_tokens(self, conversation: Conversation) -> int:
        """Tokens of `conversation` under the chat template, with the generation prompt."""
        return len(self.encode(conversation))

    def text_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _encode_batch(
        self, conversations: Sequence[Conversation], shared_prefix: Conversation | None
    ) -> tuple[list[list[int]], int]:
        """Token rows and the length of the token prefix they share with `shared_prefix`.

        At least one token of each row stays outside the prefix, so every row has a
        position whose logits predict what follows the prompt.
        """
        if not conversations:
            return [], 0
        rows = [self.encode(full_conversation(shared_prefix, c)) for c in conversations]
        if not shared_prefix:
            return rows, 0
        prefix_ids = self.encode(shared_prefix, generation_prompt=False)
        shared = common_prefix_length([prefix_ids, *rows])
        return rows, min(shared, min(len(r) for r in rows) - 1)

    # -- generation ----------------------------------------------------------------------

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[str]:
        return self._generate(conversations, params or GenerationParams(), shared_prefix, None)

    def generate_structured(
        self,
        conversations: Sequence[Conversation],
        schema: type[SchemaT],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[SchemaT]:
        params = params or GenerationParams()
        results: list[SchemaT | None] = [None] * len(conversations)
        pending = list(range(len(conversations)))
        errors: dict[int, str] = {}
        for attempt in range(self.max_structured_retries + 1):
            budget = params.model_copy(
                update={"max_new_tokens": params.max_new_tokens * 2**attempt, "stop": ()}
            )
            texts = self._generate(
                [conversations[i] for i in pending], budget, shared_prefix, schema
            )
            still = []
            for i, text in zip(pending, texts, strict=True):
                try:
                    results[i] = parse_reply(text, schema)
                except ValidationError as error:  # only a reply cut off by the budget
                    errors[i] = error.errors(include_url=False)[0]["msg"]
                    still.append(i)
            pending = still
            if not pending:
                break
        if pending:
            raise MalformedReply(
                f"{len(pending)} of {len(conversations)} replies did not complete a "
                f"{schema.__name__} within {params.max_new_tokens * 2**self.max_structured_retries}"
                f" tokens: {errors[pending[0]]}"
            )
        return [r for r in results if r is not None]

    def _generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams,
        shared_prefix: Conversation | None,
        schema: type[BaseModel] | None,
    ) -> list[str]:
        rows, prefix_len = self._encode_batch(conversations, shared_prefix)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        replies = [""] * len(rows)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            texts = self._generate_batch([rows[i] for i in chunk], params, prefix_len, schema)
            for i, text in zip(chunk, texts, strict=True):
                replies[i] = cut_at_stop(text, params.stop)
        return replies

    def _generate_batch(
        self,
        rows: list[list[int]],
        params: GenerationParams,
        prefix_len: int,
        schema: type[BaseModel] | None,
    ) -> list[str]:
        """Replies to `rows` (their first `prefix_len` tokens a shared prefix). The lean
        path computes the prompts with `_hf_prompts` where that saves work (each run of
        tokens that rows share once) and decodes with `_hf_decode`; `decode_loop="generate"`
        is the path it replaced and is measured against: the shared prefix from the prefix
        cache, the rest run as a left-padded batch, then `model.generate` with xgrammar's
        processor."""
        decoding = Decoding(
            max_new_tokens=params.max_new_tokens,
            eos_ids=tuple(self.eos_ids),
            pad_id=self.pad_id,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=params.stop,
        )
        lean = self.decode_loop == "lean"
        batch = self._prompts(rows, prefix_len, params.max_new_tokens, lean)
        if lean:
            grammar = self._grammar_factory().row_masks(schema, len(rows)) if schema else None
            tokens = decode(self.model, batch, decoding, tokenizer=self.tokenizer, grammar=grammar)
        else:
            processors = [self._grammar_factory().processor(schema)] if schema else []
            tokens = reference(self.model, batch, decoding, self.tokenizer, processors)
        texts: list[str] = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return texts

    def _prompts(self, rows: list[list[int]], prefix_len: int, room: int, lean: bool) -> Batch:
        """The batch to decode `rows` from: every row's prompt but its last token in the
        cache (`prompt_cache`, for the lean loop where that computes fewer tokens), or the
        shared prefix only (the rest is computed in the decode loop's first step)."""
        cache: DynamicCache | None = None
        if lean and self._plain_cache and worth_it(self.prefix_cache, rows, prefix_len):
            cache = prompt_cache(self.prefix_cache, rows, prefix_len, room)
            cached = [len(row) - 1 for row in rows]
        else:
            if prefix_len:
                cache = self.prefix_cache.batch(rows[0][:prefix_len], len(rows))
            cached = [prefix_len] * len(rows)
        input_ids, mask = left_padded(rows, cached, self.pad_id)
        return Batch(input_ids.to(self.device), mask.to(self.device), cache, max(cached))

    def _grammar_factory(self) -> GrammarFactory:
        if self._grammars is None:
            from agent.models._hf_grammar import GrammarFactory

            self._grammars = GrammarFactory(self.tokenizer, self.model.config.vocab_size)
        return self._grammars

    # -- scoring -------------------------------------------------------------------------

    def score_options(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[list[float]]:
        return self._score(prompts, options, shared_prefix, None)[0]

    def score_with_features(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
        layer: int = -1,
    ) -> list[ScoredPrompt]:
        depth = self.model.config.num_hidden_layers
        if not -depth - 1 <= layer <= depth:
            raise InvalidInput(f"layer {layer} is outside this model's 0..{depth}")
        scores, features = self._score(prompts, options, shared_prefix, layer)
        return [ScoredPrompt(s, f) for s, f in zip(scores, features, strict=True)]

    def relevance(self, exchanges: Sequence[tuple[str, str]]) -> list[float]:
        """Mean log P(response token | request) minus mean log P(response token | a neutral
        request), over the response's first `RELEVANCE_TOKENS` tokens; two forward passes
        per exchange, without the constitution."""
        out = []
        for request, response in exchanges:
            asked = self._response_logprob(request, response)
            neutral = self._response_logprob(NEUTRAL_REQUEST, response)
            out.append(asked - neutral)
        return out

    def _response_logprob(self, request: str, response: str) -> float:
        head = self.encode([ChatMessage(role="user", content=request)])
        body = self.tokenizer(response, add_special_tokens=False)["input_ids"][:RELEVANCE_TOKENS]
        if not body:
            return 0.0
        ids = torch.tensor([head + body], device=self.device)
        with torch.inference_mode():
            logits = self.scorer(input_ids=ids, logits_to_keep=len(body) + 1).logits[0, :-1]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
        picked = logprobs[torch.arange(len(body)), torch.tensor(body, device=self.device)]
        return float(picked.mean())

    def _score(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        shared_prefix: Conversation | None,
        layer: int | None,
    ) -> tuple[list[list[float]], list[list[float]]]:
        """Option log-probabilities per prompt and, when `layer` is given, the hidden state
        of that layer at each prompt's last position (else no features)."""
        if not options:
            raise InvalidInput("score_options needs at least one option")
        option_ids = [self.tokenizer(o, add_special_tokens=False)["input_ids"] for o in options]
        if any(not ids for ids in option_ids):
            raise InvalidInput("an option to score is empty")
        rows, prefix_len = self._encode_batch(prompts, shared_prefix)
        if not rows:
            return [], []
        single = all(len(ids) == 1 for ids in option_ids)
        # One job per prompt when every option is one token: its last position's
        # distribution scores them all. Otherwise one job per (prompt, option).
        jobs: list[tuple[int, int, list[int]]] = (
            [(p, -1, row) for p, row in enumerate(rows)]
            if single
            else [
                (p, o, row + ids) for p, row in enumerate(rows) for o, ids in enumerate(option_ids)
            ]
        )
        scores = [[0.0] * len(options) for _ in rows]
        features: list[list[float]] = [[] for _ in rows]
        for chunk in self._chunks(jobs, prefix_len):
            run = self._score_pack if self.score_layout == "packed" else self._score_batch
            logprobs, states = run(
                [row for _, _, row in chunk],
                prefix_len,
                [len(rows[p]) for p, _, _ in chunk],
                layer,
            )
            for (p, _, _), state in zip(chunk, states, strict=False):
                features[p] = state
            for (p, o, row), lp in zip(chunk, logprobs, strict=True):
                if single:
                    for j, ids in enumerate(option_ids):
                        scores[p][j] = float(lp[0][ids[0]])
                else:
                    targets = row[len(rows[p]) :]
                    scores[p][o] = float(sum(lp[k][t] for k, t in enumerate(targets)))
        return scores, features

    def _chunks(
        self, jobs: list[tuple[int, int, list[int]]], prefix_len: int
    ) -> list[list[tuple[int, int, list[int]]]]:
        """The jobs per forward pass. Packed: in order (a prompt's option jobs share its
        tokens), as many as fit `pack_tokens` tree nodes. Rows: sorted by length, at most
        `score_batch_size` rows, and few enough that the prefix repeated per row plus the
        padded suffixes stay within `score_batch_tokens` (past it, copying the prefix's keys
        and values costs more than batching saves)."""
        if self.score_layout == "packed":
            packed = [Job(row, 0) for _, _, row in jobs]
            groups = plan(packed, prefix_len, self.pack_tokens)
            return [[jobs[j] for j in group] for group in groups]
        ordered = sorted(jobs, key=lambda job: len(job[2]))
        chunks, start = [], 0
        while start < len(ordered):
            size = 1
            while start + size < len(ordered) and size < self.score_batch_size:
                width = len(ordered[start + size][2])  # sorted: the widest row so far
                if (size + 1) * width > self.score_batch_tokens:
                    break
                size += 1
            chunks.append(ordered[start : start + size])
            start += size
        return chunks

    def _score_pack(
        self, rows: list[list[int]], prefix_len: int, prompt_lens: list[int], layer: int | None
    ) -> tuple[list[torch.Tensor], list[list[float]]]:
        """`_score_batch`'s figures for the same rows, from one packed forward pass (see
        `_hf_packed`): one copy of the prefix's keys and values, no padding."""
        packed = pack(
            [Job(row, plen) for row, plen in zip(rows, prompt_lens, strict=True)],
            prefix_len,
            self.score_dtype,
        )
        keep = sorted({k for read in packed.reads for k in read})
        where = {k: i for i, k in enumerate(keep)}
        extra: dict[str, Any] = {}
        if prefix_len:
            extra["cache"] = self.score_prefix_cache.batch(rows[0][:prefix_len], 1)
        with torch.inference_mode():
            out = self.scorer(
                input_ids=packed.input_ids.to(self.device),
                position_ids=packed.position_ids.to(self.device),
                attention_mask=packed.mask.to(self.device),
                logits_to_keep=torch.tensor(keep, device=self.device),
                use_cache=bool(prefix_len),
                output_hidden_states=layer is not None,
                **extra,
            )
            logprobs = torch.log_softmax(out.logits[0].float(), dim=-1).cpu()
            states: list[list[float]] = []
            if layer is not None:
                hidden = out.hidden_states[layer][0].float().cpu()
                states = [hidden[read[0]].tolist() for read in packed.reads]
        rows_lp = [logprobs[[where[k] for k in read]] for read in packed.reads]
        return rows_lp, states

    def _score_batch(
        self, rows: list[list[int]], prefix_len: int, prompt_lens: list[int], layer: int | None
    ) -> tuple[list[torch.Tensor], list[list[float]]]:
        """Per row, log-softmax rows for positions prompt_len-1 ... len(row)-2 (the
        distributions that predict the row's continuation after its prompt); with `layer`,
        also that layer's hidden state at position prompt_len-1 (else no states)."""
        batch = len(rows)
        width = max(len(r) for r in rows) - prefix_len
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((batch, prefix_len + width), dtype=torch.long)
        mask[:, :prefix_len] = 1
        for b, row in enumerate(rows):
            suffix = row[prefix_len:]
            input_ids[b, : len(suffix)] = torch.tensor(suffix)
            mask[b, prefix_len : prefix_len + len(suffix)] = 1
        spans = [
            (plen - 1 - prefix_len, max(len(row) - 1, plen) - prefix_len)
            for row, plen in zip(rows, prompt_lens, strict=True)
        ]
        keep = sorted({k for lo, hi in spans for k in range(lo, hi)})
        where = {k: i for i, k in enumerate(keep)}
        extra: dict[str, Any] = {}
        if prefix_len:
            extra["cache"] = self.score_prefix_cache.batch(rows[0][:prefix_len], batch)
        with torch.inference_mode():
            out = self.scorer(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                logits_to_keep=torch.tensor(keep, device=self.device),
                use_cache=bool(prefix_len),
                output_hidden_states=layer is not None,
                **extra,
            )
            logprobs = torch.log_softmax(out.logits.float(), dim=-1).cpu()
            states: list[list[float]] = []
            if layer is not None:
                hidden = out.hidden_states[layer].float().cpu()
                states = [hidden[b, lo].tolist() for b, (lo, _) in enumerate(spans)]
        rows_lp = [
            logprobs[b, [where[k] for k in range(lo, hi)]] for b, (lo, hi) in enumerate(spans)
        ]
        return rows_lp, states
