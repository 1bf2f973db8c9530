"""Loop benchmark: where a refinement run's wall time goes, and how long the demo takes.

    .venv/bin/python bench/loop.py [--preset demo] [--model URI] [--seed S] [--option K=V ...]

Runs the preset (the one `make demo` runs) on a new SQLite file with the LM-call cache off,
times every model call, and prints: model load time, the run's wall time, the time inside
model calls, the share outside them (target < 5 %), the time per step, and the demo's wall
time (database, model load and run; targets: the preset's run at or under 90 s on a quiet
2-core machine, the whole `make demo` under 15 minutes). `--option` passes a backend option
that leaves the model's name (and so its calibration) alone: `--option decode_loop=generate
--option score_layout=rows` runs the paths the lean decode loop and the packed critic
replaced, for a before/after on the same code.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from agent import open_backend, preset, start_run, summarize  # noqa: E402
from agent._timing import TimedBackend  # noqa: E402
from agent.models import split_options  # noqa: E402
from principles import default_seed  # noqa: E402
from store import Store  # noqa: E402

OUTSIDE_TARGET = 0.05
RUN_TARGET_S = 90.0  # the demo preset's run on a quiet 2-core machine
DEMO_TARGET_S = 15 * 60


class StepClock:
    """Wall time per step, from the loop's progress callbacks."""

    def __init__(self, timed: TimedBackend) -> None:
        self.timed = timed
        self.wall: dict[str, float] = defaultdict(float)
        self.model: dict[str, float] = defaultdict(float)
        self._step: str | None = None
        self._t = 0.0
        self._m = 0.0

    def _close(self) -> None:
        if self._step is not None:
            self.wall[self._step] += time.perf_counter() - self._t
            self.model[self._step] += self.timed.total - self._m

    def step(self, iteration: int, iterations: int, step: str, total: int) -> None:
        self._close()
        self._step, self._t, self._m = step, time.perf_counter(), self.timed.total
        print(f"  iteration {iteration}/{iterations} {step}", file=sys.stderr, flush=True)

    def advance(self, n: int = 1) -> None:
        return None

    def message(self, text: str) -> None:
        return None

    def finish(self) -> None:
        self._close()
        self._step = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--model", help="override the preset's model URI")
    parser.add_argument("--seed", type=int, help="override the preset's seed")
    parser.add_argument(
        "--option", action="append", default=[], metavar="K=V", help="a backend option"
    )
    args = parser.parse_args()
    _, options = split_options("?" + "&".join(args.option)) if args.option else ("", {})
    if len(options) != len(args.option):
        parser.error(f"--option takes NAME=VALUE, got {' '.join(args.option)}")
    config = preset(args.preset)
    if args.model:
        config = config.model_copy(update={"model": args.model})
    if args.seed is not None:
        config = config.model_copy(update={"seed": args.seed})
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        store = Store(f"{tmp}/bench.db")
        store.init(default_seed())
        t = time.perf_counter()
        timed = TimedBackend(open_backend(config.model, store, cache=False, options=options))
        load_s = time.perf_counter() - t
        clock = StepClock(timed)
        t = time.perf_counter()
        run = start_run(store, timed, config, progress=clock)
        clock.finish()
        run_s = time.perf_counter() - t
        demo_s = time.perf_counter() - started
        summary = summarize(store, run.id)
        waiting = [store.amendment(i) for i in summary.pending]
        store.close()
    inside = timed.total
    outside = run_s - inside
    share = outside / run_s if run_s else 0.0
    print(
        f"preset {args.preset}: model {config.model} {options or ''}, "
        f"{config.iterations} iteration(s), "
        f"{config.train_per_iteration} train + {config.heldout_size} held-out tasks, "
        f"mode {config.mode}; run {run.id} {run.status}"
    )
    print(f"{'figure':<42}{'value':>12}{'target':>12}{'ratio':>8}  result")
    print("-" * 82)
    rows = [
        ("model load", f"{load_s:.2f} s", "-", None),
        ("run wall time", f"{run_s:.1f} s", f"<= {RUN_TARGET_S:.0f} s", run_s / RUN_TARGET_S),
        ("inside model calls", f"{inside:.1f} s", "-", None),
        ("outside model calls", f"{outside:.2f} s", "-", None),
        (
            "share outside model calls",
            f"{share:.2%}",
            f"< {OUTSIDE_TARGET:.0%}",
            share / OUTSIDE_TARGET,
        ),
        (
            "demo wall time (db + load + run)",
            f"{demo_s:.1f} s",
            f"< {DEMO_TARGET_S} s",
            demo_s / DEMO_TARGET_S,
        ),
    ]
    for label, value, target, ratio in rows:
        verdict = "-" if ratio is None else ("PASS" if ratio <= 1 else "MISS")
        r = "-" if ratio is None else f"{ratio:.2f}"
        print(f"{label:<42}{value:>12}{target:>12}{r:>8}  {verdict}")
    print()
    print(f"{'step':<12}{'wall s':>10}{'model s':>10}")
    for step, wall in clock.wall.items():
        print(f"{step:<12}{wall:>10.1f}{clock.model[step]:>10.1f}")
    print()
    calls = ", ".join(
        f"{k} {timed.calls[k]} calls / {timed.items[k]} items / {timed.seconds[k]:.1f} s"
        for k in sorted(timed.calls)
    )
    print(f"model calls: {calls}")
    print(
        f"amendments proposed: {sum(len(i.proposed) for i in summary.iterations)}, "
        f"pending review: {len(summary.pending)} (seed {config.seed})"
    )
    for a in waiting:
        gate = a.evaluation.details if a.evaluation else {}
        ci = gate.get("ci") or (float("nan"), float("nan"))
        print(
            f"  amendment {a.id}: {a.draft.op} {a.draft.principle_id}: "
            f"{gate.get('outcome', '-')}, effect {gate.get('effect', float('nan')):+.3f} "
            f"[{ci[0]:+.3f}, {ci[1]:+.3f}], p = {gate.get('p_value', float('nan')):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
