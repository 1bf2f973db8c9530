"""The OpenAI-compatible backend's retry, probing, re-ask and scoring logic, against a mock.

The real-server acceptance test is `test_models_serve.py`; these pin the behaviour a real
small server cannot be made to show on demand (429s, 503s, honoured schemas, logprobs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel

from agent.models import BackendUnavailable, ChatMessage, GenerationParams, OpenAIBackend
from principles import MalformedReply, ModelError

Handler = Callable[[dict[str, Any]], httpx.Response]


class Verdict(BaseModel):
    verdict: Literal["yes", "no"]


def reply(content: str, logprobs: list[tuple[str, float]] | None = None) -> httpx.Response:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}}
    if logprobs is not None:
        top = [{"token": t, "logprob": lp} for t, lp in logprobs]
        choice["logprobs"] = {"content": [{**top[0], "top_logprobs": top}]}
    return httpx.Response(200, json={"choices": [choice]})


class Server:
    """A scripted chat-completions endpoint that records each request body."""

    def __init__(self, *responses: httpx.Response | Handler) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(request.headers)
        nxt = self.responses.pop(0)
        return nxt(body) if callable(nxt) else nxt


def backend(server: Server, sleeps: list[float] | None = None, **options: Any) -> OpenAIBackend:
    record = sleeps if sleeps is not None else []
    return OpenAIBackend(
        "http://model.test/v1",
        "m",
        transport=httpx.MockTransport(server),
        sleep=record.append,
        concurrency=1,
        **options,
    )


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


def test_generation_sends_the_chat_request() -> None:
    server = Server(reply("Paris. Next"))
    b = backend(server)
    params = GenerationParams(max_new_tokens=7, temperature=0.5, seed=11, stop=(".",))
    assert b.generate([user("capital?")], params) == ["Paris"]
    sent = server.requests[0]
    assert sent["model"] == "m"
    assert sent["messages"] == [{"role": "user", "content": "capital?"}]
    assert (sent["max_tokens"], sent["temperature"], sent["seed"], sent["stop"]) == (
        7,
        0.5,
        11,
        ["."],
    )


def test_api_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHARTER_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = Server(reply("x"))
    backend(server).generate([user("a")])
    assert server.headers[0]["authorization"] == "Bearer sk-test"


def test_429_and_5xx_are_retried_with_backoff() -> None:
    server = Server(
        httpx.Response(429, json={"error": {"message": "slow down"}}),
        httpx.Response(503, text="busy"),
        reply("ok"),
    )
    sleeps: list[float] = []
    assert backend(server, sleeps, backoff=0.5).generate([user("a")]) == ["ok"]
    assert sleeps == [0.5, 1.0]


def test_retry_after_is_honoured() -> None:
    server = Server(httpx.Response(429, headers={"retry-after": "3"}), reply("ok"))
    sleeps: list[float] = []
    backend(server, sleeps).generate([user("a")])
    assert sleeps == [3.0]


def test_gives_up_after_the_allowed_retries() -> None:
    server = Server(*[httpx.Response(500, json={"error": {"message": "boom"}})] * 3)
    with pytest.raises(BackendUnavailable, match="HTTP 500: boom after 3 tries") as caught:
        backend(server, max_retries=2).generate([user("a")])
    assert caught.value.url == "http://model.test/v1/chat/completions"
    assert len(server.requests) == 3


def test_client_errors_are_not_retried() -> None:
    server = Server(httpx.Response(400, json={"error": {"message": "bad model"}}))
    with pytest.raises(ModelError, match="bad model"):
        backend(server).generate([user("a")])
    assert len(server.requests) == 1


def test_connection_failures_are_retried_then_reported() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    b = OpenAIBackend(
        "http://model.test/v1",
        "m",
        transport=httpx.MockTransport(refuse),
        sleep=lambda s: None,
        max_retries=1,
    )
    with pytest.raises(BackendUnavailable, match="cannot connect"):
        b.generate([user("a")])


def test_a_server_that_honours_the_schema_gets_response_format() -> None:
    server = Server(reply('{"charter_probe": 7291}'), reply('{"verdict": "yes"}'))
    b = backend(server)
    assert b.generate_structured([user("judge")], Verdict) == [Verdict(verdict="yes")]
    assert b.structured_mode == "json_schema"
    fmt = server.requests[1]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"] == Verdict.model_json_schema()
    assert server.requests[1]["messages"] == [{"role": "user", "content": "judge"}]


def test_a_server_that_ignores_the_schema_gets_it_in_the_prompt_once_probed() -> None:
    server = Server(reply("Hello there!"), reply('{"verdict": "no"}'), reply('{"verdict": "yes"}'))
    b = backend(server)
    assert b.generate_structured([user("a")], Verdict) == [Verdict(verdict="no")]
    assert b.generate_structured([user("b")], Verdict) == [Verdict(verdict="yes")]
    assert b.structured_mode == "prompt"
    assert len(server.requests) == 3  # probed once
    asked = server.requests[1]
    assert "response_format" not in asked
    assert '{"verdict": "yes"}' in asked["messages"][-1]["content"]


def test_a_server_that_rejects_the_schema_falls_back() -> None:
    server = Server(
        httpx.Response(400, json={"error": "response_format unsupported"}),
        reply('{"verdict": "no"}'),
    )
    b = backend(server)
    assert b.generate_structured([user("a")], Verdict) == [Verdict(verdict="no")]
    assert b.structured_mode == "prompt"


def test_an_invalid_reply_is_reasked_with_the_validation_error() -> None:
    server = Server(reply('{"verdict": "maybe"}'), reply('{"verdict": "no"}'))
    b = backend(server, structured_mode="json_schema")
    assert b.generate_structured([user("a")], Verdict) == [Verdict(verdict="no")]
    again = server.requests[1]["messages"]
    assert again[-2] == {"role": "assistant", "content": '{"verdict": "maybe"}'}
    assert "verdict" in again[-1]["content"] and "not valid" in again[-1]["content"]


def test_malformed_after_the_reasks_is_a_typed_error() -> None:
    server = Server(reply("no"), reply("still no"), reply("{}"))
    b = backend(server, structured_mode="json_schema", max_reasks=2)
    with pytest.raises(MalformedReply, match="Verdict"):
        b.generate_structured([user("a")], Verdict)


def test_scores_come_from_logprobs_when_the_server_returns_them() -> None:
    server = Server(reply(" yes", [(" yes", -0.1), (" no", -2.5), ("Yes", -4.0)]))
    b = backend(server)
    (row,) = b.score_options([user("ok?")], [" yes", " no", " maybe"])
    assert row == [-0.1, -2.5, -4.0]  # an option outside the top list gets the floor
    assert server.requests[0]["logprobs"] is True
    assert b.returns_logprobs is True


def test_scores_fall_back_to_the_reply_without_logprobs() -> None:
    server = Server(reply("No, it is not."), reply("Perhaps"), reply("Yes"))
    b = backend(server)
    rows = b.score_options([user("a"), user("b"), user("c")], [" yes", " no"])
    assert b.returns_logprobs is False
    assert rows[0][1] == 0.0 and rows[0][0] < -10
    assert rows[1][0] == rows[1][1] == pytest.approx(-0.6931, abs=1e-4)
    assert rows[2][0] == 0.0
    assert "logprobs" not in server.requests[1]  # not asked again once known absent
