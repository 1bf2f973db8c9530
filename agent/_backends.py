"""Opening the model a run uses: by URI, with the store's LM-call cache in front of it."""

from __future__ import annotations

from typing import Any

from agent._scripted_loop import loop_backend
from agent._traced import traced
from agent._tracing import NoTracer, Tracer
from agent.models import Backend, CachedBackend, load_backend
from store import Store


class StoreCallCache:
    """The `CallCache` protocol over the store's `lm_cache` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> str | None:
        return self.store.cache_get(key)

    def put(self, key: str, value: str) -> None:
        self.store.cache_put(key, value)


def open_backend(
    uri: str,
    store: Store | None = None,
    *,
    cache: bool = True,
    tracer: Tracer | None = None,
    options: dict[str, Any] | None = None,
) -> Backend:
    """`scripted:loop` is the deterministic loop script; anything else goes to the registry,
    with `options` (keywords that, unlike the URI's own, leave the model's name alone).
    With a store, calls are cached there, so a resumed run replays instead of re-generating.
    With a `tracer`, the calls that reach the model (not those the cache answers) are spans.
    """
    loaded: Backend = (
        loop_backend() if uri == "scripted:loop" else load_backend(uri, **(options or {}))
    )
    backend = traced(loaded, tracer or NoTracer())
    if store is not None and cache:
        return CachedBackend(backend, StoreCallCache(store))
    return backend
