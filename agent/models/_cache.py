"""The LM-call cache: a resumed run replays the replies it already paid for.

Each conversation of a batched call is cached on its own, keyed by the SHA-256 of the
canonical JSON of (backend URI, call kind, messages, parameters with the seed, schema or
options). A batch with some cached items asks the backend only for the others. Values are
JSON text, so any key/value store can hold them (`CallCache`); the Store provides a table.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from typing import Any, Protocol, cast, runtime_checkable

from pydantic import BaseModel

from agent.models._types import (
    Backend,
    BackendInfo,
    ChatMessage,
    Conversation,
    FeatureBackend,
    GenerationParams,
    SchemaT,
    ScoredPrompt,
    exposes_features,
    full_conversation,
)
from principles import ModelError


@runtime_checkable
class CallCache(Protocol):
    """Where cached replies live. Keys are hex digests; values are JSON text."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class MemoryCallCache:
    """A `CallCache` in a dict, for one process (thread-safe)."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._data[key] = value

    def __len__(self) -> int:
        return len(self._data)


def request_key(model: str, kind: str, conversation: Conversation, **parts: Any) -> str:
    """The cache key of one conversation's request: stable across processes and versions."""
    payload = {
        "model": model,
        "kind": kind,
        "messages": [m.model_dump(mode="json") for m in conversation],
        **{
            k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
            for k, v in parts.items()
        },
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CachedBackend:
    """Wraps a backend so that every reply is looked up in, and stored to, a `CallCache`.

    Only validated replies are stored: a structured call that raises stores nothing for
    the items of that batch that were still missing.
    """

    def __init__(self, backend: Backend, cache: CallCache) -> None:
        self.backend = backend
        self.cache = cache
        self.uri = backend.uri
        self.name = backend.name
        self.hits = 0
        self.misses = 0

    def info(self) -> BackendInfo:
        return self.backend.info()

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[str]:
        params = params or GenerationParams()
        keys = self._keys("generate", conversations, shared_prefix, params=params)

        def compute(missing: list[int]) -> list[str]:
            return self.backend.generate(
                [conversations[i] for i in missing], params, shared_prefix=shared_prefix
            )

        return self._through(keys, compute, json.dumps, json.loads)

    def generate_structured(
        self,
        conversations: Sequence[Conversation],
        schema: type[SchemaT],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[SchemaT]:
        params = params or GenerationParams()
        keys = self._keys(
            "structured",
            conversations,
            shared_prefix,
            params=params,
            schema=schema.model_json_schema(),
        )

        def compute(missing: list[int]) -> list[SchemaT]:
            return self.backend.generate_structured(
                [conversations[i] for i in missing], schema, params, shared_prefix=shared_prefix
            )

        return self._through(
            keys, compute, lambda v: v.model_dump_json(), schema.model_validate_json
        )

    def score_options(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[list[float]]:
        keys = self._keys("score", prompts, shared_prefix, options=list(options))

        def compute(missing: list[int]) -> list[list[float]]:
            return self.backend.score_options(
                [prompts[i] for i in missing], options, shared_prefix=shared_prefix
            )

        return self._through(keys, compute, json.dumps, json.loads)

    @property
    def wrapped(self) -> Backend:
        return self.backend

    def score_with_features(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
        layer: int = -1,
    ) -> list[ScoredPrompt]:
        """Passed through uncached: hidden states are large (kilobytes a prompt) and a
        model computes them again identically; `ModelError` when the wrapped backend
        exposes none."""
        if not exposes_features(self.backend):
            raise ModelError(f"backend {self.uri!r} does not expose hidden states")
        return cast(FeatureBackend, self.backend).score_with_features(
            prompts, options, shared_prefix=shared_prefix, layer=layer
        )

    def relevance(self, exchanges: Sequence[tuple[str, str]]) -> list[float]:
        """Cached like scores: one float per exchange."""
        if not exposes_features(self.backend):
            raise ModelError(f"backend {self.uri!r} does not expose hidden states")
        inner = cast(FeatureBackend, self.backend)
        keys = [
            request_key(
                self.uri,
                "relevance",
                [ChatMessage(role="user", content=q), ChatMessage(role="assistant", content=a)],
            )
            for q, a in exchanges
        ]

        def compute(missing: list[int]) -> list[float]:
            return inner.relevance([exchanges[i] for i in missing])

        return self._through(keys, compute, json.dumps, json.loads)

    def _keys(
        self,
        kind: str,
        conversations: Sequence[Conversation],
        shared_prefix: Conversation | None,
        **parts: Any,
    ) -> list[str]:
        return [
            request_key(self.uri, kind, full_conversation(shared_prefix, c), **parts)
            for c in conversations
        ]

    def _through(self, keys: list[str], compute: Any, dump: Any, load: Any) -> list[Any]:
        results: list[Any] = [None] * len(keys)
        missing = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key)
            if hit is None:
                missing.append(i)
            else:
                results[i] = load(hit)
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            for i, value in zip(missing, compute(missing), strict=True):
                self.cache.put(keys[i], dump(value))
                results[i] = value
        return results
