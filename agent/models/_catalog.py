"""What models this machine has, where they are cached and how big they are.

Backs `charter models list | info | pull`. Describing a model never loads it, and never
imports torch; only `pull_model` converts (and so imports transformers).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from agent.models._errors import ModelNotInstalled
from agent.models._local_models import (
    DEFAULT_INSTALL,
    SOURCE_FILE,
    convert_gguf,
    default_gguf,
    default_model_dir,
    dir_size,
    ensure_default_model,
    gguf_cache_dir,
    is_converted,
    models_dir,
)
from agent.models._registry import parse_uri
from principles import InvalidInput


class ModelEntry(BaseModel):
    """One model as `charter models` shows it."""

    uri: str
    backend: str
    description: str
    source: str | None = None
    cache_dir: str | None = None
    cached: bool = False
    size_bytes: int = 0


def list_local_models() -> list[ModelEntry]:
    """The default model (installed or not) and every other converted model in the cache."""
    found = [describe_model("default")]
    root = models_dir()
    if root.is_dir():
        for directory in sorted(root.iterdir()):
            if directory == default_model_dir() or not is_converted(directory):
                continue
            record = json.loads((directory / SOURCE_FILE).read_text())
            found.append(
                ModelEntry(
                    uri=f"gguf:{record['source']}",
                    backend="transformers",
                    description="converted GGUF",
                    source=record["source"],
                    cache_dir=str(directory),
                    cached=True,
                    size_bytes=dir_size(directory),
                )
            )
    return found


def describe_model(uri: str) -> ModelEntry:
    """What a backend URI refers to, without loading it."""
    scheme, target = parse_uri(uri)
    if scheme == "default":
        directory = default_model_dir()
        try:
            source: str | None = str(default_gguf())
            description = "SmolLM2-135M-Instruct, the embedded default model"
        except ModelNotInstalled:
            source = None
            description = f"SmolLM2-135M-Instruct (not installed: {DEFAULT_INSTALL})"
        return ModelEntry(
            uri="default",
            backend="transformers",
            description=description,
            source=source,
            cache_dir=str(directory),
            cached=is_converted(directory),
            size_bytes=dir_size(directory),
        )
    if scheme == "gguf":
        path = Path(target).expanduser()
        converted = gguf_cache_dir(path) if path.is_file() else None
        return ModelEntry(
            uri=uri,
            backend="transformers",
            description="GGUF file" if converted else "GGUF file (missing)",
            source=str(path),
            cache_dir=str(converted) if converted else None,
            cached=bool(converted and is_converted(converted)),
            size_bytes=dir_size(converted) if converted else 0,
        )
    if scheme == "hf":
        path = Path(target).expanduser()
        local = path.is_dir()
        return ModelEntry(
            uri=uri,
            backend="transformers",
            description="local model directory" if local else "Hugging Face hub id",
            source=str(path) if local else target,
            cache_dir=str(path) if local else None,
            cached=local,
            size_bytes=dir_size(path) if local else 0,
        )
    if scheme == "openai":
        base_url, _, model = target.rpartition("#")
        return ModelEntry(
            uri=uri, backend="openai", description=f"model {model!r} served at {base_url}"
        )
    return ModelEntry(uri=uri, backend=scheme, description=f"{scheme} backend")


def pull_model(uri: str = "default") -> ModelEntry:
    """Make a local model ready to load fast: convert and cache it. Returns its entry."""
    scheme, target = parse_uri(uri)
    if scheme == "default":
        ensure_default_model()
    elif scheme == "gguf":
        path = Path(target).expanduser()
        if not path.is_file():
            raise InvalidInput(f"GGUF file not found: {target}")
        convert_gguf(path, gguf_cache_dir(path))
    else:
        raise InvalidInput(f"pull works on default and gguf: models, not {scheme}:")
    return describe_model(uri)
