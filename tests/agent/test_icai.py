"""Drafting principles from preferences (ICAI) with scripted models: a drafter that proposes
a helpful rule for some pairs and an unhelpful one for others, and a judge that follows the
helpful rule only when the constitution states it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent._icai import draft_from_preferences, split
from agent._preferences import Preference
from agent.models import ChatMessage, ScriptedBackend
from principles import InvalidInput, Principle
from tests.agent.test_preferences import rule_judge

KIND = Principle(id="kind", title="Kind", text="Be kind to the user.")


def pairs(n: int = 20) -> list[Preference]:
    return [
        Preference(f"Question {i}?", f"Answer {i}, per the source Smith {i}.", f"Answer {i}.")
        for i in range(n)
    ]


def drafter_reply(conversation: list[ChatMessage]) -> str:
    """Two wordings of the helpful rule (near-duplicates) and one unhelpful rule."""
    number = int(conversation[-1].content.split("Question ")[1].split("?")[0])
    if number % 3 == 0:
        reply = {
            "id": "be-brief",
            "title": "Be brief",
            "text": "Keep every answer to two short sentences at most.",
        }
    elif number % 3 == 1:
        reply = {
            "id": "cite-sources",
            "title": "Cite sources",
            "text": "Mention a source for every claim, by name.",
        }
    else:
        reply = {
            "id": "name-sources",
            "title": "Name sources",
            "text": "Mention a source for every claim, by its name.",
        }
    return json.dumps(reply)


def backend() -> ScriptedBackend:
    b = ScriptedBackend(score_fn=rule_judge)
    b.add_rule(lambda c: "People compared two answers" in c[-1].content, drafter_reply)
    return b


def test_the_split_is_stable_and_leaves_both_sides_a_pair() -> None:
    train, held = split(pairs())
    again, held_again = split(list(reversed(pairs())))
    assert (train, held) == (again, held_again)
    assert len(held) >= 1 and len(train) >= 1 and len(train) + len(held) == 20
    assert split(pairs(2))[1] and split(pairs(2))[0]


def test_helpful_candidates_are_merged_tested_and_kept_unhelpful_ones_dropped() -> None:
    found = draft_from_preferences(backend(), pairs(), [KIND], samples=9)
    ids = {c.principle.id: c for c in found.candidates}
    assert set(ids) == {"be-brief", "cite-sources"}  # name-sources merged into cite-sources
    assert ids["cite-sources"].support > 1
    assert found.baseline_train.accuracy == 0.5
    assert ids["cite-sources"].train.accuracy == 1.0
    assert ids["be-brief"].train.accuracy == 0.5
    assert [c.principle.id for c in found.kept] == ["cite-sources"]
    assert found.heldout_before is not None and found.heldout_after is not None
    assert found.heldout_before.accuracy == 0.5 and found.heldout_after.accuracy == 1.0
    assert found.train_n + found.heldout_n == 20


def test_drafts_are_asked_only_about_training_pairs_and_need_enough_pairs() -> None:
    b = backend()
    found = draft_from_preferences(b, pairs(), [], samples=4)
    train, held = split(pairs())
    asked = [
        c[-1].content
        for call in b.history
        if call.method == "generate_structured"
        for c in call.conversations
    ]
    assert asked and all(any(p.chosen in a for p in train[:4]) for a in asked)
    assert not any(p.chosen in a for p in held for a in asked)
    assert found.kept  # with no constitution at all, the rule still helps
    # ... and it had to beat an unrelated principle, not the bare question.
    systems = [
        c[0].content
        for call in b.history
        if call.method == "score_options"
        for c in call.conversations
    ]
    assert any("kind to the user" in text for text in systems)
    with pytest.raises(InvalidInput, match="at least 4 pairs"):
        draft_from_preferences(b, pairs(3), [])


def test_a_candidate_whose_id_is_taken_is_reported_not_tested() -> None:
    taken = Principle(id="cite-sources", title="Cites", text="Say where facts come from.")
    found = draft_from_preferences(backend(), pairs(), [taken], samples=9)
    assert "cite-sources" not in {c.principle.id for c in found.candidates}
    assert any("cite-sources: the constitution already has this id" in f for f in found.failed)


def test_a_candidate_that_reuses_a_worked_examples_id_is_set_aside() -> None:
    from agent._prompts import worked_example_ids

    copied = sorted(worked_example_ids())[0]
    b = ScriptedBackend(score_fn=rule_judge)
    reply = {"id": copied, "title": "Cite sources", "text": "Mention a source for every claim."}
    b.add_rule(lambda c: "People compared two answers" in c[-1].content, json.dumps(reply))
    found = draft_from_preferences(b, pairs(), [], samples=3)
    assert not found.candidates and not found.kept
    assert f"{copied}: the id of a worked example, copied" in found.failed


@pytest.mark.slow
def test_the_default_model_drafts_and_keeps_only_what_beats_the_bar(default_backend: Any) -> None:
    """One synthetic rule set (the preferred answer names a source) through the whole
    pipeline on the real model: candidates drafted and tested, every kept one above the bar
    with its CI, none kept by a gain inside the noise."""
    from agent._icai import gain
    from agent._synthetic import source_pairs
    from agent.models import GenerationParams

    prefs = source_pairs(16)
    found = draft_from_preferences(
        default_backend, prefs, [], samples=3, params=GenerationParams(max_new_tokens=160)
    )
    assert found.train_n + found.heldout_n == 16 and found.heldout_n >= 1
    assert found.candidates or found.failed or found.rejected
    assert all(c.train is not None and c.train.n == found.train_n for c in found.candidates)
    for c in found.kept:
        assert gain(c.train, found.baseline_train)[0] > 0
    assert (found.heldout_after is None) == (not found.kept)
