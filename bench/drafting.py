"""Drafting benchmark: can the agent recover a known rule from preferences alone (ICAI)?

    .venv/bin/python bench/drafting.py [--model URI] [--pairs 30] [--samples 8] [--json]

Three synthetic preference sets, each generated from one known rule in Inverse
Constitutional AI's style (a lexical or stylistic preference): the preferred answer names a
source; answers in one sentence; uses no jargon. Each set is split as `charter draft
--preferences` splits it (by a hash of each pair: about 70% training, 30% held out); the
agent drafts principles from the training pairs only (`agent._icai`), and on the held-out
pairs the bench prints how often the judge reconstructs the preference with no
constitution, with the drafted principles, and with the oracle rule itself, each with a
bootstrap 95% CI, and the drafted-minus-none margin with a paired bootstrap CI. Target: the
margin's CI excludes zero on at least two of the three sets. A placebo column (one unrelated
principle) shows what any constitution does to the judge through the question's wording
alone, which the margin over no constitution does not separate; the drafting keeps only
candidates that beat it on the training pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from agent import open_backend  # noqa: E402
from agent._icai import PLACEBO, draft_from_preferences, gain, split  # noqa: E402
from agent._preferences import (  # noqa: E402
    Preference,
    Reconstruction,
    credit,
    reconstruct,
)
from agent.models import GenerationParams  # noqa: E402
from principles import Principle  # noqa: E402

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


RULES = {
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


def margin(after: Reconstruction, before: Reconstruction) -> dict[str, Any]:
    low, high = gain(after, before)
    diffs = [credit(a) - credit(b) for a, b in zip(after.p_chosen, before.p_chosen, strict=True)]
    return {
        "margin": round(sum(diffs) / len(diffs), 4),
        "margin_ci": [round(low, 4), round(high, 4)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    backend = open_backend(args.model)
    results: dict[str, Any] = {}
    for name, (make, oracle) in RULES.items():
        started = time.perf_counter()
        pairs = make(args.pairs)
        found = draft_from_preferences(
            backend,
            pairs,
            [],
            samples=args.samples,
            params=GenerationParams(max_new_tokens=160, seed=args.seed),
        )
        # With no principle kept, the drafted constitution is the empty one.
        _, heldout = split(pairs)
        none = found.heldout_before or reconstruct(backend, [], heldout)
        drafted = found.heldout_after or none
        told = reconstruct(backend, [oracle], heldout)
        placebo = reconstruct(backend, [PLACEBO], heldout)
        results[name] = {
            "train_n": found.train_n,
            "heldout_n": found.heldout_n,
            "candidates": len(found.candidates),
            "drafted": [f"{c.principle.id}: {c.principle.text}" for c in found.kept],
            "none": none.as_json(),
            "drafted_figures": drafted.as_json(),
            "oracle": told.as_json(),
            "placebo": placebo.as_json(),
            **margin(drafted, none),
            "seconds": round(time.perf_counter() - started, 1),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"ICAI reconstruction on held-out pairs, judge {backend.uri}")
    print(
        f"{'rule set':16}{'held':>6}{'none':>20}{'placebo':>20}{'drafted':>20}{'oracle':>20}"
        f"{'margin':>24}"
    )
    wins = 0
    for name, r in results.items():

        def cell(f: dict[str, Any]) -> str:
            return f"{f['accuracy']:.2f} [{f['accuracy_ci'][0]:.2f}, {f['accuracy_ci'][1]:.2f}]"

        low, high = r["margin_ci"]
        wins += low > 0
        print(
            f"{name:16}{r['heldout_n']:>6}{cell(r['none']):>20}{cell(r['placebo']):>20}"
            f"{cell(r['drafted_figures']):>20}{cell(r['oracle']):>20}"
            f"{r['margin']:>+10.2f} [{low:+.2f}, {high:+.2f}]"
        )
        for line in r["drafted"] or ["(no principle kept)"]:
            print(f"{'':16}drafted: {line}")
    verdict = "PASS" if wins >= 2 else "MISS"
    print(f"target: margin CI above zero on at least 2 of 3 sets: {wins} of 3, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
