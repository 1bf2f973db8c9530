"""Store benchmark: write latency, history reads, as-of reads and audit verification.

    .venv/bin/python bench/store.py [--db URL]

Without `--db` it uses a new SQLite file in a temporary folder (deleted afterwards). A
`--db` database must be empty: the bench writes ~10,000 revisions and 100,000 audit events.

Writes are timed through the public API (`Store.commit`, and propose -> approve -> apply).
The large read fixtures are then built in bulk with SQLAlchemy Core in one transaction,
hash-chained with the same functions the store uses (`version_hash`, `revision_hash`,
`event_hash`), so `Store.verify` walks a valid chain; the reads are timed through the API.
Targets are for SQLite; on PostgreSQL the same targets are shown for comparison only.
`verify` checks the audit chain and every principle version and revision against it.
"""

# ruff: noqa: E402 - the path fix below must run before the project imports.
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder heads sys.path and `bench/store.py` would shadow the
# `store` package; put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import cProfile
import gc
import io
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from principles import (
    SYSTEM,
    Actor,
    AmendmentDraft,
    Change,
    Principle,
    default_seed,
    event_hash,
    revision_hash,
    utcnow,
    version_hash,
)
from store import Store, _engine, _queries
from store._schema import audit, constitutions, entries, revisions, versions

ALICE = Actor(kind="human", name="alice", roles=("reviewer",))
CAROL = Actor(kind="human", name="carol", roles=("admin",))
AGENT = Actor(kind="agent", name="bench-agent")
PRINCIPLE = "helpfulness"  # the principle every benchmark revises
CHUNK = 2000  # rows per bulk INSERT


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.target is None else self.value / self.target


def text_for(i: int) -> str:
    return (
        f"Work out what the user actually needs and address it directly and completely "
        f"(draft {i}). Prefer a concrete, usable answer over a vague or evasive one; ask a "
        f"short clarifying question only when the request is truly ambiguous."
    )


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm caches and the connection pool
    gc.collect()  # garbage left by building the fixtures is not the measured call's cost
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


@contextmanager
def phase(label: str) -> Iterator[None]:
    print(f"  {label} ...", end="", flush=True, file=sys.stderr)
    t = time.perf_counter()
    yield
    print(f" {time.perf_counter() - t:.1f} s", file=sys.stderr)


# -- bulk fixtures ---------------------------------------------------------------------------


def _next_time(*times: datetime) -> datetime:
    return max((utcnow(), *times)) + timedelta(milliseconds=1)


def grow_history(store: Store, principle_id: str, count: int, name: str = "default") -> None:
    """Append `count` revisions, each a new version of `principle_id`, in one transaction.

    Rows and hashes are exactly what `_writes.commit` would write for `Store.commit`
    (versions chained by `parent_hash`, revisions by their parent's hash, one
    `revision.create` audit event each); only the statements are batched.
    """

    def run(conn: Connection) -> None:
        crow = _queries.constitution_row(conn, name)
        cid, head = int(crow.id), int(crow.head)
        head_row = _queries.revision_row(conn, cid, head)
        current = {
            r.principle_id: (r.id, r.hash)
            for r in conn.execute(
                select(entries.c.principle_id, versions.c.id, versions.c.hash)
                .join(versions, versions.c.id == entries.c.version_id)
                .where(entries.c.revision_id == head_row.id)
            )
        }
        last = conn.execute(
            select(versions)
            .where(versions.c.constitution_id == cid, versions.c.principle_id == principle_id)
            .order_by(versions.c.number.desc())
            .limit(1)
        ).one()
        seq, prev_event, last_at = conn.execute(
            select(audit.c.seq, audit.c.hash, audit.c.at).order_by(audit.c.seq.desc()).limit(1)
        ).one()
        start = _next_time(head_row.created_at, last_at)

        version_rows, revision_rows, events = [], [], []
        v_number, v_hash, r_hash = last.number, last.hash, head_row.hash
        hashes = {pid: h for pid, (_, h) in current.items()}
        for k in range(count):
            number, now = head + k + 1, start + timedelta(milliseconds=k)
            v_number += 1
            fields = {
                "principle_id": principle_id,
                "number": v_number,
                "title": last.title,
                "text": text_for(v_number),
                "entrenched": last.entrenched,
                "author": SYSTEM.ref,
                "rationale": "",
                "created_at": now,
                "parent_hash": v_hash,
            }
            v_hash = version_hash(**fields)
            version_rows.append(
                {**fields, "constitution_id": cid, "revision": number, "hash": v_hash}
            )
            hashes[principle_id] = v_hash
            message = f"bench revision {number}"
            r_hash = revision_hash(
                constitution=name,
                number=number,
                entries=dict(sorted(hashes.items())),
                author=SYSTEM.ref,
                message=message,
                created_at=now,
                parent_hash=r_hash,
            )
            revision_rows.append(
                {
                    "constitution_id": cid,
                    "number": number,
                    "parent": number - 1,
                    "author": SYSTEM.ref,
                    "message": message,
                    "created_at": now,
                    "hash": r_hash,
                }
            )
            payload = {
                "revision": number,
                "parent": number - 1,
                "hash": r_hash,
                "message": message,
                "changed": [principle_id],
                "amendment": None,
            }
            seq += 1
            digest = event_hash(
                seq=seq,
                at=now,
                actor=SYSTEM.ref,
                action="revision.create",
                subject=f"constitution:{name}",
                payload=payload,
                prev_hash=prev_event,
            )
            events.append(
                {
                    "seq": seq,
                    "at": now,
                    "actor": SYSTEM.ref,
                    "action": "revision.create",
                    "subject": f"constitution:{name}",
                    "payload": payload,
                    "prev_hash": prev_event,
                    "hash": digest,
                }
            )
            prev_event = digest

        _insert(conn, versions, version_rows)
        version_ids: dict[int, int] = dict(
            conn.execute(
                select(versions.c.number, versions.c.id).where(
                    versions.c.constitution_id == cid,
                    versions.c.principle_id == principle_id,
                    versions.c.number > last.number,
                )
            ).all()
        )
        _insert(conn, revisions, revision_rows)
        revision_ids: dict[int, int] = dict(
            conn.execute(
                select(revisions.c.number, revisions.c.id).where(
                    revisions.c.constitution_id == cid, revisions.c.number > head
                )
            ).all()
        )
        others = {pid: vid for pid, (vid, _) in current.items() if pid != principle_id}
        entry_rows = [
            {"revision_id": revision_ids[head + k + 1], "principle_id": pid, "version_id": vid}
            for k in range(count)
            for pid, vid in sorted(
                {**others, principle_id: version_ids[last.number + k + 1]}.items()
            )
        ]
        _insert(conn, entries, entry_rows)
        _insert(conn, audit, events)
        conn.execute(
            update(constitutions).where(constitutions.c.id == cid).values(head=head + count)
        )

    _engine.write(store.engine, run)


def fill_audit(store: Store, total: int) -> None:
    """Append events until the chain holds `total`: label moves, which need no other rows."""

    def run(conn: Connection) -> None:
        seq, prev, last_at = conn.execute(
            select(audit.c.seq, audit.c.hash, audit.c.at).order_by(audit.c.seq.desc()).limit(1)
        ).one()
        start = _next_time(last_at)
        events = []
        for k in range(total - seq):
            at, seq = start + timedelta(microseconds=10 * k), seq + 1
            payload = {"from": seq - 1, "to": seq}
            digest = event_hash(
                seq=seq,
                at=at,
                actor=ALICE.ref,
                action="label.set",
                subject="label:default/bench",
                payload=payload,
                prev_hash=prev,
            )
            events.append(
                {
                    "seq": seq,
                    "at": at,
                    "actor": ALICE.ref,
                    "action": "label.set",
                    "subject": "label:default/bench",
                    "payload": payload,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        _insert(conn, audit, events)

    _engine.write(store.engine, run)


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        conn.execute(insert(table), rows[i : i + CHUNK])


# -- the benchmark ---------------------------------------------------------------------------


def bench(store: Store, args: argparse.Namespace) -> tuple[list[Figure], dict[str, Any]]:
    figures: list[Figure] = []
    info: dict[str, Any] = {}
    rng = random.Random(args.seed)
    store.init(default_seed())
    title = store.constitution().get(PRINCIPLE)
    assert title is not None

    with phase(f"append {args.appends} versions via Store.commit"):
        times = []
        for i in range(args.appends):
            change = Change(
                principle_id=PRINCIPLE,
                principle=Principle(id=PRINCIPLE, title=title.title, text=text_for(i)),
            )
            t = time.perf_counter()
            store.commit([change], SYSTEM, f"append {i}")
            times.append((time.perf_counter() - t) * 1000)
    figures.append(Figure("append a version p50", pct(times, 50), "ms", 2.0))
    figures.append(Figure("append a version p99", pct(times, 99), "ms"))

    with phase(f"{args.cycles} propose -> approve -> apply cycles"):
        cycle: list[float] = []
        steps: dict[str, list[float]] = {"propose": [], "approve": [], "apply": []}
        for i in range(args.cycles):
            draft = AmendmentDraft(op="revise", principle_id=PRINCIPLE, text=text_for(-i - 1))
            t0 = time.perf_counter()
            amendment = store.propose(draft, AGENT)
            t1 = time.perf_counter()
            store.decide(amendment.id, ALICE, "approve")
            t2 = time.perf_counter()
            store.apply(amendment.id, CAROL)
            t3 = time.perf_counter()
            cycle.append((t3 - t0) * 1000)
            for step, (a, b) in zip(steps, ((t0, t1), (t1, t2), (t2, t3)), strict=True):
                steps[step].append((b - a) * 1000)
    figures.append(Figure("propose->approve->apply p50", pct(cycle, 50), "ms"))
    figures.append(Figure("propose->approve->apply p99", pct(cycle, 99), "ms"))
    info["cycle steps p50 (ms)"] = ", ".join(f"{k} {pct(v, 50):.2f}" for k, v in steps.items())

    head = store.constitution().revision
    grow = max(0, args.versions - head)
    with phase(f"bulk: {grow} more revisions of {PRINCIPLE!r}"):
        grow_history(store, PRINCIPLE, grow)
    with phase(f"bulk: audit events up to {args.events}"):
        fill_audit(store, args.events)

    n_versions = len(store.version_log(PRINCIPLE))  # keep no result alive while timing
    head = store.constitution().revision
    info["revisions"] = head
    info[f"versions of {PRINCIPLE}"] = n_versions
    ms = median_ms(lambda: store.version_log(PRINCIPLE), args.runs)
    figures.append(Figure(f"history listing ({n_versions:,} versions)", ms, "ms", 50.0))
    ms = median_ms(lambda: store.history(PRINCIPLE), args.runs)
    figures.append(Figure(f"history with texts ({n_versions:,})", ms, "ms"))

    picks = [rng.randint(1, head) for _ in range(args.runs)]
    snap = store.constitution(at=picks[0])
    assert snap.revision == picks[0]
    it = iter(picks * 2)
    ms = median_ms(lambda: store.constitution(at=next(it)), args.runs)
    figures.append(Figure(f"constitution at=N (of {head:,})", ms, "ms", 50.0))

    moments = [store.revision(n).created_at + timedelta(microseconds=1) for n in picks]
    assert store.constitution(as_of=moments[0]).revision == picks[0]
    it_t = iter(moments * 2)
    ms = median_ms(lambda: store.constitution(as_of=next(it_t)), args.runs)
    figures.append(Figure(f"constitution as_of=t (of {head:,})", ms, "ms", 50.0))

    with phase("verify"):
        report = store.verify()
        assert report.ok, report.reason
        info["audit events"] = report.events
        info["verified too"] = f"{report.versions:,} versions, {report.revisions:,} revisions"
        times = []
        for _ in range(args.verify_runs):
            t = time.perf_counter()
            store.verify()
            times.append(time.perf_counter() - t)
    figures.append(Figure(f"verify ({report.events:,} events)", statistics.median(times), "s", 2.0))

    if args.profile:
        info["profiles"] = {
            "append": profile(lambda: _append_many(store, title.title, 200)),
            "history": profile(lambda: store.history(PRINCIPLE)),
            "as_of": profile(lambda: store.constitution(as_of=moments[0])),
            "verify": profile(store.verify),
        }
    return figures, info


def _append_many(store: Store, title: str, n: int) -> None:
    for i in range(n):
        p = Principle(id=PRINCIPLE, title=title, text=text_for(10**6 + i))
        store.commit([Change(principle_id=PRINCIPLE, principle=p)], SYSTEM, "profiled")


def profile(fn: Callable[[], object]) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(14)
    return out.getvalue()


def render(figures: list[Figure], info: dict[str, Any], dialect: str) -> str:
    note = "" if dialect == "sqlite" else " (targets are for SQLite; shown for comparison)"
    lines = [
        f"database: {dialect}{note}",
        *(
            f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}"
            for k, v in info.items()
            if k != "profiles"
        ),
        "",
        f"{'figure':<38} {'value':>10}  {'target':>9}  {'ratio':>6}  result",
        "-" * 78,
    ]
    for f in figures:
        target = f"< {f.target:g} {f.unit}" if f.target is not None else "-"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        verdict = "-" if f.ratio is None else ("PASS" if f.ratio < 1 else "MISS")
        value = f"{f.value:.3f} {f.unit}" if f.unit == "s" else f"{f.value:.2f} {f.unit}"
        lines.append(f"{f.name:<38} {value:>10}  {target:>9}  {ratio:>6}  {verdict}")
    for name, text in info.get("profiles", {}).items():
        lines += ["", f"== cProfile: {name} ==", text.rstrip()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="database URL or SQLite path (default: a temp SQLite file)")
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--versions", type=int, default=10_000, help="revisions (and versions)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=21, help="timed runs per read figure")
    parser.add_argument("--verify-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="add cProfile summaries")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="charter-bench-") as tmp:
        url = args.db or str(Path(tmp) / "bench.db")
        with Store(url) as store:
            if store.constitutions() or store.anchor().seq:
                print("the bench needs an empty database: this one has data", file=sys.stderr)
                return 2
            figures, info = bench(store, args)
            print(render(figures, info, store.dialect))
    missed = [f.name for f in figures if f.ratio is not None and f.ratio >= 1]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
