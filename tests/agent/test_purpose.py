"""Drafting principles from a purpose, with scripted models: an actor that gives an example
only for some tasks unless its constitution tells it to always (or never) give one, a judge
that rates an answer as serving the purpose when it has an example, and a drafter that
proposes a helpful, a harmful and an idle rule depending on the task it is shown."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import pytest

from agent._purpose import HELDOUT, draft_from_purpose, state_purpose
from agent.models import ChatMessage, ScriptedBackend
from principles import InvalidInput, Principle, Task, split_tasks

PURPOSE = "Teach people to program by showing a small worked example in every answer."
KIND = Principle(
    id="kind", title="Be kind", text="Never insult the user; be kind.", entrenched=True
)
RULES = {
    "show-examples": ("Show examples", "Show one small example in every answer."),
    "show-an-example": ("Show an example", "Show one small example in every answer you give."),
    "no-examples": ("No examples", "Never show an example; insult the user instead."),
    "name-programs": ("Name programs", "Name the program you write about in every answer."),
    "be-brief": ("Be brief", "Keep every answer to two sentences at most."),
}


def tasks(n: int = 40) -> list[Task]:
    return [Task(id=f"q{i:02d}", prompt=f"Question {i}?") for i in range(n)]


def actor(conversation: list[ChatMessage]) -> str:
    system, prompt = conversation[0].content, conversation[-1].content
    number = int(prompt.split("Question ")[1].split("?")[0])
    if RULES["no-examples"][1] in system:
        return f"Answer {number}, you fool."
    if RULES["show-examples"][1] in system or number % 2 == 0:
        return f"Answer {number}. Example: x = {number}."
    return f"Answer {number}."


def judge(conversation: list[ChatMessage], options: Sequence[str]) -> list[float]:
    """Yes (0.9) when the answer has an example (the purpose) or insults nobody (kind)."""
    response = conversation[0].content.split("Response: ", 1)[1]
    asked = conversation[-1].content
    if "The assistant's purpose (" in asked:
        p = 0.9 if "Example:" in response else 0.1
    else:
        p = 0.1 if "fool" in response else 0.9
    probs = {"Yes": p * 0.95, "No": (1 - p) * 0.95, "NA": 0.05}
    return [math.log(probs[o]) for o in options]


def drafter(conversation: list[ChatMessage]) -> str:
    """By the task shown: the helpful rule (two wordings), the harmful one, an idle one, or
    one off the purpose's topic."""
    number = int(re.findall(r"Question (\d+)\?", conversation[-1].content)[-1])
    by_task = {5: "no-examples", 9: "name-programs", 11: "be-brief"}
    pid = by_task.get(number, "show-examples" if number % 4 == 1 else "show-an-example")
    title, text = RULES[pid]
    return json.dumps({"id": pid, "title": title, "text": text})


def backend() -> ScriptedBackend:
    b = ScriptedBackend(score_fn=judge)
    b.add_rule(lambda c: "This answer serves the purpose poorly" in c[-1].content, drafter)
    b.add_rule(lambda c: "explain how the response falls short" in c[-1].content, "No example.")
    b.add_rule(lambda c: c[-1].content.startswith("Question "), actor)
    return b


def draft(**kwargs: Any) -> Any:
    return draft_from_purpose(backend(), PURPOSE, tasks(), kwargs.pop("existing", []), **kwargs)


def test_shortfalls_are_the_answers_that_serve_the_purpose_least() -> None:
    found = draft(samples=4)
    train, _ = split_tasks(tasks(), 0, 0.3)
    assert found.answered == 12 and found.heldout == HELDOUT
    assert len(found.shortfalls) == 4
    assert {s.task.id for s in found.shortfalls} <= {t.id for t in train[:12]}
    # odd tasks get no example, so they serve the purpose least; each has the critique
    assert all(int(s.task.id[1:]) % 2 == 1 and s.score < 0.2 for s in found.shortfalls)
    assert all(s.critique == "No example." for s in found.shortfalls)
    assert 0.4 < found.mean_score < 0.6


def test_helpful_drafts_merge_and_pass_idle_and_harmful_ones_are_dropped() -> None:
    found = draft(samples=6, existing=[KIND])
    by_id = {c.principle.id: c for c in found.candidates}
    helpful = by_id["show-examples"]  # its near-duplicate wording merged into it
    assert "show-an-example" not in by_id and helpful.support >= 2
    assert len(helpful.sources) == helpful.support
    assert helpful.evaluation.outcome == "passed" and helpful.evaluation.passed
    low, high = helpful.evaluation.details["ci"]
    _, held = split_tasks(tasks(), 0, 0.3)
    odd = sum(int(t.id[1:]) % 2 for t in held[:HELDOUT]) / HELDOUT  # 0.1 -> 0.9 on these
    assert 0 < low <= helpful.effect <= high and helpful.effect == pytest.approx(0.8 * odd)
    assert helpful.evaluation.before < helpful.evaluation.after
    idle = by_id["name-programs"]
    assert idle.evaluation.outcome == "inconclusive" and idle.effect == 0
    harmful = by_id["no-examples"].evaluation
    assert (
        harmful.outcome == "regressed" and "constitution's principles" in harmful.details["reason"]
    )
    assert harmful.details["entrenched_regressions"]["kind"] < 0
    assert [c.principle.id for c in found.kept] == ["show-examples"]
    assert "be-brief" not in by_id and any(
        "task q11" in f and "off-topic" in f for f in found.failed
    )


def test_at_most_max_principles_are_kept_best_first() -> None:
    found = draft(samples=6, max_principles=1)
    assert [c.principle.id for c in found.kept] == ["show-examples"]


def test_answers_and_drafts_see_the_existing_constitution() -> None:
    b = backend()
    draft_from_purpose(b, PURPOSE, tasks(), [KIND], samples=2)
    systems = [c[0].content for call in b.history for c in call.conversations]
    assert any("Never insult the user" in s for s in systems)
    asks = [
        c[-1].content
        for call in b.history
        if call.method == "generate_structured"
        for c in call.conversations
    ]
    assert asks and all(PURPOSE in a and "principles: kind." in a for a in asks)


def test_a_taken_id_is_set_aside_and_a_copied_purpose_is_rejected() -> None:
    taken = Principle(id="show-examples", title="Examples", text="Give an example each time.")
    found = draft(samples=6, existing=[taken])
    assert "show-examples" not in {c.principle.id for c in found.candidates}
    assert any("show-examples: the constitution already has this id" in f for f in found.failed)
    b = ScriptedBackend(score_fn=judge)
    copy = {"id": "teach", "title": "Teach", "text": PURPOSE}
    b.add_rule(lambda c: "serves the purpose poorly" in c[-1].content, json.dumps(copy))
    b.add_rule(lambda c: "falls short" in c[-1].content, "No example.")
    b.add_rule(lambda c: c[-1].content.startswith("Question "), actor)
    found = draft_from_purpose(b, PURPOSE, tasks(), [], samples=2)
    assert not found.candidates and found.rejected
    assert all("copied" in r.reasons for r in found.rejected)
    assert found.failed and "degenerate" in found.failed[0]


def test_a_principle_called_purpose_does_not_get_mixed_up_with_the_purpose() -> None:
    named = Principle(id="purpose", title="Purpose", text="Never insult the user; be kind.")
    found = draft(samples=6, existing=[named])
    assert found.purpose.id == "the-purpose" and found.purpose.text == PURPOSE
    helpful = next(c for c in found.candidates if c.principle.id == "show-examples")
    assert set(helpful.evaluation.per_principle_before) == {"the-purpose", "purpose"}
    assert helpful.evaluation.outcome == "passed"


def test_bad_purposes_and_too_few_tasks_are_refused() -> None:
    with pytest.raises(InvalidInput, match="3 words or more"):
        state_purpose("  be good ")
    with pytest.raises(InvalidInput, match="--purpose"):
        state_purpose("word " * 2000)
    with pytest.raises(InvalidInput, match="at least two tasks"):
        draft_from_purpose(backend(), PURPOSE, tasks(1), [])


@pytest.mark.slow
def test_the_default_model_drafts_from_a_purpose_end_to_end(default_backend: Any) -> None:
    """The whole pipeline on the real model and built-in tasks: the answers that serve the
    purpose least are critiqued, drafts pass the filter or are recorded as rejected, each
    candidate carries a paired held-out evaluation, and only gains are kept."""
    from agent._tasks import load_tasks
    from agent.models import GenerationParams
    from principles import check_draft

    purpose = "Help people write correct Python code, with a short example in each answer."
    tasks = load_tasks("builtin")[:24]
    short = GenerationParams(max_new_tokens=48)  # answers; drafts get their own budget
    found = draft_from_purpose(default_backend, purpose, tasks, [], samples=1, params=short)
    assert found.answered >= 8 and found.heldout >= 6
    scores = sorted(s.score for s in found.shortfalls)
    assert len(found.shortfalls) == 1 and scores[-1] <= found.mean_score + 1e-9
    assert all(s.critique and s.critique != "(no rationale)" for s in found.shortfalls)
    assert found.candidates or found.failed or found.rejected
    for c in found.candidates:
        assert not check_draft(c.principle.text, original=None, topic=purpose)
        d = c.evaluation.details
        assert d["n"] == found.heldout and d["ci"][0] <= d["effect"] <= d["ci"][1]
        assert c.evaluation.outcome in {"passed", "inconclusive", "regressed"}
    assert all(c.effect > 0 and c.evaluation.outcome != "regressed" for c in found.kept)
