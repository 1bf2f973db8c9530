"""The scripted backend: queued and rule-based replies, structured replies, scores, history."""

from __future__ import annotations

import math
from typing import Literal

import pytest
from pydantic import BaseModel

from agent.models import ChatMessage, GenerationParams, ScriptedBackend
from principles import MalformedReply, ModelError


class Verdict(BaseModel):
    verdict: Literal["yes", "no"]
    score: int


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


def test_queued_replies_answer_in_order_across_calls() -> None:
    backend = ScriptedBackend(replies=["one", "two", "three"])
    assert backend.generate([user("a"), user("b")]) == ["one", "two"]
    assert backend.generate([user("c")]) == ["three"]
    assert backend.pending == 0


def test_empty_queue_raises_unless_a_default_is_set() -> None:
    with pytest.raises(ModelError, match="no reply"):
        ScriptedBackend().generate([user("a")])
    assert ScriptedBackend(default="ok").generate([user("a")]) == ["ok"]


def test_rules_come_before_the_queue_and_are_not_used_up() -> None:
    backend = ScriptedBackend(replies=["queued"])
    backend.add_rule(r"capital of France", "Paris")
    backend.add_rule(lambda c: len(c) > 1, lambda c: f"{len(c)} turns")
    replies = backend.generate(
        [user("the capital of France?"), user("other"), user("capital of France")]
    )
    assert replies == ["Paris", "queued", "Paris"]
    two = [ChatMessage(role="system", content="s"), *user("x")]
    assert backend.generate([two]) == ["2 turns"]


def test_history_records_every_call_with_the_shared_prefix_prepended() -> None:
    backend = ScriptedBackend(default="r")
    prefix = [ChatMessage(role="system", content="constitution")]
    params = GenerationParams(max_new_tokens=5, seed=3)
    backend.generate([user("a")], params, shared_prefix=prefix)
    backend.score_options([user("b")], [" yes", " no"])
    assert [call.method for call in backend.history] == ["generate", "score_options"]
    assert backend.history[0].conversations == [[*prefix, *user("a")]]
    assert backend.history[0].params == params
    assert backend.history[1].options == (" yes", " no")


def test_stop_strings_cut_replies() -> None:
    backend = ScriptedBackend(default="answer. More text")
    assert backend.generate([user("a")], GenerationParams(stop=(".",))) == ["answer"]


def test_structured_replies_accept_models_dicts_and_json() -> None:
    backend = ScriptedBackend(
        replies=[
            Verdict(verdict="yes", score=1),
            {"verdict": "no", "score": 2},
            '{"verdict":"no","score":3}',
        ]
    )
    got = backend.generate_structured([user("a"), user("b"), user("c")], Verdict)
    assert [v.score for v in got] == [1, 2, 3]
    assert backend.history[0].schema == "Verdict"


def test_a_malformed_reply_is_reasked_with_the_error() -> None:
    backend = ScriptedBackend(
        replies=["not json", '{"verdict": "maybe", "score": 1}', {"verdict": "yes", "score": 5}]
    )
    seen: list[list[ChatMessage]] = []
    backend.add_rule(lambda c: seen.append(c) or False, "unused")
    (verdict,) = backend.generate_structured([user("judge")], Verdict)
    assert verdict == Verdict(verdict="yes", score=5)
    assert len(seen) == 3
    last = seen[-1]
    assert last[-2] == ChatMessage(role="assistant", content='{"verdict": "maybe", "score": 1}')
    assert "verdict" in last[-1].content and "not valid" in last[-1].content


def test_malformed_after_the_allowed_reasks_raises() -> None:
    backend = ScriptedBackend(replies=["x", "y", "z"], max_reasks=2)
    with pytest.raises(MalformedReply):
        backend.generate_structured([user("judge")], Verdict)
    assert backend.pending == 0


def test_scores_from_queue_then_function_then_uniform() -> None:
    backend = ScriptedBackend()
    backend.queue_scores([0.0, -1.0])
    rows = backend.score_options([user("a"), user("b")], [" yes", " no"])
    assert rows[0] == [0.0, -1.0]
    assert rows[1] == pytest.approx([-math.log(2)] * 2)
    scored = ScriptedBackend(score_fn=lambda c, opts: [-float(i) for i in range(len(opts))])
    assert scored.score_options([user("a")], ["1", "2", "3"]) == [[0.0, -1.0, -2.0]]


def test_score_rows_must_match_the_options() -> None:
    backend = ScriptedBackend()
    backend.queue_scores([0.0])
    with pytest.raises(ModelError):
        backend.score_options([user("a")], [" yes", " no"])
    with pytest.raises(ModelError):
        backend.score_options([user("a")], [])


def test_info_describes_the_backend() -> None:
    info = ScriptedBackend(replies=["a"]).info()
    assert info.backend == "scripted"
    assert info.details["queued"] == 1
