"""Charter's model layer: language models behind one Protocol, chosen by a URI.

    backend = load_backend("default")            # SmolLM2-135M-Instruct, embedded
    backend = load_backend("hf:./my-model")      # any local causal LM (or a hub id)
    backend = load_backend("gguf:./model.gguf")  # converted once to safetensors
    backend = load_backend("openai:http://localhost:8000/v1#my-model")
    backend = ScriptedBackend(replies=[...])     # deterministic, for tests and examples

Every call is batched: `generate`, `generate_structured` (always a validated pydantic
instance, or `MalformedReply`) and `score_options` (log-probabilities of answer options,
reusing the key/value cache of a `shared_prefix` where the backend can). Wrap a backend in
`CachedBackend(backend, cache)` to replay calls from a `CallCache`.

Importing this package does not import torch, transformers or xgrammar.
"""

from agent.models import _local, _openai, _scripted  # noqa: F401  (they register backends)
from agent.models._cache import CachedBackend, CallCache, MemoryCallCache, request_key
from agent.models._catalog import ModelEntry, describe_model, list_local_models, pull_model
from agent.models._errors import BackendUnavailable, ModelNotInstalled, UnknownBackend
from agent.models._local_models import (
    DEFAULT_INSTALL,
    cache_root,
    default_model_dir,
    ensure_default_model,
)
from agent.models._openai import OpenAIBackend
from agent.models._registry import (
    backend_schemes,
    load_backend,
    parse_uri,
    register_backend,
    split_options,
)
from agent.models._scripted import ScriptedBackend, ScriptedCall
from agent.models._types import (
    Backend,
    BackendInfo,
    ChatMessage,
    Conversation,
    FeatureBackend,
    GenerationParams,
    Role,
    ScoredPrompt,
    TokenCounter,
    exposes_features,
)

__all__ = [
    "DEFAULT_INSTALL",
    "Backend",
    "BackendInfo",
    "BackendUnavailable",
    "CachedBackend",
    "CallCache",
    "ChatMessage",
    "Conversation",
    "FeatureBackend",
    "GenerationParams",
    "MemoryCallCache",
    "ModelEntry",
    "ModelNotInstalled",
    "OpenAIBackend",
    "Role",
    "ScoredPrompt",
    "ScriptedBackend",
    "ScriptedCall",
    "TokenCounter",
    "UnknownBackend",
    "backend_schemes",
    "cache_root",
    "default_model_dir",
    "describe_model",
    "ensure_default_model",
    "exposes_features",
    "list_local_models",
    "load_backend",
    "parse_uri",
    "pull_model",
    "register_backend",
    "request_key",
    "split_options",
]
