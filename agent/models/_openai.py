"""The OpenAI-compatible backend: vLLM, llama.cpp server, Ollama, `transformers serve`.

URI: `openai:<base url>#<model>`, e.g. `openai:http://127.0.0.1:8000/v1#my-model`. The API
key comes from the `api_key` option, else `$CHARTER_OPENAI_API_KEY`, else
`$OPENAI_API_KEY`. Conversations of a batch are sent as concurrent requests.

Structured output: the first structured call probes the server once with a schema no
unconstrained model would follow by chance. A server that honours `response_format` gets
the schema that way; one that rejects or silently ignores it gets the schema in the
prompt instead. Either way every reply is validated, re-asked with the validation error up
to `max_reasks` times, and otherwise raised as `MalformedReply`; nothing unvalidated is
ever returned.

Scoring: where the server returns `logprobs`, an option's score is the log-probability of
its first token among the first reply token's `top_logprobs` (exact for one-token options
such as " yes" or "3"; an option outside the top list gets the smallest listed value, an
upper bound). Where it does not (e.g. `transformers serve`), the fallback asks for a short
greedy reply and scores the option it names first (as a whole word, in any case) as log 1
and every other option as `log(1e-6)`; when it names none, all get log(1/len(options)).
These are point estimates, not probabilities: prefer a server that returns logprobs.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from agent.models._http import JsonClient
from agent.models._registry import check_options, register_backend
from agent.models._structured import parse_reply, reask_turns, schema_instruction, schema_name
from agent.models._types import (
    BackendInfo,
    ChatMessage,
    Conversation,
    GenerationParams,
    SchemaT,
    cut_at_stop,
    full_conversation,
)
from principles import InvalidInput, MalformedReply, ModelError

StructuredMode = Literal["auto", "json_schema", "prompt"]
FALLBACK_MISS = math.log(1e-6)
T = TypeVar("T")


class _Probe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    charter_probe: Literal[7291]


class OpenAIBackend:
    """A model served over the OpenAI chat-completions API (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_reasks: int = 2,
        concurrency: int = 4,
        structured_mode: StructuredMode = "auto",
        top_logprobs: int = 20,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not model:
            raise InvalidInput(
                "an openai: URI needs a model after '#', e.g. openai:http://host/v1#m"
            )
        self.base_url = _with_api_path(base_url)
        self.model = model
        self.uri = f"openai:{self.base_url}#{model}"
        self.max_reasks = max_reasks
        self.concurrency = max(1, concurrency)
        self.structured_mode: StructuredMode = structured_mode
        self.top_logprobs = top_logprobs
        self.returns_logprobs: bool | None = None
        key = (
            api_key or os.environ.get("CHARTER_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        )
        extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self.client = JsonClient(
            self.base_url,
            api_key=key,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            transport=transport,
            **extra,
        )

    def info(self) -> BackendInfo:
        return BackendInfo(
            uri=self.uri,
            backend=self.name,
            model=self.model,
            details={
                "base_url": self.base_url,
                "structured_mode": self.structured_mode,
                "returns_logprobs": self.returns_logprobs,
            },
        )

    def close(self) -> None:
        self.client.close()

    # -- generation ----------------------------------------------------------------------

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[str]:
        params = params or GenerationParams()
        full = [full_conversation(shared_prefix, c) for c in conversations]
        return self._map(lambda c: cut_at_stop(self._complete(c, params), params.stop), full)

    def generate_structured(
        self,
        conversations: Sequence[Conversation],
        schema: type[SchemaT],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[SchemaT]:
        params = (params or GenerationParams()).model_copy(update={"stop": ()})
        if self.structured_mode == "auto":
            self.structured_mode = self._probe_structured()
        full = [full_conversation(shared_prefix, c) for c in conversations]
        return self._map(lambda c: self._structured_one(c, schema, params), full)

    def _structured_one(
        self, conversation: list[ChatMessage], schema: type[SchemaT], params: GenerationParams
    ) -> SchemaT:
        native = self.structured_mode == "json_schema"
        turns = conversation if native else _with_instruction(conversation, schema)
        format_ = _response_format(schema) if native else None
        for _attempt in range(self.max_reasks + 1):
            text = self._complete(turns, params, response_format=format_)
            try:
                return parse_reply(text, schema)
            except ValidationError as error:
                turns = [*turns, *reask_turns(text, error)]
                last = error
        raise MalformedReply(
            f"{self.uri} did not produce a valid {schema.__name__} after {self.max_reasks} "
            f"re-asks: {last.errors(include_url=False)[0]['msg']}"
        )

    def _probe_structured(self) -> StructuredMode:
        """Whether the server enforces `response_format` (probed once, then remembered)."""
        ask = [ChatMessage(role="user", content="Say hello.")]
        try:
            text = self._complete(
                ask, GenerationParams(max_new_tokens=24), response_format=_response_format(_Probe)
            )
        except ModelError as error:
            if "refused" in str(error):  # a 4xx: the server rejects response_format
                return "prompt"
            raise
        try:
            parse_reply(text, _Probe)
        except ValidationError:
            return "prompt"
        return "json_schema"

    def _complete(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        *,
        response_format: dict[str, Any] | None = None,
        logprobs: bool = False,
    ) -> str:
        return _content(self._chat(messages, params, response_format, logprobs))

    def _chat(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        response_format: dict[str, Any] | None = None,
        logprobs: bool = False,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in messages],
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": False,
        }
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.stop:
            payload["stop"] = list(params.stop)
        if response_format is not None:
            payload["response_format"] = response_format
        if logprobs:
            payload["logprobs"] = True
            payload["top_logprobs"] = self.top_logprobs
        return self.client.post("/chat/completions", payload)

    # -- scoring -------------------------------------------------------------------------

    def score_options(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[list[float]]:
        if not options:
            raise InvalidInput("score_options needs at least one option")
        full = [full_conversation(shared_prefix, p) for p in prompts]
        return self._map(lambda c: self._score_one(c, options), full)

    def _score_one(self, conversation: list[ChatMessage], options: Sequence[str]) -> list[float]:
        params = GenerationParams(max_new_tokens=16, temperature=0.0)
        body = self._chat(conversation, params, logprobs=self.returns_logprobs is not False)
        top = _top_logprobs(body)
        if self.returns_logprobs is None:
            self.returns_logprobs = top is not None
        if top:
            floor = min(top.values())
            return [_option_logprob(o, top, floor) for o in options]
        return _fallback_scores(_content(body), options)

    def _map(self, fn: Callable[[list[ChatMessage]], T], items: list[list[ChatMessage]]) -> list[T]:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))


def _with_api_path(base_url: str) -> str:
    """The base URL with `/v1` when none of its path was given."""
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"not an http(s) URL: {base_url!r}")
    return base if parts.path not in ("", "/") else f"{base}/v1"


def _response_format(schema: type[BaseModel]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": schema_name(schema),
            "schema": schema.model_json_schema(),
            "strict": True,
        },
    }


def _with_instruction(
    conversation: list[ChatMessage], schema: type[BaseModel]
) -> list[ChatMessage]:
    """The conversation with the schema instruction added to its last user turn."""
    instruction = schema_instruction(schema).content
    for i in range(len(conversation) - 1, -1, -1):
        if conversation[i].role == "user":
            turn = ChatMessage(role="user", content=f"{conversation[i].content}\n\n{instruction}")
            return [*conversation[:i], turn, *conversation[i + 1 :]]
    return [*conversation, ChatMessage(role="user", content=instruction)]


def _content(body: dict[str, Any]) -> str:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as error:
        raise ModelError(f"model server reply has no message content: {str(body)[:200]}") from error
    return content if isinstance(content, str) else ""


def _top_logprobs(body: dict[str, Any]) -> dict[str, float] | None:
    """The first reply token's alternatives {token: logprob}, or None if not returned."""
    try:
        first = body["choices"][0]["logprobs"]["content"][0]
    except (KeyError, IndexError, TypeError):
        return None
    alternatives = first.get("top_logprobs") or [first]
    top: dict[str, float] = {}
    for alt in alternatives:
        if isinstance(alt, dict) and "token" in alt and "logprob" in alt:
            top[str(alt["token"])] = max(
                float(alt["logprob"]), top.get(str(alt["token"]), -math.inf)
            )
    return top or None


def _option_logprob(option: str, top: dict[str, float], floor: float) -> float:
    if option in top:
        return top[option]
    best = [lp for token, lp in top.items() if token and option.startswith(token)]
    return max(best) if best else floor


def _fallback_scores(reply: str, options: Sequence[str]) -> list[float]:
    """log 1 for the option named first in the reply (whole words, any case), else log 1e-6.

    Ties at one position go to the longest option; a reply naming none gives every option
    log(1/len(options)).
    """
    text = reply.casefold()
    found: list[tuple[int, int, int]] = []
    for i, option in enumerate(options):
        word = option.strip().casefold()
        if not word:
            continue
        match = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text)
        if match:
            found.append((match.start(), -len(word), i))
    if not found:
        return [-math.log(len(options))] * len(options)
    chosen = min(found)[2]
    return [0.0 if i == chosen else FALLBACK_MISS for i in range(len(options))]


@register_backend("openai")
def _openai_factory(target: str, **options: Any) -> OpenAIBackend:
    base_url, sep, model = target.rpartition("#")
    if not sep:
        raise InvalidInput(f"openai: URI needs '#<model>' after the base URL, got openai:{target}")
    check_options(options, OpenAIBackend, f"openai:{target}", internal=("transport", "sleep"))
    return OpenAIBackend(base_url, model, **options)
