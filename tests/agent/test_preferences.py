"""Preferences files and the reconstruction measure, with a scripted judge that follows a
rule when the constitution states it and otherwise prefers whichever response comes first."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent._preferences import (
    OPTIONS,
    Preference,
    load_preferences,
    parse_preferences,
    reconstruct,
)
from agent._synthetic import RULES, source_pairs
from agent.models import ChatMessage, ScriptedBackend
from principles import InvalidInput, Principle

CITE = Principle(id="cite", title="Cites", text="Mention a source for every claim.")
OTHER = Principle(id="kind", title="Kind", text="Be kind to the user.")


def rule_judge(conversation: list[ChatMessage], options: Sequence[str]) -> list[float]:
    """Prefers the response that mentions a source when the constitution says to (probability
    0.9), else the first response (0.7): a judge with a position bias and no taste."""
    assert tuple(options) == OPTIONS
    system, user = conversation[0].content, conversation[-1].content
    found = re.search(r"Response A: (.*)\n\nResponse B: (.*)\n\n", user, re.S)
    assert found is not None
    a, b = found.groups()
    if "Mention a source" in system and ("source" in a) != ("source" in b):
        p_a = 0.9 if "source" in a else 0.1
    else:
        p_a = 0.7
    return [math.log(p_a), math.log(1 - p_a)]


def pairs(n: int = 12) -> list[Preference]:
    return [
        Preference(
            prompt=f"Question {i}?",
            chosen=f"Answer {i}, per the source Smith {i}.",
            rejected=f"Answer {i}, trust me.",
        )
        for i in range(n)
    ]


def test_a_constitution_that_states_the_rule_reconstructs_the_preferences() -> None:
    judge = ScriptedBackend(score_fn=rule_judge)
    none = reconstruct(judge, [], pairs())
    stated = reconstruct(judge, [CITE], pairs())
    unrelated = reconstruct(judge, [OTHER], pairs())
    # Without the rule the judge only prefers the first position: both orders cancel it.
    assert none.accuracy == 0.5 and none.mean_p_chosen == pytest.approx(0.5)
    assert none.position_bias == pytest.approx(0.2)
    assert unrelated.accuracy == 0.5
    assert stated.accuracy == 1.0 and stated.mean_p_chosen == pytest.approx(0.9)
    assert stated.position_bias == pytest.approx(0.0)
    low, high = stated.accuracy_ci
    assert low <= stated.accuracy <= high
    assert none.accuracy_ci == (0.5, 0.5)  # every pair a tie: half a point each
    assert stated.as_json()["n"] == 12


def test_every_pair_is_asked_in_both_orders_after_the_constitution_as_a_shared_prefix() -> None:
    judge = ScriptedBackend(score_fn=rule_judge)
    reconstruct(judge, [CITE], pairs(2))
    [call] = judge.history
    assert call.method == "score_options" and len(call.conversations) == 4
    firsts = [c[-1].content.split("Response A: ")[1].split("\n")[0] for c in call.conversations]
    assert firsts[0] == pairs(2)[0].chosen and firsts[1] == pairs(2)[0].rejected
    assert all("Mention a source" in c[0].content for c in call.conversations)


def test_the_ci_narrows_with_more_pairs_and_excludes_chance_for_a_strong_rule() -> None:
    judge = ScriptedBackend(score_fn=rule_judge)
    few = reconstruct(judge, [CITE], [*pairs(3), Preference("q?", "trust me", "per the source")])
    many = reconstruct(judge, [CITE], pairs(40))
    assert few.accuracy == 0.75
    assert (few.accuracy_ci[1] - few.accuracy_ci[0]) > (many.accuracy_ci[1] - many.accuracy_ci[0])
    assert many.accuracy_ci[0] > 0.5


def test_preferences_files_are_read_and_a_bad_line_is_named(tmp_path: Path) -> None:
    good = tmp_path / "prefs.jsonl"
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b", "source": "x"}, {}]
    good.write_text(json.dumps(rows[0]) + "\n\n")
    assert load_preferences(good) == [Preference("p", "a", "b")]
    cases = [
        ("not json", "not valid JSON"),
        ("[1]", "each line must be a JSON object"),
        ('{"prompt": "p", "chosen": "a"}', "'rejected' must be a non-empty string"),
        ('{"prompt": "p", "chosen": "a ", "rejected": "a"}', "the same text"),
    ]
    for line, message in cases:
        with pytest.raises(InvalidInput, match=message) as caught:
            parse_preferences(json.dumps(rows[0]) + "\n" + line, "f.jsonl")
        assert str(caught.value).startswith("f.jsonl:2: ")
    with pytest.raises(InvalidInput, match="no preference pairs"):
        parse_preferences("\n", "empty.jsonl")
    with pytest.raises(InvalidInput, match="cannot read preferences"):
        load_preferences(tmp_path / "missing.jsonl")


@pytest.mark.slow
def test_the_default_model_reconstructs_a_source_preference_only_when_told_the_rule(
    default_backend: Any,
) -> None:
    """20 synthetic pairs (ICAI's style): people preferred the answer that names a source."""
    pairs = source_pairs(20)
    rule = RULES["names a source"][1]
    none = reconstruct(default_backend, [], pairs)
    told = reconstruct(default_backend, [rule], pairs)
    assert told.accuracy_ci[0] > max(0.5, none.accuracy_ci[1]), (none, told)
    assert abs(told.position_bias) > 0.1  # the small judge leans to a position: both orders
