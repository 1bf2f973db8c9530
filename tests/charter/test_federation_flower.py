"""A real federation on loopback: Flower's SuperLink and one SuperNode per node (from the
.venv-flower environment, `make flower`), each node's and the coordinator's Charter process,
driven by `charter federation simulate` with the scripted model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent import load_tasks
from principles import Task
from store import Store


def canary(i: int) -> str:
    return f"zq{i}flowercanary{i * 7919}"


def write_tasks(folder: Path, nodes: int) -> list[Path]:
    folder.mkdir()
    files = []
    for i in range(nodes):
        share = [
            Task(id=f"n{i}-{t.id}", prompt=f"{t.prompt} (ref {canary(i)})", category=t.category)
            for k, t in enumerate(load_tasks("builtin"))
            if k % nodes == i
        ]
        path = folder / f"org-{i}.jsonl"
        path.write_text("".join(t.model_dump_json() + "\n" for t in share), encoding="utf-8")
        files.append(path)
    return files


def charter(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`charter federation ARGS` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "charter.cli", "federation", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def contents(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.slow
def test_a_federation_on_flower_keeps_each_nodes_data_at_home_and_survives_a_lost_node(
    tmp_path: Path,
) -> None:
    files = write_tasks(tmp_path / "private", 3)
    root = tmp_path / "fed"
    done = charter(
        "simulate",
        "--dir",
        str(root),
        "--nodes",
        "3",
        "--rounds",
        "2",
        "--tasks",
        ",".join(map(str, files)),
        "--model",
        "scripted:loop",
        "--mode",
        "autonomous",
        "--timeout",
        "120",
        "--fail-after",
        "2:4",
        "--json",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    first, second = summary["rounds"]
    assert first["status"] == "completed" and first["answered"] == ["node-0", "node-1", "node-2"]
    assert first["applied"], first
    # node-2's process died at its 4th message, the start of round 2: the quorum (2 of 3)
    # is still reachable, so the round completes with the two others
    assert second["answered"] == ["node-0", "node-1"]
    assert second["status"] == "completed"
    assert any(r.startswith("node-2") for r in second["refused"])

    wire = (root / "coordinator" / "wire.jsonl").read_text(encoding="utf-8")
    assert len(wire.splitlines()) >= 12
    for i in range(3):
        mark = canary(i).encode()
        assert mark in contents(root / f"node-{i}")
        assert mark not in contents(root / "coordinator")
        assert mark.decode() not in wire
        for j in range(3):
            if j != i:
                assert mark not in contents(root / f"node-{j}")

    with Store(f"sqlite:///{root / 'coordinator' / 'charter.db'}") as coordinator:
        head = coordinator.constitution()
        assert coordinator.verify().status == "intact"
        assert head.revision == summary["revision"] > 1
        # node-2 holds the head as of the end of round 1, when it was last reached
        expected = [head, head, coordinator.constitution(at=first["revision"])]
    for i in range(3):
        with Store(f"sqlite:///{root / f'node-{i}' / 'charter.db'}") as node:
            assert node.verify().status == "intact"
            local = node.constitution()
            assert [p.as_principle() for p in local.principles] == [
                p.as_principle() for p in expected[i].principles
            ]
            adopted = [
                e.payload["federation"] for e in node.audit_log() if "federation" in e.payload
            ]
            assert adopted[-1]["revision"] == expected[i].revision
            assert adopted[-1]["coordinator_signature"]


@pytest.mark.slow
def test_two_nodes_with_the_default_model_finish_a_round_on_flower(tmp_path: Path) -> None:
    files = write_tasks(tmp_path / "private", 2)
    root = tmp_path / "fed"
    done = charter(
        "simulate",
        "--dir",
        str(root),
        "--nodes",
        "2",
        "--rounds",
        "1",
        "--tasks",
        ",".join(map(str, files)),
        "--model",
        "default",
        "--train",
        "5",
        "--heldout",
        "5",
        "--max-new-tokens",
        "24",
        "--proposals",
        "1",
        "--paraphrases",
        "1",
        "--rationales",
        "2",
        "--timeout",
        "900",
        "--json",
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (only,) = json.loads(done.stdout)["rounds"]
    assert only["answered"] == ["node-0", "node-1"] and not only["refused"]
    # every candidate the real model drafted was measured by both nodes and decided
    log = [
        json.loads(line) for line in (root / "coordinator" / "wire.jsonl").read_text().splitlines()
    ]
    assert {row["node"] for row in log} == {"node-0", "node-1"}
    assert len(only["verdicts"]) == only["candidates"]
    assert all(v["measured"] == 2 for v in only["verdicts"])
    for i in range(2):
        assert canary(i) not in (root / "coordinator" / "wire.jsonl").read_text()
        assert canary(i).encode() not in contents(root / "coordinator")
        with Store(f"sqlite:///{root / f'node-{i}' / 'charter.db'}") as node:
            assert node.verify().status == "intact"
            sent = [e.payload["kind"] for e in node.audit_log() if e.action == "federation.send"]
            assert sent == (["drafts", "figures"] if only["candidates"] else ["drafts"])
    with Store(f"sqlite:///{root / 'coordinator' / 'charter.db'}") as coordinator:
        assert coordinator.verify().status == "intact"


def test_bad_federation_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    files = write_tasks(tmp_path / "private", 2)
    missing = charter(
        "simulate",
        "--dir",
        str(tmp_path / "fed"),
        "--nodes",
        "2",
        "--tasks",
        f"{files[0]},{tmp_path / 'nope.jsonl'}",
        "--model",
        "scripted:loop",
    )
    assert missing.returncode == 4
    assert missing.stderr.strip().splitlines() == [
        f"error: no such task file: {tmp_path / 'nope.jsonl'}"
    ]
    assert not (tmp_path / "fed").exists()

    bad_node = charter("coordinator", "--dir", str(tmp_path / "c"), "--node", "org-a")
    assert bad_node.returncode == 4 and "NAME=PUBLIC_KEY" in bad_node.stderr
    bad_key = charter("coordinator", "--dir", str(tmp_path / "c"), "--node", "org-a=00ff")
    assert bad_key.returncode == 4 and len(bad_key.stderr.strip().splitlines()) == 1
    assert "64 hex digits" in bad_key.stderr and not (tmp_path / "c").exists()

    key = charter("key", "--dir", str(tmp_path / "n"))
    assert key.returncode == 0 and len(key.stdout.strip()) == 64
    assert charter("key", "--dir", str(tmp_path / "n")).stdout == key.stdout  # kept
    assert (tmp_path / "n" / "node.key").stat().st_mode & 0o077 == 0
