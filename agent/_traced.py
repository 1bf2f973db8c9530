"""Model calls as spans, named and described by OpenTelemetry's GenAI semantic conventions.

`TracedBackend` wraps any backend; each batched call is one span named
`"{gen_ai.operation.name} {gen_ai.request.model}"`, a child of whatever span is open (the
loop's step). Guarantees:
- Operation names: `chat` for `generate` and `generate_structured`; `score` (a custom name:
  the conventions have none for reading the log-probabilities of given answer options) for
  `score_options`, `score_with_features` and `relevance`. `charter.call` names the method.
- `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens` are sums over the batch
  (`charter.batch_size` says how many requests), and present only where the innermost
  backend is a `TokenCounter` (local models: tokenizer lengths; `scripted:` words). Servers
  behind `openai:` report none. Scoring has no output tokens.
- Text only with the tracer's content capture: then one event per request of the batch,
  `gen_ai.client.inference.operation.details`, with `gen_ai.input.messages` and
  `gen_ai.output.messages` as the conventions' JSON (`charter.batch_index` says which).
- Replies and errors pass through unchanged; the backend's `FeatureBackend` capability is
  passed through (`exposes_features` asks the wrapped backend, via `wrapped`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, cast

from agent._tracing import Span, Tracer, Value
from agent.models import (
    Backend,
    BackendInfo,
    ChatMessage,
    Conversation,
    FeatureBackend,
    GenerationParams,
    ScoredPrompt,
    TokenCounter,
)
from agent.models._types import SchemaT, full_conversation

PROVIDERS = {"transformers": "huggingface", "openai": "openai", "scripted": "charter.scripted"}
DETAILS_EVENT = "gen_ai.client.inference.operation.details"


def innermost(backend: object) -> object:
    """The backend at the bottom of a chain of wrappers (each names it `wrapped`)."""
    while (inner := getattr(backend, "wrapped", None)) is not None:
        backend = inner
    return backend


def is_traced(backend: object) -> bool:
    """Whether a `TracedBackend` is anywhere in the chain of wrappers."""
    while backend is not None:
        if isinstance(backend, TracedBackend):
            return True
        backend = getattr(backend, "wrapped", None)
    return False


def traced(backend: Backend, tracer: Tracer) -> Backend:
    """`backend` with its calls traced, unless tracing is off or it already is traced."""
    if not tracer.enabled or is_traced(backend):
        return backend
    return TracedBackend(backend, tracer)


def _messages(conversation: Conversation) -> str:
    return json.dumps(
        [{"role": m.role, "parts": [{"type": "text", "content": m.content}]} for m in conversation],
        ensure_ascii=False,
    )


def _reply(text: str) -> str:
    return json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": text}]}], ensure_ascii=False
    )


class TracedBackend:
    """Wraps a backend so that every call is a GenAI span on `tracer` (module docstring)."""

    def __init__(self, backend: Backend, tracer: Tracer) -> None:
        self.inner = backend
        self.tracer = tracer
        self.uri = backend.uri
        self.name = backend.name
        self._info: BackendInfo | None = None
        bottom = innermost(backend)
        self._counter = bottom if isinstance(bottom, TokenCounter) else None

    @property
    def wrapped(self) -> Backend:
        return self.inner

    def info(self) -> BackendInfo:
        return self.inner.info()

    def _described(self) -> BackendInfo:
        if self._info is None:
            self._info = self.inner.info()
        return self._info

    def _call(
        self,
        operation: str,
        method: str,
        n: int,
        params: GenerationParams | None,
        record: Callable[[Span, Any], None],
        fn: Callable[[], Any],
    ) -> Any:
        """Run `fn` in a span; `record(span, result)` adds what the result tells."""
        info = self._described()
        provider = PROVIDERS.get(info.backend, info.backend)
        attributes: dict[str, Value] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": info.model,
            "charter.call": method,
            "charter.batch_size": n,
        }
        if params is not None:
            attributes |= {
                "gen_ai.request.max_tokens": params.max_new_tokens,
                "gen_ai.request.temperature": params.temperature,
                "gen_ai.request.top_p": params.top_p,
            }
            if params.seed is not None:
                attributes["gen_ai.request.seed"] = params.seed
        with self.tracer.span(f"{operation} {info.model}", attributes) as span:
            result = fn()
            record(span, result)
            return result

    def _usage(
        self, span: Span, prompts: Sequence[Conversation], replies: Sequence[str] | None
    ) -> None:
        if self._counter is None:
            return
        figures: dict[str, Value] = {
            "gen_ai.usage.input_tokens": sum(self._counter.prompt_tokens(p) for p in prompts)
        }
        if replies is not None:
            figures["gen_ai.usage.output_tokens"] = sum(
                self._counter.text_tokens(r) for r in replies
            )
        span.set(figures)

    def _details(
        self, span: Span, prompts: Sequence[Conversation], key: str, outputs: list[str]
    ) -> None:
        """With content capture, one event per request: its messages and `key: output`."""
        if not self.tracer.capture_content:
            return
        for i, (prompt, output) in enumerate(zip(prompts, outputs, strict=True)):
            span.event(
                DETAILS_EVENT,
                {"charter.batch_index": i, "gen_ai.input.messages": _messages(prompt), key: output},
            )

    def _texts(
        self,
        method: str,
        conversations: Sequence[Conversation],
        params: GenerationParams | None,
        shared_prefix: Conversation | None,
        fn: Callable[[], list[Any]],
        as_text: Callable[[Any], str],
    ) -> list[Any]:
        prompts = [full_conversation(shared_prefix, c) for c in conversations]

        def record(span: Span, replies: list[Any]) -> None:
            texts = [as_text(r) for r in replies]
            self._usage(span, prompts, texts)
            self._details(span, prompts, "gen_ai.output.messages", [_reply(t) for t in texts])

        result: list[Any] = self._call(
            "chat", method, len(prompts), params or GenerationParams(), record, fn
        )
        return result

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[str]:
        return self._texts(
            "generate",
            conversations,
            params,
            shared_prefix,
            lambda: self.inner.generate(conversations, params, shared_prefix=shared_prefix),
            str,
        )

    def generate_structured(
        self,
        conversations: Sequence[Conversation],
        schema: type[SchemaT],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[SchemaT]:
        return self._texts(
            "generate_structured",
            conversations,
            params,
            shared_prefix,
            lambda: self.inner.generate_structured(
                conversations, schema, params, shared_prefix=shared_prefix
            ),
            lambda reply: str(reply.model_dump_json()),
        )

    def _scores(
        self,
        method: str,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        fn: Callable[[], list[Any]],
        row: Callable[[Any], list[float]],
    ) -> list[Any]:
        def record(span: Span, results: list[Any]) -> None:
            self._usage(span, prompts, None)
            scores = [json.dumps(dict(zip(options, row(r), strict=True))) for r in results]
            self._details(span, prompts, "charter.scores", scores)

        result: list[Any] = self._call("score", method, len(prompts), None, record, fn)
        return result

    def score_options(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[list[float]]:
        return self._scores(
            "score_options",
            [full_conversation(shared_prefix, p) for p in prompts],
            options,
            lambda: self.inner.score_options(prompts, options, shared_prefix=shared_prefix),
            list,
        )

    def score_with_features(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
        layer: int = -1,
    ) -> list[ScoredPrompt]:
        inner = cast(FeatureBackend, self.inner)
        return self._scores(
            "score_with_features",
            [full_conversation(shared_prefix, p) for p in prompts],
            options,
            lambda: inner.score_with_features(
                prompts, options, shared_prefix=shared_prefix, layer=layer
            ),
            lambda scored: list(scored.logprobs),
        )

    def relevance(self, exchanges: Sequence[tuple[str, str]]) -> list[float]:
        inner = cast(FeatureBackend, self.inner)
        turns = [
            [ChatMessage(role="user", content=q), ChatMessage(role="assistant", content=a)]
            for q, a in exchanges
        ]
        return self._scores(
            "relevance",
            turns,
            ["relevance"],
            lambda: inner.relevance(exchanges),
            lambda value: [value],
        )
