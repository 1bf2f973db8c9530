"""Time spent inside model calls, so that a run can report its overhead outside them."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from pydantic import BaseModel

from agent.models import (
    Backend,
    BackendInfo,
    Conversation,
    FeatureBackend,
    GenerationParams,
    ScoredPrompt,
)


class TimedBackend:
    """Wraps a backend and adds up the wall time and the number of calls per method."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend
        self.uri = backend.uri
        self.name = backend.name
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.items: dict[str, int] = defaultdict(int)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def _timed(self, method: str, n: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[method] += time.perf_counter() - start
            self.calls[method] += 1
            self.items[method] += n

    def info(self) -> BackendInfo:
        return self.inner.info()

    @property
    def wrapped(self) -> Backend:
        """What it times: `exposes_features` asks the wrapped backend."""
        return self.inner

    def score_with_features(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
        layer: int = -1,
    ) -> list[ScoredPrompt]:
        inner = cast(FeatureBackend, self.inner)
        result: list[ScoredPrompt] = self._timed(
            "score_with_features",
            len(prompts),
            inner.score_with_features,
            prompts,
            options,
            shared_prefix=shared_prefix,
            layer=layer,
        )
        return result

    def relevance(self, exchanges: Sequence[tuple[str, str]]) -> list[float]:
        inner = cast(FeatureBackend, self.inner)
        result: list[float] = self._timed("relevance", len(exchanges), inner.relevance, exchanges)
        return result

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[str]:
        result: list[str] = self._timed(
            "generate",
            len(conversations),
            self.inner.generate,
            conversations,
            params,
            shared_prefix=shared_prefix,
        )
        return result

    def generate_structured(
        self,
        conversations: Sequence[Conversation],
        schema: type[Any],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[Any]:
        result: list[BaseModel] = self._timed(
            "generate_structured",
            len(conversations),
            self.inner.generate_structured,
            conversations,
            schema,
            params,
            shared_prefix=shared_prefix,
        )
        return result

    def score_options(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[list[float]]:
        result: list[list[float]] = self._timed(
            "score_options",
            len(prompts),
            self.inner.score_options,
            prompts,
            options,
            shared_prefix=shared_prefix,
        )
        return result
