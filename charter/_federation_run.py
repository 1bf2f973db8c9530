"""Federation on Flower's deployment engine: the coordinator's and the nodes' Charter
processes, and `simulate`, which starts a whole federation on this machine.

Flower carries the messages; Charter's processes make and check them. The Flower App in
charter/flower/ only relays: its ServerApp asks the coordinator's process (`serve_coordinator`,
HTTP on 127.0.0.1) what to send and hands back the replies; its ClientApp, which the SuperNode
starts for each message, hands the envelope to the node's process (`serve_node`) and returns
its signed reply. So each party keeps its model loaded and its database open across messages,
Flower's own dependencies (it pins older web libraries than Charter's) live in their own
virtual environment (`make flower`), and nothing but signed envelopes crosses Flower.

Layout of `simulate --dir DIR`: DIR/coordinator/ (charter.db, coordinator.key, wire.jsonl:
every message the coordinator sent or received, its log, the SuperLink's database and log)
and DIR/node-<i>/ (charter.db, node.key, tasks.jsonl: the node's private tasks, its logs).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from agent._federation import Coordinator, Node, RoundSummary
from principles import (
    SYSTEM,
    CharterError,
    InvalidInput,
    load_private,
    new_key,
    private_pem,
    public_hex,
)

FLOWER_PIN = "flwr==1.42.0"
APP = Path(__file__).parent / "flower"
REPO_FLOWER = Path(__file__).resolve().parents[1] / ".venv-flower" / "bin"


def flower_bin(explicit: str | None = None) -> Path:
    """The folder holding flower-superlink, flower-supernode and flwr: `--flower-bin`, else
    $CHARTER_FLOWER_BIN, else this checkout's .venv-flower (`make flower`), else PATH."""
    candidates = [explicit, os.environ.get("CHARTER_FLOWER_BIN"), str(REPO_FLOWER)]
    for c in candidates:
        if c and (Path(c) / "flower-superlink").exists():
            return Path(c)
    found = shutil.which("flower-superlink")
    if found:
        return Path(found).parent
    raise InvalidInput(
        f"Flower is not installed: run `make flower` (a virtual environment with {FLOWER_PIN} "
        "in .venv-flower) or name its bin folder with --flower-bin"
    )


def key_file(path: Path) -> Any:
    """The Ed25519 key in `path`, made (readable by its owner only) when missing."""
    if path.exists():
        return load_private(path.read_bytes())
    key = new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(private_pem(key))
    path.chmod(0o600)
    return key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"--listen takes HOST:PORT, not {listen!r}")
    return host, int(port)


# -- the coordinator's process ------------------------------------------------------------


@dataclass
class RelayTransport:
    """The coordinator's side of the ServerApp relay: `exchange` (the round's thread) queues a
    batch and waits for the replies that the ServerApp posts with its next `/next`."""

    timeout: float
    wire: Path | None = None
    _outbox: queue.Queue[dict[str, str] | None] = field(default_factory=queue.Queue)
    _replies: queue.Queue[dict[str, str | None]] = field(default_factory=queue.Queue)
    finished: threading.Event = field(default_factory=threading.Event)

    def _capture(self, direction: str, messages: Mapping[str, str | None]) -> None:
        if self.wire is None:
            return
        with self.wire.open("a", encoding="utf-8") as f:
            for node, text in messages.items():
                f.write(json.dumps({"dir": direction, "node": node, "envelope": text}) + "\n")

    def exchange(self, messages: Mapping[str, bytes]) -> dict[str, bytes | None]:
        batch = {n: m.decode() for n, m in messages.items()}
        self._capture("out", batch)
        self._outbox.put(batch)
        try:
            got = self._replies.get(timeout=self.timeout + 120)
        except queue.Empty as exc:
            raise OSError("the Flower relay did not bring the replies back in time") from exc
        self._capture("in", got)
        return {n: (got.get(n) or "").encode() or None for n in messages}

    def finish(self) -> None:
        self._outbox.put(None)

    def next(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The ServerApp's call: the replies to the last batch in, the next batch out."""
        if payload.get("replies") is not None:
            self._replies.put(dict(payload["replies"]))
        item = self._outbox.get()
        if item is None:
            self.finished.set()
            return {"done": True}
        return {"send": item, "timeout": self.timeout}


def _json_handler(route: Callable[[str, dict[str, Any]], dict[str, Any]]) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply(200, {"ok": True})

        def do_POST(self) -> None:
            try:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)))
                self._reply(200, route(self.path, payload))
            except (CharterError, ValueError, KeyError) as exc:
                sys.stderr.write(f"refused {self.path}: {exc}\n")
                self._reply(400, {"error": str(exc)})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve_coordinator(
    coordinator: Coordinator,
    rounds: int,
    listen: tuple[str, int],
    *,
    timeout: float,
    wire: Path | None = None,
) -> list[RoundSummary]:
    """Run `rounds` rounds through the relay at `listen`; returns once the ServerApp has been
    told that the run is done (or, with no ServerApp, after `timeout`)."""
    transport = RelayTransport(timeout, wire)

    def route(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        if path != "/next":
            raise InvalidInput(f"no such endpoint: {path}")
        return transport.next(payload)

    server = ThreadingHTTPServer(listen, _json_handler(route))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        summaries = [coordinator.run_round(transport) for _ in range(rounds)]
        transport.finish()
        transport.finished.wait(timeout=60)
        return summaries
    finally:
        server.shutdown()
        server.server_close()


def serve_node(node: Node, listen: tuple[str, int], *, fail_after: int | None = None) -> None:
    """Answer the ClientApp's `/message` calls one at a time until stopped. `fail_after` N:
    exit without answering the Nth message (a drill: a node lost mid-round)."""
    count = 0

    def route(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal count
        if path != "/message":
            raise InvalidInput(f"no such endpoint: {path}")
        count += 1
        if fail_after is not None and count >= fail_after:
            sys.stderr.write(f"node {node.name}: exiting at message {count} (--fail-after)\n")
            os._exit(3)
        reply = node.handle(str(payload["envelope"]).encode())
        return {"envelope": reply.decode() if reply is not None else ""}

    server = HTTPServer(listen, _json_handler(route))
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()


# -- simulate -----------------------------------------------------------------------------


@dataclass
class Processes:
    """Everything `simulate` started, each in its own process group, stopped together."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, args: Sequence[str], log: Path, env: Mapping[str, str], cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(args),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        self.started.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, limit: float) -> None:
    import urllib.request

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InvalidInput(f"{what} exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2).close()
            return
        time.sleep(0.3)
    raise InvalidInput(f"{what} was not ready after {limit:.0f} s")


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InvalidInput(f"{what} exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.3)
    raise InvalidInput(f"{what} was not listening after {limit:.0f} s")


def _last_line(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def charter_cmd() -> list[str]:
    return [sys.executable, "-m", "charter.cli"]


@dataclass(frozen=True)
class Plan:
    """What `simulate` runs: N nodes on the given task files, R rounds."""

    nodes: int
    rounds: int
    tasks: Sequence[Path]
    model: str
    root: Path
    mode: str = "review"
    timeout: float = 1800.0
    flower: str | None = None
    fail_after: Mapping[int, int] = field(default_factory=dict)
    """node index -> the message at which that node's process exits (a drill)."""
    node_args: Sequence[str] = ()
    """More options for every `charter federation node` (its sizes)."""
    coordinator_args: Sequence[str] = ()
    """More options for `charter federation coordinator` (its rule)."""


def prepare(plan: Plan) -> tuple[str, dict[str, str]]:
    """Lay out the folders, keys and databases; register the nodes. The coordinator's public
    key and each node's."""
    from agent import load_tasks
    from principles import default_seed
    from store import Store

    if len(plan.tasks) not in (1, plan.nodes):
        raise InvalidInput(f"give one task file, or one per node ({plan.nodes})")
    for source in plan.tasks:  # every file is read before anything is written
        if not source.exists():
            raise InvalidInput(f"no such task file: {source}")
        load_tasks(str(source))
    coordinator = plan.root / "coordinator"
    coordinator.mkdir(parents=True, exist_ok=True)
    ckey = public_hex(key_file(coordinator / "coordinator.key"))
    admin = SYSTEM
    keys: dict[str, str] = {}
    with Store(f"sqlite:///{coordinator / 'charter.db'}") as store:
        if not store.exists():
            store.init(default_seed())
        for i in range(plan.nodes):
            name = f"node-{i}"
            folder = plan.root / name
            folder.mkdir(parents=True, exist_ok=True)
            keys[name] = public_hex(key_file(folder / "node.key"))
            source = plan.tasks[i] if len(plan.tasks) == plan.nodes else plan.tasks[0]
            if not (folder / "tasks.jsonl").exists():
                shutil.copyfile(source, folder / "tasks.jsonl")
            store.register_node(name, keys[name], admin)
    return ckey, keys


def simulate(plan: Plan, say: Callable[[str], None]) -> dict[str, Any]:
    """Start a SuperLink, N SuperNodes, N node processes and the coordinator's process on
    127.0.0.1, run the rounds through `flwr run`, stop everything, and return the summary."""
    bins = flower_bin(plan.flower)
    ckey, keys = prepare(plan)
    coordinator_dir = plan.root / "coordinator"
    flower_home = coordinator_dir / "flower"
    (coordinator_dir / "summary.json").unlink(missing_ok=True)
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    # Flower's processes start others (flower-superexec, flwr-clientapp) by name.
    flower_env = {**env, "PATH": f"{bins}{os.pathsep}{env.get('PATH', '')}"}
    procs = Processes()
    started = time.monotonic()

    def stopped(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # a terminated simulate stops what it started (the `finally` below), as Ctrl-C does
    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        node_ports = {name: free_port() for name in keys}
        for i, name in enumerate(keys):
            folder = plan.root / name
            args = [
                *charter_cmd(),
                "federation",
                "node",
                "--dir",
                str(folder),
                "--name",
                name,
                "--coordinator-key",
                ckey,
                "--tasks",
                str(folder / "tasks.jsonl"),
                "--model",
                plan.model,
                "--listen",
                f"127.0.0.1:{node_ports[name]}",
                *plan.node_args,
            ]
            if i in plan.fail_after:
                args += ["--fail-after", str(plan.fail_after[i])]
            procs.start(args, folder / "node.log", env)
        for name, port in node_ports.items():
            proc = procs.started[list(keys).index(name)]
            _wait_http(f"http://127.0.0.1:{port}/", proc, f"node {name}", plan.timeout)
        say(f"{len(keys)} nodes ready ({time.monotonic() - started:.1f} s)")

        cport, link = free_port(), free_port()
        coordinator = procs.start(
            [
                *charter_cmd(),
                "federation",
                "coordinator",
                "--dir",
                str(coordinator_dir),
                "--rounds",
                str(plan.rounds),
                "--mode",
                plan.mode,
                "--timeout",
                str(plan.timeout),
                "--listen",
                f"127.0.0.1:{cport}",
                *plan.coordinator_args,
            ],
            coordinator_dir / "coordinator.log",
            env,
        )
        _wait_http(f"http://127.0.0.1:{cport}/", coordinator, "the coordinator", 60)
        superlink = procs.start(
            [
                str(bins / "flower-superlink"),
                "--insecure",
                "--port",
                str(link),
                "--disable-runtime-dependency-installation",
                "--database",
                str(coordinator_dir / "superlink.db"),
            ],
            coordinator_dir / "superlink.log",
            {**flower_env, "FLWR_HOME": str(flower_home)},
        )
        _wait_port(link, superlink, "the SuperLink", 60)
        for name, port in node_ports.items():
            folder = plan.root / name
            procs.start(
                [
                    str(bins / "flower-supernode"),
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{link}",
                    "--port",
                    str(free_port()),
                    "--node-config",
                    f'charter-url="http://127.0.0.1:{port}" charter-node="{name}"',
                ],
                folder / "supernode.log",
                {**flower_env, "FLWR_HOME": str(folder / "flower")},
            )
        flower_home.mkdir(parents=True, exist_ok=True)
        (flower_home / "config.toml").write_text(
            '[superlink]\ndefault = "charter"\n\n[superlink.charter]\n'
            f'address = "127.0.0.1:{link}"\ninsecure = true\n',
            encoding="utf-8",
        )
        app = coordinator_dir / "flower-app"
        shutil.rmtree(app, ignore_errors=True)
        shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
        say(f"Flower: SuperLink on 127.0.0.1:{link}, {len(keys)} SuperNodes; submitting the run")
        submitted = subprocess.run(
            [
                str(bins / "flwr"),
                "run",
                ".",
                "charter",
                "--run-config",
                f'coordinator-url="http://127.0.0.1:{cport}"',
            ],
            cwd=app,
            env={**flower_env, "FLWR_HOME": str(flower_home)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        (coordinator_dir / "flwr-run.log").write_text(
            submitted.stdout + submitted.stderr, encoding="utf-8"
        )
        if submitted.returncode != 0:
            raise InvalidInput(
                f"flwr run failed ({submitted.returncode}): see {coordinator_dir / 'flwr-run.log'}"
            )
        code = coordinator.wait(timeout=plan.timeout * (plan.rounds * 3 + 1))
        if code != 0:
            log = coordinator_dir / "coordinator.log"
            raise InvalidInput(f"the coordinator failed ({_last_line(log)}): see {log}")
    finally:
        procs.stop()
        signal.signal(signal.SIGTERM, previous)
    summary: dict[str, Any] = json.loads((coordinator_dir / "summary.json").read_text())
    summary["wall_s"] = round(time.monotonic() - started, 1)
    summary["dir"] = str(plan.root)
    return summary
