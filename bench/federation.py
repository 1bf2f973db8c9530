"""Federation benchmark: a federated round on Flower next to one node doing the same work.

    .venv/bin/python bench/federation.py [--model URI] [--nodes N] [--train N] [--heldout N]
                                         [--max-new-tokens N] [--rounds N] [--json]

1. A round: `charter federation simulate` with N nodes (a real SuperLink and SuperNodes on
   127.0.0.1, `make flower`), each on its share of the built-in tasks; wall time per round
   (the whole run, start-up included, divided by the rounds; start-up apart).
2. Bytes on the wire per node and round: each message's size as the coordinator sent and
   received it (DIR/coordinator/wire.jsonl).
3. Peak RSS per node, sampled every 0.2 s from /proc: the node's Charter process, its
   SuperNode (with the SuperExec it starts) and the ClientApp processes (one per message),
   each peak apart.
4. The same work without federation: one in-process node with all N nodes' training and
   held-out tasks (N x train, N x held-out) doing one local iteration and the gate on what
   it drafted (`agent._federation.Node`, same model), so the round's overhead and its
   parallelism across nodes show as a ratio. On this 2-core machine the nodes share the
   cores; in a real federation each has its own machine.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from agent import load_tasks, open_backend  # noqa: E402
from agent._federation import Node  # noqa: E402
from principles import (  # noqa: E402
    Candidate,
    CandidatesBody,
    RoundBody,
    RunConfig,
    default_seed,
    merge,
    new_key,
    public_hex,
)
from store import Store  # noqa: E402

KINDS = {
    "charter node": "federation node",
    "supernode": "flower-supernode",
    "superexec": "flower-superexec",
    "clientapp": "flwr-clientapp",
}


class Sampler:
    """Peak RSS (MB) per process kind and node, from /proc, every 0.2 s."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.peak: dict[tuple[str, str], float] = defaultdict(float)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    status = (proc / "status").read_text()
                    environ = (proc / "environ").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                kind = next((k for k, mark in KINDS.items() if mark in cmd), None)
                if kind is None or (self.root not in cmd and self.root not in environ):
                    continue
                found = re.search(re.escape(self.root) + r"/(node-\d+)", cmd + " " + environ)
                node = found.group(1) if found else "?"
                rss = next(
                    (
                        int(line.split()[1]) / 1024
                        for line in status.splitlines()
                        if line.startswith("VmRSS:")
                    ),
                    0.0,
                )
                key = (node, kind)
                self.peak[key] = max(self.peak[key], rss)
            self._stop.wait(0.2)


def federated(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "charter.cli",
        "federation",
        "simulate",
        "--dir",
        str(root),
        "--nodes",
        str(args.nodes),
        "--rounds",
        str(args.rounds),
        "--model",
        args.model,
        "--train",
        str(args.train),
        "--heldout",
        str(args.heldout),
        "--max-new-tokens",
        str(args.max_new_tokens),
        "--proposals",
        str(args.proposals),
        "--paraphrases",
        str(args.paraphrases),
        "--timeout",
        "1800",
        "--json",
    ]
    with Sampler(root) as sampler:
        started = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"simulate failed: {done.stderr.strip().splitlines()[-1]}")
    summary = json.loads(done.stdout)
    ready = next(
        (
            float(line.split("(")[1].split()[0])
            for line in done.stderr.splitlines()
            if "nodes ready" in line
        ),
        0.0,
    )
    sent: dict[str, int] = defaultdict(int)
    received: dict[str, int] = defaultdict(int)
    for line in (root / "coordinator" / "wire.jsonl").read_text().splitlines():
        row = json.loads(line)
        size = len((row["envelope"] or "").encode())
        (sent if row["dir"] == "out" else received)[row["node"]] += size
    nodes = sorted({n for n, _ in sampler.peak} - {"?"})
    return {
        "wall_s": round(wall, 1),
        "nodes_ready_s": ready,
        "per_round_s": round(wall / args.rounds, 1),
        "round_s": [r["seconds"] for r in summary["rounds"]],
        "rounds": [
            {k: r[k] for k in ("round", "status", "candidates", "amendments")}
            | {"decisions": [v["decision"] for v in r["verdicts"]]}
            for r in summary["rounds"]
        ],
        "bytes_to_node_per_round": {n: sent[n] // args.rounds for n in sorted(sent)},
        "bytes_from_node_per_round": {n: received[n] // args.rounds for n in sorted(received)},
        "peak_rss_mb": {n: {k: round(sampler.peak.get((n, k), 0.0)) for k in KINDS} for n in nodes},
    }


def single(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """One node, all the tasks, the same work as a round: drafts, then the gate on them."""
    tasks = load_tasks("builtin")
    coordinator = new_key()
    store = Store(f"sqlite:///{root / 'single.db'}")
    started = time.monotonic()
    backend = open_backend(args.model, store)
    loaded = time.monotonic() - started
    node = Node(
        name="single",
        store=store,
        backend=backend,
        key=new_key(),
        coordinator_key=public_hex(coordinator),
        tasks=tasks,
        config=RunConfig(
            train_per_iteration=args.train * args.nodes,
            heldout_size=args.heldout * args.nodes,
            max_new_tokens=args.max_new_tokens,
            max_proposals=args.proposals,
            judge_paraphrases=args.paraphrases,
        ),
    )
    seed = default_seed()
    store.init(seed)
    head = store.constitution()
    body = RoundBody(
        constitution="default",
        revision=head.revision,
        hash=store.revision(head.revision).hash,
        principles=tuple(p.as_principle() for p in head.principles),
        min_count=5,
    )
    started = time.monotonic()
    drafts = node.drafts(1, body)
    candidates: list[Candidate] = merge({"single": drafts.drafts})
    node.figures(1, CandidatesBody(head=head.revision, candidates=tuple(candidates)))
    wall = time.monotonic() - started
    store.close()
    return {"load_s": round(loaded, 1), "iteration_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="scripted:loop")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--train", type=int, default=5)
    parser.add_argument("--heldout", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--proposals", type=int, default=1)
    parser.add_argument("--paraphrases", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="charter-fed-bench-") as tmp:
        root = Path(tmp)
        fed = federated(args, root / "fed")
        alone = single(args, root)
    result = {"model": args.model, "nodes": args.nodes, "federated": fed, "single_node": alone}
    first = fed["round_s"][0]
    result["round_vs_single_iteration"] = round(first / max(alone["iteration_s"], 1e-9), 2)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"model {args.model}, {args.nodes} nodes, {args.rounds} rounds, "
        f"{args.train} train + {args.heldout} held-out tasks per node"
    )
    print(
        f"federated: {fed['wall_s']} s in all, start-up included (nodes ready after "
        f"{fed['nodes_ready_s']} s); rounds {fed['round_s']} s; decisions {fed['rounds']}"
    )
    print(f"single node, all tasks: load {alone['load_s']} s, iteration {alone['iteration_s']} s")
    print(f"ratio, round 1 / the single node's iteration: {result['round_vs_single_iteration']}x")
    for n, b in fed["bytes_to_node_per_round"].items():
        print(
            f"{n}: {b} B to it, {fed['bytes_from_node_per_round'].get(n, 0)} B from it per "
            f"round; peak RSS MB {fed['peak_rss_mb'].get(n, {})}"
        )


if __name__ == "__main__":
    main()
