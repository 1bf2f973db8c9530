"""CLI: `charter federation coordinator|node|simulate|key`: federated refinement on Flower
(agent/_federation.py decides, charter/_federation_run.py runs the processes)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from charter._output import emit_json, say, table

federation_app = typer.Typer(
    help="Federated refinement: organisations refine one constitution without sharing data.",
    no_args_is_help=True,
)


class Mode(StrEnum):
    review = "review"
    autonomous = "autonomous"


class Role(StrEnum):
    node = "node"
    coordinator = "coordinator"


LOCAL_SCHEMES = ("default", "hf", "gguf")
"""Backends that run on this machine's CPU, whose threads `--threads` sets."""

DirOption = Annotated[Path, typer.Option("--dir", help="this party's folder")]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=1.0, help="seconds a node may take to answer one message"),
]
ModelOption = Annotated[str, typer.Option("--model", help="the backend URI")]
RoundsOption = Annotated[int, typer.Option("--rounds", min=1, help="rounds to run")]
EpsilonOption = Annotated[
    float | None,
    typer.Option("--epsilon", min=0.001, help="each node's differential-privacy budget per round"),
]
# a node's work per round (node, and simulate for every node)
TrainOption = Annotated[
    int, typer.Option("--train", min=1, help="training tasks a node answers per round")
]
HeldoutOption = Annotated[
    int, typer.Option("--heldout", min=1, help="held-out tasks a node's gate uses")
]
TokensOption = Annotated[int, typer.Option("--max-new-tokens", min=8, help="tokens per answer")]
ProposalsOption = Annotated[
    int, typer.Option("--proposals", min=0, help="drafts per node and round, at most")
]
ParaphrasesOption = Annotated[
    int, typer.Option("--paraphrases", min=1, max=3, help="judge paraphrases per judgment")
]
RationalesOption = Annotated[
    int, typer.Option("--rationales", min=0, help="critique rationales per node and round")
]


def _nodes(values: list[str]) -> dict[str, str]:
    """`--node NAME=PUBLIC_KEY` values, checked before anything is written."""
    import re

    from principles import InvalidInput

    found: dict[str, str] = {}
    for v in values:
        name, sep, key = v.partition("=")
        if not sep or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
            raise InvalidInput(f"--node takes NAME=PUBLIC_KEY (a lower-case name), not {v!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", key):
            raise InvalidInput(f"--node {name}: the public key is 64 hex digits, not {key!r}")
        found[name] = key
    return found


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    rows = []
    for r in summary["rounds"]:
        decided = r["verdicts"]
        rows.append(
            [
                str(r["round"]),
                r["status"],
                f"{len(r['answered'])}/{len(r['nodes'])}",
                str(r["candidates"]),
                str(sum(v["decision"] == "accepted" for v in decided)),
                str(sum(v["decision"] == "rejected" for v in decided)),
                ", ".join(map(str, r["amendments"])) or "-",
                str(r["revision"]),
            ]
        )
    table(
        None,
        ["round", "status", "nodes", "candidates", "accepted", "rejected", "amendments", "head"],
        rows,
    )


@federation_app.command("key")
def key(
    folder: DirOption,
    role: Annotated[Role, typer.Option("--role", help="whose key")] = Role.node,
) -> None:
    """Print this party's Ed25519 public key (made on first use, in DIR/<role>.key): a node
    gives it to the coordinator's operator, who admits it with `coordinator --node`."""
    from charter._federation_run import key_file
    from principles import public_hex

    print(public_hex(key_file(folder / f"{role.value}.key")))


@federation_app.command("coordinator")
def coordinator(
    folder: DirOption,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT the ServerApp relay calls")
    ] = "127.0.0.1:8801",
    rounds: RoundsOption = 1,
    mode: Annotated[
        Mode, typer.Option("--mode", help="review: a person approves accepted drafts here")
    ] = Mode.review,
    node: Annotated[
        list[str] | None, typer.Option("--node", help="admit NAME=PUBLIC_KEY (repeat)")
    ] = None,
    share: Annotated[
        float, typer.Option("--share", min=0.01, max=1.0, help="the quorum's share of nodes")
    ] = 2 / 3,
    min_count: Annotated[
        int, typer.Option("--min-count", min=1, help="least items behind a shared aggregate")
    ] = 5,
    epsilon: EpsilonOption = None,
    timeout: TimeoutOption = 1800.0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The coordinator: its database (DIR/charter.db, the global constitution, the node
    registry, the round log) and key; runs ROUNDS rounds through Flower's ServerApp relay
    (submitted with `flwr run`), resuming an interrupted round from its log."""
    from agent._federation import Coordinator
    from charter._federation_run import key_file, parse_listen, serve_coordinator
    from principles import SYSTEM, FederationRule, default_seed, public_hex
    from store import Store

    admitted = _nodes(node or [])
    folder.mkdir(parents=True, exist_ok=True)
    private = key_file(folder / "coordinator.key")
    with Store(f"sqlite:///{folder / 'charter.db'}") as store:
        if not store.exists():
            store.init(default_seed())
        for name, public in admitted.items():
            store.register_node(name, public, SYSTEM)
        say(f"coordinator public key {public_hex(private)}")
        c = Coordinator(
            store,
            private,
            FederationRule(share=share, min_count=min_count, epsilon=epsilon),
            mode=mode.value,
            say=say,
        )
        summaries = serve_coordinator(
            c, rounds, parse_listen(listen), timeout=timeout, wire=folder / "wire.jsonl"
        )
        head = store.constitution()
    summary = {"rounds": [s.as_json() for s in summaries], "revision": head.revision}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    _print(summary, as_json)


@federation_app.command("node")
def node(
    folder: DirOption,
    name: Annotated[str, typer.Option("--name", help="this node's registered name")],
    coordinator_key: Annotated[
        str, typer.Option("--coordinator-key", help="the coordinator's public key (hex)")
    ],
    tasks: Annotated[Path, typer.Option("--tasks", help="this node's private tasks (JSONL)")],
    model: ModelOption = "default",
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT the ClientApp relay calls")
    ] = "127.0.0.1:8810",
    train: TrainOption = 8,
    heldout: HeldoutOption = 6,
    seed: Annotated[int, typer.Option("--seed", help="task sampling and generation seed")] = 0,
    max_new_tokens: TokensOption = 160,
    proposals: ProposalsOption = 2,
    paraphrases: ParaphrasesOption = 2,
    rationales: RationalesOption = 8,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads of a local model")
    ] = None,
    fail_after: Annotated[
        int | None,
        typer.Option("--fail-after", min=1, help="drill: exit at the Nth message, unanswered"),
    ] = None,
) -> None:
    """A node: its database (DIR/charter.db), key, model and private tasks; answers the
    coordinator's messages that its SuperNode's ClientApp relays, until stopped."""
    from agent import load_tasks, open_backend
    from agent._federation import Node
    from charter._federation_run import key_file, parse_listen, serve_node
    from principles import InvalidInput, RunConfig, public_hex
    from store import Store

    found = load_tasks(str(tasks))
    config = RunConfig(
        model=model,
        seed=seed,
        train_per_iteration=train,
        heldout_size=heldout,
        max_new_tokens=max_new_tokens,
        max_proposals=proposals,
        judge_paraphrases=paraphrases,
        max_rationales=rationales,
    )
    if len(found) <= heldout:
        raise InvalidInput(f"{tasks} has {len(found)} tasks: more than --heldout {heldout} needed")
    folder.mkdir(parents=True, exist_ok=True)
    private = key_file(folder / "node.key")
    store = Store(f"sqlite:///{folder / 'charter.db'}")
    say(f"node {name} public key {public_hex(private)}; loading model {model} ...")
    local = model.split(":", 1)[0].split("?", 1)[0] in LOCAL_SCHEMES
    backend = open_backend(
        model, store, options={"threads": threads} if threads and local else None
    )
    n = Node(
        name=name,
        store=store,
        backend=backend,
        key=private,
        coordinator_key=coordinator_key,
        tasks=found,
        config=config,
        say=say,
    )
    say(f"node {name} listening on {listen}")
    try:
        serve_node(n, parse_listen(listen), fail_after=fail_after)
    finally:
        store.close()


@federation_app.command("simulate")
def simulate(
    folder: DirOption,
    nodes: Annotated[int, typer.Option("--nodes", min=2, help="how many nodes")] = 3,
    rounds: RoundsOption = 1,
    tasks: Annotated[
        str, typer.Option("--tasks", help="task files, comma-separated: one, or one per node")
    ] = "builtin",
    model: ModelOption = "default",
    mode: Annotated[Mode, typer.Option("--mode", help="the coordinator's mode")] = Mode.review,
    train: TrainOption = 8,
    heldout: HeldoutOption = 6,
    max_new_tokens: TokensOption = 160,
    proposals: ProposalsOption = 2,
    paraphrases: ParaphrasesOption = 2,
    rationales: RationalesOption = 8,
    epsilon: EpsilonOption = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="CPU threads per node (default: cores / nodes)"),
    ] = None,
    timeout: TimeoutOption = 1800.0,
    flower: Annotated[
        str | None, typer.Option("--flower-bin", help="folder with flower-superlink and flwr")
    ] = None,
    fail_after: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-after", help="drill: node I's process exits at its Nth message (I:N, repeat)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """A whole federation on this machine: a real SuperLink, NODES SuperNodes, each node's
    and the coordinator's Charter process, ROUNDS rounds; DIR/coordinator/ and DIR/node-<i>/
    hold each party's database and logs. Everything started is stopped at the end."""
    from charter._federation_run import Plan
    from charter._federation_run import simulate as run

    files = [Path(t) for t in tasks.split(",") if t]
    if tasks == "builtin":
        files = [_split_builtin(folder, nodes, i) for i in range(nodes)]
    import os

    per_node = threads or max(1, (os.cpu_count() or 1) // nodes)
    plan = Plan(
        nodes=nodes,
        rounds=rounds,
        tasks=files,
        model=model,
        root=folder,
        mode=mode.value,
        timeout=timeout,
        flower=flower,
        fail_after=_drills(fail_after or [], nodes),
        node_args=(
            "--train",
            str(train),
            "--heldout",
            str(heldout),
            "--max-new-tokens",
            str(max_new_tokens),
            "--proposals",
            str(proposals),
            "--paraphrases",
            str(paraphrases),
            "--rationales",
            str(rationales),
            "--threads",
            str(per_node),
        ),
        coordinator_args=() if epsilon is None else ("--epsilon", str(epsilon)),
    )
    summary = run(plan, say)
    _print(summary, as_json)


def _drills(values: list[str], nodes: int) -> dict[int, int]:
    from principles import InvalidInput

    found: dict[int, int] = {}
    for v in values:
        i, sep, n = v.partition(":")
        if not sep or not i.isdigit() or not n.isdigit() or int(i) >= nodes or int(n) < 1:
            raise InvalidInput(f"--fail-after takes NODE:N with NODE below {nodes}, not {v!r}")
        found[int(i)] = int(n)
    return found


def _split_builtin(folder: Path, nodes: int, i: int) -> Path:
    """Node i's share of the built-in tasks, in its own folder."""
    from agent import load_tasks

    path = folder / f"node-{i}" / "tasks.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        share = [t for k, t in enumerate(load_tasks("builtin")) if k % nodes == i]
        path.write_text("".join(t.model_dump_json() + "\n" for t in share), encoding="utf-8")
    return path
