"""The model layer's contract: request and reply values and the `Backend` Protocol.

Every call is batched: a backend receives many conversations at once and answers them in
order, one reply per conversation. Nothing here imports a machine-learning library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]

SchemaT = TypeVar("SchemaT", bound=BaseModel)


class ChatMessage(BaseModel):
    """One turn of a chat; immutable so that it can be hashed into a cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str


Conversation = Sequence[ChatMessage]


class GenerationParams(BaseModel):
    """How to decode. `temperature == 0` means greedy; a `seed` makes sampling repeatable.

    `stop` strings end a reply and are not part of it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_tokens: int = Field(default=256, ge=1, le=32_768)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop: tuple[str, ...] = ()


class BackendInfo(BaseModel):
    """What a backend is: printed by `charter models info` and stored with a run."""

    model_config = ConfigDict(frozen=True)

    uri: str
    backend: str
    model: str
    details: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A language model behind one interface, chosen by `load_backend(uri)`.

    `shared_prefix`, where given, is prepended to every conversation; backends that can
    reuse the key/value cache of those messages (the constitution, identical in every
    critique) compute it once. Replies are the same with or without it.
    """

    uri: str
    name: str

    def info(self) -> BackendInfo:
        """Describe the backend without calling the model."""
        ...

    def generate(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[str]:
        """One assistant reply per conversation, in order."""
        ...

    def generate_structured(
        self,
        conversations: Sequence[Conversation],
        schema: type[SchemaT],
        params: GenerationParams | None = None,
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[SchemaT]:
        """One validated `schema` instance per conversation, or `MalformedReply`."""
        ...

    def score_options(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
    ) -> list[list[float]]:
        """Log-probability of each option as the start of the assistant's reply, per prompt.

        `result[i][j]` is log P(options[j] | prompt i), summed over the option's tokens.
        """
        ...


class ScoredPrompt(NamedTuple):
    """Option log-probabilities for one prompt, with the model's hidden state at the
    position that predicts the reply (the features a learned calibration reads)."""

    logprobs: list[float]
    features: list[float]


@runtime_checkable
class FeatureBackend(Protocol):
    """A backend that can also expose its hidden states: local models, the scripted one.

    Servers behind `openai:` cannot; a judge on them is calibrated from option scores only.
    """

    def score_with_features(
        self,
        prompts: Sequence[Conversation],
        options: Sequence[str],
        *,
        shared_prefix: Conversation | None = None,
        layer: int = -1,
    ) -> list[ScoredPrompt]:
        """`score_options`' log-probabilities, plus per prompt the hidden state of layer
        `layer` (0 = the embeddings, -1 = the last layer) at the prompt's last position."""
        ...

    def relevance(self, exchanges: Sequence[tuple[str, str]]) -> list[float]:
        """Per (request, response): how much the request explains the response, as the
        mean log-probability of the response's tokens after the request minus after a
        neutral request (pointwise mutual information per token). Low for refusals and for
        answers to another question; a calibration reads it as a feature."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """A backend that can say what a request and a reply cost it in tokens, without calling
    the model (the usage figures of traces). Local models count with their tokenizer; the
    scripted backend counts words."""

    def prompt_tokens(self, conversation: Conversation) -> int:
        """Tokens the model reads for `conversation`, as it would be sent to it."""
        ...

    def text_tokens(self, text: str) -> int:
        """Tokens of `text` on its own (a reply)."""
        ...


def exposes_features(backend: object) -> bool:
    """Whether `backend.score_with_features` works; a wrapper answers for what it wraps."""
    inner = getattr(backend, "wrapped", None)
    return exposes_features(inner) if inner is not None else isinstance(backend, FeatureBackend)


def full_conversation(prefix: Conversation | None, conversation: Conversation) -> list[ChatMessage]:
    """The conversation a backend actually answers: the shared prefix, then the turns."""
    return [*(prefix or ()), *conversation]


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (not including) the earliest stop string in it."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]
