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
from agent._preferences import Reconstruction, paired_credits, reconstruct  # noqa: E402
from agent._synthetic import RULES  # noqa: E402
from agent.models import GenerationParams  # noqa: E402


def margin(after: Reconstruction, before: Reconstruction) -> dict[str, Any]:
    low, high = gain(after, before)
    diffs = paired_credits(after, before)
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
