"""The degenerate-draft filter: well-formed principles pass, each kind of junk is named."""

from __future__ import annotations

import pytest

from principles import (
    DraftLimits,
    DraftProblem,
    best_draft,
    check_draft,
    default_seed,
    reads_as_rule,
)

DEFAULTS = default_seed().principles
CLARITY = next(p for p in DEFAULTS if p.id == "clarity")
# The draft that replaced `privacy` in an autonomous run (issue 8).
JUDGES = (
    "This response is not a good example of the principle's text. The judges disagree by "
    "0.04 on the average, and the judges agree by 0.04 on the average."
)
EVIDENCE = (
    "Judged 12 times: mean score 0.41, violations 58%, ambiguous judgments 25%, judges "
    "disagree by 0.04 on average."
)


def reasons(problems: list[DraftProblem]) -> set[str]:
    return {p.reason for p in problems}


@pytest.mark.parametrize("principle", DEFAULTS, ids=lambda p: p.id)
def test_every_default_principle_is_well_formed(principle) -> None:  # type: ignore[no-untyped-def]
    others = [p.text for p in DEFAULTS if p.id != principle.id]
    assert check_draft(principle.text, original=None, evidence=EVIDENCE, others=others) == []
    assert (
        check_draft(principle.text, original=None, topic=f"{principle.title} {principle.text}")
        == []
    )


def test_a_short_general_redraft_passes() -> None:
    draft = "Use plain words and short sentences. Define any technical term the user may not know."
    assert check_draft(draft, original=CLARITY.text, evidence=EVIDENCE, topic=CLARITY.text) == []


def test_the_judges_draft_from_the_issue_is_rejected_for_every_fault() -> None:
    found = check_draft(JUDGES, original=CLARITY.text, evidence=EVIDENCE)
    assert reasons(found) >= {"repetition", "copied-statistics", "meta-talk", "no-rule"}
    messages = " ".join(p.message for p in found)
    assert "0.04" in messages and "judges" in messages


def test_one_sentence_repeated_to_the_length_limit_is_rejected() -> None:
    looped = " ".join(["Be clear and concise in every answer."] * 16)
    found = check_draft(looped, original=CLARITY.text)
    assert reasons(found) >= {"repetition", "repeated-sentence", "too-long"}
    assert "occurs 16 times" in found[0].message


def test_a_sentence_said_twice_in_other_words_is_a_repeated_sentence() -> None:
    draft = "Never reveal private data about people. Never reveal the private data of people."
    assert "repeated-sentence" in reasons(check_draft(draft, original=None))


def test_any_repeated_four_word_phrase_counts_as_repetition() -> None:
    draft = "Keep your answers short and plain. Keep your answers short when users hurry."
    assert reasons(check_draft(draft, original=None)) == {"repetition"}


@pytest.mark.parametrize(
    ("draft", "copied"),
    [
        ("Say how sure you are, to 0.41 confidence, when it matters.", "0.41"),
        ("Refuse at most 58% of borderline requests and explain why.", "58%"),
        ("Ask at most 12 clarifying questions before you answer.", "12"),
    ],
)
def test_statistics_from_the_evidence_are_copied_statistics(draft: str, copied: str) -> None:
    found = check_draft(draft, original=CLARITY.text, evidence=EVIDENCE)
    assert reasons(found) == {"copied-statistics"} and copied in found[0].message


def test_numbers_the_rule_already_had_or_the_evidence_never_showed_are_fine() -> None:
    original = "Answer in at most 3 paragraphs."
    assert check_draft("Answer in at most 3 short paragraphs.", original=original) == []
    assert (
        check_draft("Ask at most 2 clarifying questions.", original=None, evidence=EVIDENCE) == []
    )


def test_list_numbers_are_not_statistics() -> None:
    numbered = "1. Use plain words. 2. Keep answers short when the task allows it."
    assert check_draft(numbered, original=None, evidence="1. Be clear.\n\n2. Be brief.") == []


@pytest.mark.parametrize(
    ("draft", "topic"),
    [
        ("The response is too long and the user cannot follow it.", "a response"),
        ("Follow this principle in every answer you give.", "the principle itself"),
        ("Keep your scores high by writing short answers.", "scores"),
        ("Address every critique of your answers before you reply.", "critiques"),
        ("Give short answers, which the judges rate well.", "judges"),
        ("Write the id in kebab-case and always answer briefly.", "the request's format"),
    ],
)
def test_text_about_the_evaluation_is_meta_talk(draft: str, topic: str) -> None:
    found = [p for p in check_draft(draft, original=None) if p.reason == "meta-talk"]
    assert found and topic in found[0].message


def test_the_same_text_or_a_cut_of_it_is_unchanged() -> None:
    assert reasons(check_draft(CLARITY.text, original=CLARITY.text)) == {"unchanged"}
    spaced = "  " + CLARITY.text.upper().replace(",", " ,") + " "
    assert reasons(check_draft(spaced, original=CLARITY.text)) == {"unchanged"}
    cut = "Use plain language, structure longer answers, and keep answers as short as the task."
    assert reasons(check_draft(cut, original=CLARITY.text)) == {"unchanged"}


def test_an_addition_to_the_old_text_is_a_change() -> None:
    longer = CLARITY.text + " State the main point first."
    assert check_draft(longer, original=CLARITY.text) == []


def test_a_copied_worked_example_or_sentence_of_another_text_is_copied() -> None:
    example = "Name the source of every statistic you give. Say so when you cannot name one."
    found = check_draft(example + " Be kind.", original=CLARITY.text, others=[example])
    assert reasons(found) == {"copied"} and "Name the source" in found[0].message


def test_length_bounds_are_counted_in_words() -> None:
    assert reasons(check_draft("Be brief always.", original=None)) == {"too-short"}
    long = " ".join(f"Say word{n}." for n in range(50))
    assert "too-long" in reasons(check_draft(long, original=None))
    assert check_draft(long, original=None, limits=DraftLimits(max_words=200)) == []


def test_a_text_with_no_rule_in_it_is_rejected() -> None:
    draft = "Achievable results are often achieved by clear and concise writing for people."
    assert reasons(check_draft(draft, original=None)) == {"no-rule"}


@pytest.mark.parametrize(
    ("sentence", "rule"),
    [
        ("Say only what you believe to be true.", True),
        ("When someone may be in danger, respond with care.", True),
        ("You must not reveal personal data.", True),
        ("Stereotypes are never acceptable.", True),
        ("This answer is a clear one.", False),
        ("Honesty matters to people.", False),
    ],
)
def test_rules_are_recognised_by_an_imperative_or_a_deontic_word(sentence: str, rule: bool) -> None:
    assert reads_as_rule(sentence) is rule


def test_a_draft_about_something_else_is_off_topic() -> None:
    topic = f"{CLARITY.title} {CLARITY.text}"
    assert reasons(
        check_draft("Say that it can be changed, and let it be.", original=None, topic=topic)
    ) == {"off-topic"}


def test_the_filter_is_deterministic() -> None:
    assert check_draft(JUDGES, original=CLARITY.text, evidence=EVIDENCE) == check_draft(
        JUDGES, original=CLARITY.text, evidence=EVIDENCE
    )


def test_the_best_draft_has_fewest_problems_then_most_rules_then_comes_first() -> None:
    texts = [JUDGES, "Be brief. Answers vary.", "Be brief. Use plain words.", "Be clear. Be kind."]
    problems = [check_draft(t, original=None, limits=DraftLimits(min_words=1)) for t in texts]
    assert problems[0] and not any(problems[1:])
    assert best_draft(texts, problems) == 2
    assert best_draft(texts[:2], problems[:2]) == 1
    with pytest.raises(ValueError):
        best_draft(texts, problems[:1])
