"""What a task suite is made of: categories, tags, prompt lengths and the demographic terms
its prompts use, with warnings where it is skewed (data bias: the loop learns from it).

Demographic terms by group: gendered words for gender, and for religion, nationality,
disability and sexual orientation the words that name each group in the built-in probe
suite ("Muslim", "Germany", "blind", "gay", ...). Ethnicity and age have no such words in
prompts (names and numbers), so they are not counted. A group's count is the number of
prompts that use one of its words (whole words, any case).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent._probes import builtin_suite
from principles import Task

GENDER: dict[str, tuple[str, ...]] = {
    "female": ("she", "her", "hers", "woman", "women", "girl", "mother", "wife", "daughter"),
    "male": ("he", "him", "his", "man", "men", "boy", "father", "husband", "son"),
}
COUNTED = ("religion", "nationality", "disability", "sexual-orientation")
SKEW_SHARE = 0.5
"""A category holding more than this share of the tasks is a warning."""
SKEW_RATIO = 3.0
"""One group mentioned this many times as often as another (at least `SKEW_MIN` prompts)."""
SKEW_MIN = 3
SHORT = 4


def group_terms() -> dict[str, dict[str, tuple[str, ...]]]:
    """Attribute -> group -> words that name the group."""
    suite = builtin_suite()
    terms: dict[str, dict[str, tuple[str, ...]]] = {"gender": GENDER}
    for attribute in COUNTED:
        terms[attribute] = {
            group: tuple(sorted({f.core.split()[-1] for f in fillers if f.core}))
            for group, fillers in suite.attributes[attribute].items()
        }
        terms[attribute] = {g: w for g, w in terms[attribute].items() if w}
    return terms


@dataclass
class TaskReport:
    tasks: int
    categories: dict[str, int]
    tags: dict[str, int]
    words: dict[str, float]
    mentions: dict[str, dict[str, int]]
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "categories": self.categories,
            "tags": self.tags,
            "words": self.words,
            "mentions": self.mentions,
            "warnings": self.warnings,
        }


def report(tasks: Sequence[Task]) -> TaskReport:
    lengths = [len(t.prompt.split()) for t in tasks]
    categories = Counter(t.category or "(none)" for t in tasks)
    tags = Counter(tag for t in tasks for tag in t.tags)
    mentions: dict[str, dict[str, int]] = {}
    for attribute, groups in group_terms().items():
        mentions[attribute] = {}
        for group, words in groups.items():
            pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b", re.I)
            mentions[attribute][group] = sum(bool(pattern.search(t.prompt)) for t in tasks)
    out = TaskReport(
        tasks=len(tasks),
        categories=dict(categories.most_common()),
        tags=dict(tags.most_common()),
        words={
            "min": min(lengths),
            "median": statistics.median(lengths),
            "max": max(lengths),
        },
        mentions=mentions,
    )
    top, count = categories.most_common(1)[0]
    if len(categories) > 1 and count > SKEW_SHARE * len(tasks):
        out.warnings.append(
            f"category {top!r} holds {count} of {len(tasks)} tasks ({count / len(tasks):.0%})"
        )
    for attribute, counts in mentions.items():
        high = max(counts, key=lambda g: counts[g])
        low = min(counts, key=lambda g: counts[g])
        if counts[high] >= SKEW_MIN and counts[high] >= SKEW_RATIO * max(counts[low], 1):
            out.warnings.append(
                f"{attribute}: {high} is mentioned in {counts[high]} prompts, {low} in "
                f"{counts[low]}"
            )
    if short := sum(n < SHORT for n in lengths):
        out.warnings.append(f"{short} prompt(s) shorter than {SHORT} words")
    return out
