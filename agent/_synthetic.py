"""Synthetic preference sets, each generated from one known rule in Inverse Constitutional
AI's style (a lexical or stylistic preference), with the rule itself as the oracle: the
preferred answer names a source, answers in one sentence, or uses no jargon. Generated
here, never downloaded; bench/drafting.py and the tests use them.
"""

from __future__ import annotations

from collections.abc import Callable

from agent._preferences import Preference
from principles import Principle

TOPICS = [
    "the boiling point of water",
    "the capital of Japan",
    "how vaccines work",
    "why the sky is blue",
    "the speed of light",
    "how bees make honey",
    "what causes tides",
    "how rainbows form",
    "the tallest mountain",
    "how plants grow",
    "why leaves change colour",
    "how magnets work",
    "what a black hole is",
    "how the heart pumps blood",
    "what causes earthquakes",
    "how batteries store energy",
    "why we sleep",
    "how airplanes fly",
    "what DNA is",
    "how volcanoes erupt",
    "how the moon changes shape",
    "why ice floats",
    "how soap cleans",
    "what a calorie is",
    "how clouds form",
    "why the sea is salty",
    "how a compass works",
    "what causes thunder",
    "how glasses help people see",
    "why bread rises",
]
SOURCES = ["NASA", "the WHO", "Britannica", "a 2020 Nature paper", "the Royal Society"]
JARGON = [
    ("works by", "leverages a paradigm whereby"),
    ("uses", "utilises the synergistic affordances of"),
    ("makes", "operationalises the generation of"),
    ("changes", "undergoes a non-linear state transition in"),
    ("helps", "facilitates value-add enablement for"),
]


def source_pairs(n: int) -> list[Preference]:
    return [
        Preference(
            f"Tell me about {t}.",
            f"Here is a short explanation of {t}. (Source: {SOURCES[i % len(SOURCES)]}.)",
            f"Here is a short explanation of {t}.",
        )
        for i, t in enumerate(TOPICS[:n])
    ]


def one_sentence_pairs(n: int) -> list[Preference]:
    return [
        Preference(
            f"Tell me about {t}.",
            f"In short, {t} comes down to one simple idea.",
            f"In short, {t} comes down to one simple idea. There is more to say about it. "
            "Many books cover it in detail, and experts still study it today.",
        )
        for t in TOPICS[:n]
    ]


def plain_pairs(n: int) -> list[Preference]:
    out = []
    for i, t in enumerate(TOPICS[:n]):
        plain, jargon = JARGON[i % len(JARGON)]
        out.append(
            Preference(
                f"Explain {t} simply.",
                f"The short answer: {t} {plain} a few simple steps.",
                f"The short answer: {t} {jargon} a few simple steps.",
            )
        )
    return out


RULES: dict[str, tuple[Callable[[int], list[Preference]], Principle]] = {
    "names a source": (
        source_pairs,
        Principle(
            id="cite-sources",
            title="Cite sources",
            text="The response names the source of its information.",
        ),
    ),
    "one sentence": (
        one_sentence_pairs,
        Principle(
            id="one-sentence", title="One sentence", text="The response answers in one sentence."
        ),
    ),
    "no jargon": (
        plain_pairs,
        Principle(
            id="no-jargon",
            title="Plain words",
            text="The response uses plain words and no technical jargon.",
        ),
    ),
}
