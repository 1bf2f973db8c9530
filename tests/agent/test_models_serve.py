"""The OpenAI-compatible backend against a real `transformers serve` on loopback (slow).

`transformers serve` ignores `response_format` and `logprobs`, so this exercises the
probe-and-fall-back path for structured output and the reply-matching fallback for
scores. The server runs offline on the cached default model and is stopped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from agent.models import (
    BackendUnavailable,
    ChatMessage,
    GenerationParams,
    OpenAIBackend,
    ensure_default_model,
    load_backend,
)

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(_offline: None) -> Iterator[tuple[str, str]]:
    """(base URL, model name) of a `transformers serve` process on a free loopback port."""
    model_dir = str(ensure_default_model())
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    assert exe, "transformers CLI missing: pip install 'transformers[serving]'"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [
        exe,
        "serve",
        model_dir,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
    ]
    process = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"transformers serve exited: {process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not ready after {START_TIMEOUT_S}s")
            time.sleep(0.5)
        yield f"{base}/v1", model_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


class City(BaseModel):
    city: str


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


def test_generation(served: tuple[str, str]) -> None:
    base, model = served
    backend = load_backend(f"openai:{base}#{model}")
    replies = backend.generate(
        [user("What is the capital of France?"), user("Say hello.")],
        GenerationParams(max_new_tokens=16),
    )
    assert len(replies) == 2
    assert "Paris" in replies[0]
    assert all(r.strip() for r in replies)


def test_structured_output_through_the_fallback(served: tuple[str, str]) -> None:
    base, model = served
    backend = OpenAIBackend(base, model)
    replies = backend.generate_structured(
        [user("What is the capital of France?"), user("What is the capital of Italy?")],
        City,
        GenerationParams(max_new_tokens=32),
    )
    assert backend.structured_mode == "prompt"  # the server ignored response_format
    assert [type(r) for r in replies] == [City, City]
    assert replies[0].city == "Paris"


def test_scores_through_the_fallback(served: tuple[str, str]) -> None:
    base, model = served
    backend = OpenAIBackend(base, model)
    ((paris, rome),) = backend.score_options(
        [user("What is the capital of France? Answer with one word.")], ["Paris", "Rome"]
    )
    assert backend.returns_logprobs is False
    assert paris > rome


def test_a_down_server_is_a_clear_error() -> None:
    port = free_port()
    backend = load_backend(f"openai:http://127.0.0.1:{port}/v1#m", max_retries=1, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        backend.generate([user("hello")])
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "cannot connect" in message
    assert "\n" not in message
