"""The LM-call cache: resumed runs replay stored replies; only validated replies are stored."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel

from agent.models import (
    CachedBackend,
    CallCache,
    ChatMessage,
    GenerationParams,
    MemoryCallCache,
    ScriptedBackend,
    request_key,
)
from principles import MalformedReply


class Verdict(BaseModel):
    verdict: Literal["yes", "no"]


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


def test_memory_cache_is_a_call_cache() -> None:
    cache = MemoryCallCache()
    assert isinstance(cache, CallCache)
    assert cache.get("k") is None
    cache.put("k", "v")
    assert cache.get("k") == "v"


def test_key_depends_on_model_messages_params_and_seed() -> None:
    base = request_key("m", "generate", user("a"), params=GenerationParams(seed=1))
    assert base == request_key("m", "generate", user("a"), params=GenerationParams(seed=1))
    assert base != request_key("m", "generate", user("a"), params=GenerationParams(seed=2))
    assert base != request_key("m2", "generate", user("a"), params=GenerationParams(seed=1))
    assert base != request_key("m", "generate", user("b"), params=GenerationParams(seed=1))
    assert len(base) == 64


def test_a_resumed_run_replays_instead_of_regenerating() -> None:
    cache = MemoryCallCache()
    first = CachedBackend(ScriptedBackend(replies=["A", "B"]), cache)
    assert first.generate([user("a"), user("b")]) == ["A", "B"]
    inner = ScriptedBackend(replies=["C"])
    resumed = CachedBackend(inner, cache)
    assert resumed.generate([user("a"), user("new"), user("b")]) == ["A", "C", "B"]
    assert [c.conversations for c in inner.history] == [[user("new")]]
    assert (resumed.hits, resumed.misses) == (2, 1)


def test_different_params_miss() -> None:
    cache = MemoryCallCache()
    backend = CachedBackend(ScriptedBackend(replies=["A", "B"]), cache)
    backend.generate([user("a")], GenerationParams(seed=1))
    assert backend.generate([user("a")], GenerationParams(seed=2)) == ["B"]


def test_structured_replies_and_scores_are_cached() -> None:
    cache = MemoryCallCache()
    inner = ScriptedBackend(replies=[{"verdict": "yes"}])
    inner.queue_scores([0.0, -2.0])
    backend = CachedBackend(inner, cache)
    for _ in range(2):
        assert backend.generate_structured([user("a")], Verdict) == [Verdict(verdict="yes")]
        assert backend.score_options([user("a")], [" yes", " no"]) == [[0.0, -2.0]]
    assert len(inner.history) == 2
    stored = [cache.get(k) for k in cache._data]
    assert all(json.loads(v) is not None for v in stored if v)


def test_nothing_is_stored_from_a_malformed_reply() -> None:
    cache = MemoryCallCache()
    backend = CachedBackend(ScriptedBackend(replies=["bad", "bad", "bad"]), cache)
    with pytest.raises(MalformedReply):
        backend.generate_structured([user("a")], Verdict)
    assert len(cache) == 0


def test_shared_prefix_is_part_of_the_key() -> None:
    cache = MemoryCallCache()
    backend = CachedBackend(ScriptedBackend(replies=["A", "B"]), cache)
    prefix = [ChatMessage(role="system", content="constitution v1")]
    assert backend.generate([user("a")], shared_prefix=prefix) == ["A"]
    other = [ChatMessage(role="system", content="constitution v2")]
    assert backend.generate([user("a")], shared_prefix=other) == ["B"]
