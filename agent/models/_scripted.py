"""A deterministic backend for tests and examples: queued or rule-based replies and scores.

It records every call in `history`. Structured replies go through the same validation and
re-ask path as a real server, so a queued malformed reply exercises that path: the next
queued reply is the answer to the re-ask.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from agent.models._registry import register_backend
from agent.models._structured import parse_reply, reask_turns
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
from principles import MalformedReply, ModelError

Reply = str | BaseModel | dict[str, Any]
ReplyFn = Callable[[list[ChatMessage]], Reply]
ScoreFn = Callable[[list[ChatMessage], Sequence[str]], Sequence[float]]
FeatureFn = Callable[[list[ChatMessage]], Sequence[float]]
FEATURE_DIM = 32


def word_overlap(request: str, response: str) -> float:
    asked = set(re.findall(r"[a-z']+", request.lower()))
    said = re.findall(r"[a-z']+", response.lower())
    return sum(w in asked for w in said) / max(1, len(said))


def hashed_words(conversation: list[ChatMessage]) -> list[float]:
    """The scripted "hidden state": a bag of the conversation's words hashed into
    `FEATURE_DIM` counts (log-scaled), so that a probe fitted on it can learn word cues."""
    counts = [0.0] * FEATURE_DIM
    for word in re.findall(r"[a-z']+", " ".join(m.content for m in conversation).lower()):
        counts[int(hashlib.sha256(word.encode()).hexdigest()[:8], 16) % FEATURE_DIM] += 1.0
    return [math.log1p(c) for c in counts]


@dataclass(frozen=True)
class ScriptedCall:
    """One call made to a `ScriptedBackend`, as it was asked."""

    method: Literal["generate", "generate_structured", "score_options", "score_with_features"]
    conversations: list[list[ChatMessage]]
    params: GenerationParams | None = None
    schema: str | None = None
    options: tuple[str, ...] = ()


@dataclass
class _Rule:
    match: Callable[[list[ChatMessage]], bool]
    reply: ReplyFn


@dataclass
class ScriptedBackend:
    """Replies from a queue, or from rules tried before the queue.

    - `replies`: answered in order, one per conversation, across calls.
    - `add_rule(pattern, reply)`: a regex searched in the last user turn (or a predicate);
      `reply` is a value or a function of the conversation. Rules are never used up.
    - `default`: the reply when neither a rule nor the queue has one; without it, an empty
      queue raises `ModelError`, so a test notices an unexpected call.
    - scores: `queue_scores(row, ...)`, else `score_fn(conversation, options)`, else uniform.
    - features (`score_with_features`): `feature_fn(conversation)`, else `hashed_words`;
      `relevance`: `relevance_fn(request, response)`, else `word_overlap`.
    - `max_reasks`: re-asks allowed per structured reply before `MalformedReply`.
    """

    replies: Iterable[Reply] = ()
    default: Reply | None = None
    score_fn: ScoreFn | None = None
    feature_fn: FeatureFn | None = None
    relevance_fn: Callable[[str, str], float] | None = None
    max_reasks: int = 2
    uri: str = "scripted:"
    name: str = "scripted"
    history: list[ScriptedCall] = field(default_factory=list)
    _queue: deque[Reply] = field(init=False)
    _rules: list[_Rule] = field(init=False, default_factory=list)
    _scores: deque[list[float]] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        self._queue = deque(self.replies)

    def queue(self, *replies: Reply) -> None:
        """Append replies to the queue."""
        self._queue.extend(replies)

    def queue_scores(self, *rows: Sequence[float]) -> None:
        """Append score rows; each answers one prompt of a later `score_options` call."""
        self._scores.extend(list(row) for row in rows)

    def add_rule(
        self, pattern: str | Callable[[list[ChatMessage]], bool], reply: Reply | ReplyFn
    ) -> None:
        """Answer conversations that match `pattern` with `reply`."""
        match = _last_user_matches(re.compile(pattern)) if isinstance(pattern, str) else pattern
        reply_fn: ReplyFn = reply if callable(reply) else _constant(reply)
        self._rules.append(_Rule(match, reply_fn))

    @property
    def pending(self) -> int:
        """Replies still queued."""
        return len(self._queue)

    def info(self) -> BackendInfo:
        return BackendInfo(
            uri=self.uri, backend="scripted", model="scripted", details={"queued": self.pending}
        )

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[str]:
        full = [full_conversation(shared_prefix, c) for c in conversations]
        self.history.append(ScriptedCall("generate", full, params or GenerationParams()))
        replies = [_as_text(self._next(c)) for c in full]
        stop = (params or GenerationParams()).stop
        return [cut_at_stop(r, stop) for r in replies]

    def generate_structured(
        self,
        conversations: Sequence[Conversation],
        schema: type[SchemaT],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[SchemaT]:
        full = [full_conversation(shared_prefix, c) for c in conversations]
        self.history.append(
            ScriptedCall("generate_structured", full, params or GenerationParams(), schema.__name__)
        )
        return [self._structured_one(c, schema) for c in full]

    def score_options(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[list[float]]:
        if not options:
            raise ModelError("score_options needs at least one option")
        full = [full_conversation(shared_prefix, p) for p in prompts]
        self.history.append(ScriptedCall("score_options", full, options=tuple(options)))
        return self._score_rows(full, options)

    def score_with_features(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
        layer: int = -1,
    ) -> list[ScoredPrompt]:
        if not options:
            raise ModelError("score_options needs at least one option")
        full = [full_conversation(shared_prefix, p) for p in prompts]
        self.history.append(ScriptedCall("score_with_features", full, options=tuple(options)))
        features = self.feature_fn or hashed_words
        return [
            ScoredPrompt(row, [float(x) for x in features(c)])
            for row, c in zip(self._score_rows(full, options), full, strict=True)
        ]

    def relevance(self, exchanges: Sequence[tuple[str, str]]) -> list[float]:
        """`relevance_fn(request, response)`, else the share of the response's words that
        the request also uses (a deterministic stand-in for the model's figure)."""
        return [(self.relevance_fn or word_overlap)(q, a) for q, a in exchanges]

    def prompt_tokens(self, conversation: Conversation) -> int:
        """The scripted "tokens": words, summed over the turns."""
        return sum(self.text_tokens(m.content) for m in conversation)

    def text_tokens(self, text: str) -> int:
        return len(text.split())

    def _score_rows(
        self, full: list[list[ChatMessage]], options: Sequence[str]
    ) -> list[list[float]]:
        rows = []
        for conversation in full:
            if self._scores:
                row = self._scores.popleft()
            elif self.score_fn is not None:
                row = [float(x) for x in self.score_fn(conversation, options)]
            else:
                row = [-math.log(len(options))] * len(options)
            if len(row) != len(options):
                raise ModelError(
                    f"scripted score row has {len(row)} values for {len(options)} options"
                )
            rows.append(row)
        return rows

    def _next(self, conversation: list[ChatMessage]) -> Reply:
        for rule in self._rules:
            if rule.match(conversation):
                return rule.reply(conversation)
        if self._queue:
            return self._queue.popleft()
        if self.default is not None:
            return self.default
        last = conversation[-1].content[:60] if conversation else ""
        raise ModelError(f"scripted backend has no reply for {last!r}")

    def _structured_one(self, conversation: list[ChatMessage], schema: type[SchemaT]) -> SchemaT:
        turns = list(conversation)
        for _attempt in range(self.max_reasks + 1):
            text = _as_text(self._next(turns))
            try:
                return parse_reply(text, schema)
            except ValidationError as error:
                turns += reask_turns(text, error)
                last_error = error
        raise MalformedReply(
            f"scripted reply did not validate as {schema.__name__} after "
            f"{self.max_reasks} re-asks: {last_error.errors(include_url=False)[0]['msg']}"
        )


def _last_user_matches(regex: re.Pattern[str]) -> Callable[[list[ChatMessage]], bool]:
    def match(conversation: list[ChatMessage]) -> bool:
        users = [m.content for m in conversation if m.role == "user"]
        return bool(users) and regex.search(users[-1]) is not None

    return match


def _constant(reply: Reply) -> ReplyFn:
    return lambda _conversation: reply


def _as_text(reply: Reply) -> str:
    if isinstance(reply, BaseModel):
        return reply.model_dump_json()
    if isinstance(reply, dict):
        return json.dumps(reply)
    return reply


@register_backend("scripted")
def _scripted_factory(target: str, **options: Any) -> ScriptedBackend:
    return ScriptedBackend(uri=f"scripted:{target}", **options)
