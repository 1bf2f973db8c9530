"""Is a drafted principle worth reading? A deterministic filter for degenerate drafts.

A small model asked to redraft a principle often returns text no reviewer should see: one
sentence repeated up to the length limit, the evidence's statistics copied into the text
("the judges disagree by 0.04 on average"), a description of a response instead of a rule,
or the old text back. `check_draft` names each such problem with a reason from a closed set
and a message a person can read; a draft with no problems is well-formed. The rules are
plain string tests, so the same text always gets the same verdict and every rejection can be
explained. They are tuned so that every principle of the default constitution passes.

`best_draft` picks among candidate drafts: fewest problems first, then the larger share of
sentences that read as rules (a principle is a set of rules; any other sentence is padding
for the judge to interpret), then the earlier candidate, so that the choice is stable.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from principles._models import _Frozen

DraftReason = Literal[
    "repetition",
    "repeated-sentence",
    "copied-statistics",
    "meta-talk",
    "unchanged",
    "copied",
    "too-long",
    "too-short",
    "no-rule",
    "off-topic",
]


class DraftProblem(_Frozen):
    """Why a draft is degenerate: one reason from a closed set, and a message for people."""

    reason: DraftReason
    message: str


class DraftLimits(_Frozen):
    """The filter's thresholds (the defaults let every default principle pass)."""

    min_words: int = Field(default=6, ge=1)
    max_words: int = Field(default=80, ge=1)
    ngram: int = Field(default=4, ge=2)
    similar_sentences: float = Field(default=0.85, gt=0.0, le=1.0)
    unchanged: float = Field(default=0.95, gt=0.0, le=1.0)
    copied: float = Field(default=0.9, gt=0.0, le=1.0)


_WORD = re.compile(r"[a-z0-9]+(?:['’.][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DECIMAL = re.compile(r"(?<![\w.])\d*\.\d+(?![\w.])")
_PERCENT = re.compile(r"\d+(?:\.\d+)?\s*(?:%|per ?cent\b)")
_LIST_MARK = re.compile(r"(?<!\S)\d{1,2}[.)](?=\s|$)")

# Phrases that talk about the evaluation (responses, judges, scores, critiques, the principle
# itself) instead of telling the assistant what to do. One hit is enough: default principles
# contain none of them.
_META: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("judges", re.compile(r"\bjudges\b|\bjudged\b|\bjudg(?:e)?ments\b|\bthe judge\b")),
    ("scores", re.compile(r"\bscor(?:e|es|ed|ing)\b")),
    ("critiques", re.compile(r"\bcritiques?\b|\bcritiqued\b|\bthe critic\b")),
    ("violations", re.compile(r"\bviolations\b|\bviolation rate\b")),
    ("the principle itself", re.compile(r"\b(?:this|the|that|each|every) principle\b(?!s)")),
    ("the principle itself", re.compile(r"\bprinciple[’']s\b")),
    (
        "a response",
        re.compile(
            r"\b(?:this|that|the|a) response (?:is|was|does|did|has|fails|failed|shows|"
            r"contains|seems|follows|gives|provides)\b|\bresponses (?:are|were)\b"
        ),
    ),
    ("an example", re.compile(r"\b(?:good|bad|poor|great|clear) example\b|\bexample of\b")),
    (
        "statistics",
        re.compile(
            r"\bon (?:the )?average\b|\bmean score\b|\bcorrelat(?:ion|ed)\b|"
            r"\b(?:dis)?agree by\b|\bambiguous judg"
        ),
    ),
    ("the evidence", re.compile(r"\bevidence (?:above|below)\b|\bthis evidence\b")),
    ("the rationale", re.compile(r"\brationale\b")),
    ("the redraft", re.compile(r"\bredraft(?:ed|s)?\b")),
    ("the request's format", re.compile(r"\bkebab[- ]?case\b|\breply in json\b")),
)

# Words too common to show that two texts are about the same thing.
_COMMON_WORDS = """
    about above after again also always answer answers assistant because before being
    between both could does doing each even every from give have into just keep like make
    many more most much must never only other over same should some such than that their
    them then there these they this those through under unless very what when where which
    while will with without would your yours
"""
_COMMON = frozenset(_COMMON_WORDS.split())

_DEONTIC = re.compile(
    r"\b(?:must|should|shall|never|always|do not|don['’]t|avoid|need to|ought to|may not)\b"
)
# Base forms that open an imperative sentence ("Say only...", "Treat people..."): the usual
# way a principle states a rule.
_VERBS = """
    acknowledge act add address admit adapt answer apply ask assume avoid be begin break
    build check choose cite clarify comply consider correct credit decline defer describe
    distinguish do encourage ensure explain express flag focus follow give help highlight
    identify include inform keep lead limit list make match mention name note offer
    point present prefer prioritise prioritize protect provide put qualify question quote
    raise recognise recognize recommend redirect refer refuse remain remember reply report
    represent request respect respond restate return say seek share show signal stand start
    state stay stick stop structure suggest summarise summarize support take teach tell test
    think treat try use verify warn watch weigh work write
"""
_IMPERATIVE = frozenset(_VERBS.split())


def words(text: str) -> list[str]:
    """Lower-case word tokens (apostrophes and decimal points kept inside a word)."""
    return _WORD.findall(text.lower())


def sentences(text: str) -> list[str]:
    """Non-empty sentences, split after '.', '!' or '?' and at blank lines."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def reads_as_rule(sentence: str) -> bool:
    """A sentence that tells the assistant what to do: a deontic word (must, never, do
    not, ...) or an imperative verb opening the sentence or one of its clauses."""
    lowered = sentence.lower()
    if _DEONTIC.search(lowered):
        return True
    for clause in re.split(r"[,;:]", lowered):
        first = words(clause)[:1]
        if first and first[0] in _IMPERATIVE:
            return True
    return False


def _normal(text: str) -> str:
    return " ".join(words(text))


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(a=_normal(a), b=_normal(b), autojunk=False).ratio()


def _excerpt(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _repetition(tokens: list[str], limits: DraftLimits) -> list[DraftProblem]:
    n = limits.ngram
    grams = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    repeated = [(g, k) for g, k in grams.items() if k > 1]
    if not repeated:
        return []
    gram, times = max(repeated, key=lambda x: x[1])
    return [
        DraftProblem(
            reason="repetition",
            message=f"repeats itself: the phrase '{' '.join(gram)}' occurs {times} times",
        )
    ]


def _repeated_sentence(parts: list[str], limits: DraftLimits) -> list[DraftProblem]:
    long_enough = [s for s in parts if len(words(s)) >= 3]
    for i, a in enumerate(long_enough):
        for b in long_enough[i + 1 :]:
            if _similarity(a, b) >= limits.similar_sentences:
                return [
                    DraftProblem(
                        reason="repeated-sentence",
                        message=f"repeats a sentence: '{_excerpt(a)}'",
                    )
                ]
    return []


def _statistics(text: str, original: str, evidence: str) -> list[DraftProblem]:
    text, evidence = _LIST_MARK.sub(" ", text), _LIST_MARK.sub(" ", evidence)
    own = set(_NUMBER.findall(original))
    found = [m.group(0) for m in _DECIMAL.finditer(text)]
    found += [m.group(0) for m in _PERCENT.finditer(text)]
    shown = set(_NUMBER.findall(evidence))
    found += [x for x in _NUMBER.findall(text) if x in shown]
    copied = sorted({x.strip() for x in found if _NUMBER.findall(x)[0] not in own})
    if not copied:
        return []
    return [
        DraftProblem(
            reason="copied-statistics",
            message=f"copies statistics into the rule: {', '.join(copied[:4])}",
        )
    ]


def _meta(text: str) -> list[DraftProblem]:
    lowered = " ".join(text.lower().split())
    topics = list(dict.fromkeys(label for label, p in _META if p.search(lowered)))
    if not topics:
        return []
    return [
        DraftProblem(
            reason="meta-talk",
            message=f"talks about {', '.join(topics)} instead of stating a rule",
        )
    ]


def _trigrams(text: str) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)}


def _only_cuts(text: str, original: str) -> bool:
    """Whether (almost) every phrase of `text` is already in `original`: a cut of it."""
    mine = _trigrams(text)
    return len(mine) >= 3 and len(mine & _trigrams(original)) / len(mine) >= 0.9


def _copied_sentence(text: str, other: str, limits: DraftLimits) -> str | None:
    theirs = [s for s in sentences(other) if len(words(s)) >= 5]
    for mine in sentences(text):
        if len(words(mine)) >= 5 and any(_similarity(mine, s) >= limits.copied for s in theirs):
            return mine
    return None


def _copies(
    text: str, original: str | None, others: Sequence[str], limits: DraftLimits
) -> list[DraftProblem]:
    if original is not None and (
        _similarity(text, original) >= limits.unchanged or _only_cuts(text, original)
    ):
        return [
            DraftProblem(
                reason="unchanged",
                message="changes nothing: the text is (a part of) the current one",
            )
        ]
    for other in others:
        copied = other if _similarity(text, other) >= limits.copied else None
        copied = copied or _copied_sentence(text, other, limits)
        if copied is not None:
            return [
                DraftProblem(
                    reason="copied",
                    message=f"copies an existing text: '{_excerpt(copied)}'",
                )
            ]
    return []


def _off_topic(tokens: list[str], topic: str) -> list[DraftProblem]:
    def content(ws: list[str]) -> set[str]:
        # a five-letter stem, so that "clear" matches "clearly" and "honest" "honesty"
        return {w[:5] for w in ws if len(w) >= 4 and w not in _COMMON}

    if not topic or content(tokens) & content(words(topic)):
        return []
    return [
        DraftProblem(
            reason="off-topic",
            message="off topic: it shares no content word with its topic (the principle it "
            "replaces, or the purpose it serves)",
        )
    ]


def _length(tokens: list[str], limits: DraftLimits) -> list[DraftProblem]:
    if len(tokens) > limits.max_words:
        return [
            DraftProblem(
                reason="too-long",
                message=f"too long: {len(tokens)} words (at most {limits.max_words})",
            )
        ]
    if len(tokens) < limits.min_words:
        return [
            DraftProblem(
                reason="too-short",
                message=f"too short: {len(tokens)} words (at least {limits.min_words})",
            )
        ]
    return []


def check_draft(
    text: str,
    *,
    original: str | None,
    evidence: str = "",
    others: Sequence[str] = (),
    topic: str = "",
    limits: DraftLimits | None = None,
) -> list[DraftProblem]:
    """Every problem that makes `text` a degenerate principle; empty when it is well-formed.

    `original` is the text being redrafted (None for a new principle): a draft (almost)
    equal to it changes nothing, and numbers it already contains are not counted as copied.
    `evidence` is what the drafter was shown: numbers from it in the draft are copied
    statistics. `others` are texts a draft must not merely copy (other principles, worked
    examples). `topic` (the title and text of the principles a draft replaces) must share a
    content word with the draft. Problems come in a fixed order, at most one per reason.
    """
    limits = limits or DraftLimits()
    tokens = words(text)
    parts = sentences(text)
    problems = [
        *_repetition(tokens, limits),
        *_repeated_sentence(parts, limits),
        *_statistics(text, original or "", evidence),
        *_meta(text),
        *_copies(text, original, others, limits),
        *_length(tokens, limits),
        *_off_topic(tokens, topic),
    ]
    if tokens and not any(reads_as_rule(s) for s in parts):
        problems.append(
            DraftProblem(reason="no-rule", message="no sentence tells the assistant what to do")
        )
    return problems


def rule_share(text: str) -> float:
    """The share of sentences that read as rules (0 for empty text)."""
    parts = sentences(text)
    return sum(reads_as_rule(s) for s in parts) / len(parts) if parts else 0.0


def best_draft(texts: Sequence[str], problems: Sequence[Sequence[DraftProblem]]) -> int:
    """The index of the best-formed candidate: fewest problems, then the larger share of
    sentences that read as rules, then the earliest."""
    if not texts or len(texts) != len(problems):
        raise ValueError("best_draft needs one problem list per candidate text")
    return min(
        range(len(texts)), key=lambda i: (len(problems[i]), -round(rule_share(texts[i]), 6), i)
    )
