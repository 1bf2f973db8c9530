"""The converted-model cache: where it lives, and that a failed conversion leaves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.models import _local_models as local_models
from agent.models import cache_root, default_model_dir, describe_model, list_local_models
from principles import InvalidInput, ModelError


def test_cache_dir_is_overridable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHARTER_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path
    assert default_model_dir() == tmp_path / "models" / "smollm2-135m-instruct"
    (entry,) = list_local_models()
    assert entry.uri == "default"
    assert not entry.cached
    assert entry.size_bytes == 0


def test_a_failed_conversion_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import transformers

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("killed mid-conversion")

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", explode)
    target = tmp_path / "models" / "tiny"
    with pytest.raises(ModelError, match="killed mid-conversion"):
        local_models.convert_gguf(gguf, target)
    assert not target.exists()
    assert list((tmp_path / "models").iterdir()) == []


def test_a_partial_directory_is_never_taken_for_a_model(tmp_path: Path) -> None:
    partial = tmp_path / "half"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    assert not local_models.is_converted(partial)


def test_gguf_entries_describe_the_file(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    entry = describe_model(f"gguf:{gguf}")
    assert entry.source == str(gguf)
    assert entry.cache_dir is not None and not entry.cached
    assert "missing" in describe_model("gguf:/nope.gguf").description
    assert describe_model(f"hf:{tmp_path}").cached


def test_pull_refuses_remote_models() -> None:
    from agent.models import pull_model

    with pytest.raises(InvalidInput):
        pull_model("openai:http://x/v1#m")
