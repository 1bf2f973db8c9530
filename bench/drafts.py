"""Draft benchmark: how many of the proposer's drafts are well-formed with the default model.

    .venv/bin/python bench/drafts.py [--seeds 1 2 3] [--budget 4] [--verbose] [--model URI]

For each seed it builds the statistics of one iteration over the default constitution (three
principles violated or judged ambiguously, one pair judged alike: three revisions and a
merge for `candidates` to pick), runs the proposer exactly as the loop's propose step does
(the demo preset's model, the loop's propose seed and token budget), and prints: changes
attempted, changes with a well-formed draft (the proposer would put them forward: their best
candidate passes `principles.check_draft`), the rate (target >= 90 %), the raw share of
candidates that pass, and the seconds spent. The statistics are synthetic so that every seed
costs the same few model calls; the prompts carry no figures or critiques of answers for a
revision, so a real run's statistics only change which principles are drafted.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from agent import open_backend, preset  # noqa: E402
from agent._progress import NoProgress  # noqa: E402
from agent._proposer import propose  # noqa: E402
from agent.models import GenerationParams  # noqa: E402
from principles import (  # noqa: E402
    STEPS,
    Aggregate,
    Constitution,
    Policy,
    PrincipleConflict,
    PrincipleStats,
    default_seed,
)
from store import Store  # noqa: E402

TARGET = 0.9


def statistics(head: Constitution, seed: int) -> Aggregate:
    """One iteration's statistics: three weak principles and a redundant pair, by seed."""
    rng = random.Random(seed)
    ids = [p.principle_id for p in head.principles]
    free = [p.principle_id for p in head.principles if not p.entrenched]
    weak = rng.sample(ids, 3)
    a, b = rng.sample([i for i in free if i not in weak], 2)
    stats = {}
    for pid in ids:
        violations = rng.uniform(0.3, 0.8) if pid in weak else rng.uniform(0.0, 0.1)
        ambiguity = rng.uniform(0.0, 0.5) if pid in weak else 0.0
        stats[pid] = PrincipleStats(
            principle_id=pid,
            judged=6,
            mean=1 - violations,
            violation_rate=violations,
            ambiguity=ambiguity,
            relevance=1.0,
            spread=rng.uniform(0.0, 0.1),
        )
    pair = PrincipleConflict(a=a, b=b, correlation=0.95, outputs=6)
    return Aggregate(mean=0.7, per_principle=stats, redundant=(pair,))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=int, default=4, help="changes drafted per seed")
    parser.add_argument("--model", help="override the demo preset's model URI")
    parser.add_argument("--verbose", action="store_true", help="print rejected candidates")
    args = parser.parse_args()
    config = preset("demo")
    uri = args.model or config.model
    with tempfile.TemporaryDirectory() as tmp, Store(f"{tmp}/bench.db") as store:
        store.init(default_seed())
        head = store.constitution()
    t = time.perf_counter()
    backend = open_backend(uri, cache=False)
    print(f"model {uri} loaded in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    header = f"{'seed':>5}{'drafts':>8}{'well-formed':>13}{'rate':>8}"
    header += f"{'candidates':>12}{'pass':>6}{'raw rate':>10}{'seconds':>9}"
    print(header)
    print("-" * len(header))
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    kept: list[str] = []
    seconds = 0.0
    for seed in args.seeds:
        params = GenerationParams(
            max_new_tokens=256, seed=seed * 1000 + 10 + STEPS.index("propose")
        )
        t = time.perf_counter()
        found = propose(
            backend,
            head,
            statistics(head, seed),
            [],
            [],
            budget=args.budget,
            run_id=1,
            policy=Policy(),
            params=params,
            progress=NoProgress(),
        )
        spent = time.perf_counter() - t
        seconds += spent
        f = found.figures
        totals.update(f)
        reasons.update(r for rejected in found.rejected for r in rejected["reasons"])
        kept += [f"seed {seed} {d.op} {d.principle_id}: {d.text}" for d in found.drafts]
        if args.verbose:
            for r in found.rejected:
                why = "; ".join(r["messages"])
                print(f"  rejected {r['op']} {r['principle']}: {r['text']!r} ({why})")
        rate = f["well_formed"] / max(1, f["attempted"])
        raw = f["candidates_well_formed"] / max(1, f["candidates"])
        print(
            f"{seed:>5}{f['attempted']:>8}{f['well_formed']:>13}{rate:>8.0%}"
            f"{f['candidates']:>12}{f['candidates_well_formed']:>6}{raw:>10.0%}{spent:>9.1f}"
        )
    rate = totals["well_formed"] / max(1, totals["attempted"])
    raw = totals["candidates_well_formed"] / max(1, totals["candidates"])
    print("-" * len(header))
    print(
        f"{'all':>5}{totals['attempted']:>8}{totals['well_formed']:>13}{rate:>8.0%}"
        f"{totals['candidates']:>12}{totals['candidates_well_formed']:>6}{raw:>10.0%}"
        f"{seconds:>9.1f}"
    )
    print(
        f"well-formed drafts {rate:.0%} (target >= {TARGET:.0%}): "
        f"{'PASS' if rate >= TARGET else 'MISS'}"
    )
    print(
        "rejected candidates by reason: "
        + (", ".join(f"{r} {n}" for r, n in reasons.most_common()) or "none")
    )
    print("drafts put forward:")
    for line in kept:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
