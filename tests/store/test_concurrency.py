"""Concurrent writers: nothing is lost, no lock error reaches a caller, races end cleanly.

Writes are serialised by the store's write lock (SQLite `BEGIN IMMEDIATE` + busy timeout,
PostgreSQL advisory lock), and each one re-reads the state it checks under that lock. So a
concurrent run must end exactly as *some* serial order of the same calls would: one of two
applies on the same principle goes stale, applies on different principles both land (the
later one rebased), and of two reviewers deciding at once exactly one decision counts.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from principles import (
    SYSTEM,
    Actor,
    Amendment,
    AmendmentDraft,
    Change,
    Conflict,
    Decision,
    Policy,
    Principle,
    Revision,
    StaleAmendment,
    default_seed,
)
from store import ReviewOutcome, Store
from tests.conftest import AGENT, ALICE, BOB, CAROL

WORKERS = 4
PER_WORKER = 200
REJECT_EVERY = 10  # each worker rejects its 10th, 20th, ... amendment and applies the rest


# -- many processes on one SQLite file -------------------------------------------------------


def _text(worker: int, step: int) -> str:
    return f"Worker {worker} wrote step {step} of its own principle."


def _worker(url: str, worker: int, count: int, start: Any, results: Any) -> None:
    """Propose, review and apply `count` amendments to this worker's own principle.

    Reports `(amendment id, outcome, applied revision, text)` per amendment, or the
    traceback of the first exception (which the test turns into a failure).
    """
    try:
        proposer = Actor(kind="agent", name=f"worker-{worker}")
        done: list[tuple[int, str, int | None, str]] = []
        with Store(url) as store:
            start.wait(timeout=60)
            for step in range(count):
                text = _text(worker, step)
                draft = AmendmentDraft(op="revise", principle_id=f"worker-{worker}", text=text)
                amendment = store.propose(draft, proposer)
                reviewer = ALICE if step % 2 else BOB
                if (step + 1) % REJECT_EVERY == 0:
                    store.decide(amendment.id, reviewer, "reject", "not this one")
                    done.append((amendment.id, "rejected", None, text))
                    continue
                store.decide(amendment.id, reviewer, "approve")
                revision = store.apply(amendment.id, CAROL)
                done.append((amendment.id, "applied", revision.number, text))
        results.put((worker, done, None))
    except BaseException:
        results.put((worker, [], traceback.format_exc()))


@pytest.mark.slow  # 12-21 s on 2 cores, depending on load
def test_processes_writing_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    with Store(url) as store:
        store.init(default_seed())
        store.commit(
            [
                Change(
                    principle_id=f"worker-{w}",
                    principle=Principle(id=f"worker-{w}", title=f"Worker {w}", text="Unwritten."),
                )
                for w in range(WORKERS)
            ],
            SYSTEM,
            "one principle per worker",
        )
        base_head = store.constitution().revision
        base_events = store.verify().events

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, w, PER_WORKER, start, results))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    reports: dict[int, list[tuple[int, str, int | None, str]]] = {}
    errors: list[str] = []
    try:
        for _ in procs:
            worker, done, error = results.get(timeout=240)
            reports[worker] = done
            if error:
                errors.append(f"worker {worker}:\n{error}")
    except queue.Empty:
        errors.append("a worker neither finished nor failed within 240 s")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert not errors, "\n".join(errors)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    rejected_per_worker = PER_WORKER // REJECT_EVERY
    applied_per_worker = PER_WORKER - rejected_per_worker
    with Store(url) as store:
        amendments = {a.id: a for a in store.amendments()}
        assert len(amendments) == WORKERS * PER_WORKER
        claimed = [aid for done in reports.values() for aid, *_ in done]
        assert sorted(claimed) == sorted(amendments)

        applied_revisions: list[int] = []
        for w, done in reports.items():
            assert len(done) == PER_WORKER
            for aid, outcome, number, text in done:
                a = amendments[aid]
                assert a.proposer == f"agent:worker-{w}"
                assert a.draft.principle_id == f"worker-{w}"
                assert a.draft.text == text
                assert a.status == outcome
                assert a.applied_revision == number
                assert [r.decision for r in a.reviews] == [
                    "reject" if outcome == "rejected" else "approve"
                ]
                if number is not None:
                    applied_revisions.append(number)
            assert Counter(o for _, o, _, _ in done) == {
                "applied": applied_per_worker,
                "rejected": rejected_per_worker,
            }
            # Each worker's principle holds exactly its applied texts, in its own order.
            history = store.history(f"worker-{w}")
            assert [v.text for v in history[1:]] == [t for _, o, _, t in done if o == "applied"]
            assert [v.amendment_id for v in history[1:]] == [
                aid for aid, o, _, _ in done if o == "applied"
            ]

        applied_total = WORKERS * applied_per_worker
        head = store.constitution()
        assert head.revision == base_head + applied_total
        assert sorted(applied_revisions) == list(range(base_head + 1, head.revision + 1))
        revisions = store.revisions()
        assert len(revisions) == head.revision
        assert [r.number for r in revisions] == list(range(head.revision, 0, -1))
        assert all(r.parent == r.number - 1 for r in revisions if r.number > 1)
        by_number = {r.number: r for r in revisions}
        for a in amendments.values():
            if a.applied_revision is not None:
                assert by_number[a.applied_revision].amendment_id == a.id
        for w, done in reports.items():
            last_text = [t for _, o, _, t in done if o == "applied"][-1]
            current = head.get(f"worker-{w}")
            assert current is not None and current.text == last_text

        # propose, review, approved, revision, applied / propose, review, rejected
        expected_events = base_events + WORKERS * (5 * applied_per_worker + 3 * rejected_per_worker)
        report = store.verify()
        assert report.ok, report.reason
        assert report.events == expected_events
        actions = Counter(e.action for e in store.audit_log(after=base_events))
        assert actions == {
            "amendment.propose": WORKERS * PER_WORKER,
            "review.approve": applied_total,
            "amendment.approved": applied_total,
            "revision.create": applied_total,
            "amendment.applied": applied_total,
            "review.reject": WORKERS * rejected_per_worker,
            "amendment.rejected": WORKERS * rejected_per_worker,
        }


# -- two callers racing ----------------------------------------------------------------------


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            outcomes[i] = calls[i]()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racing call hung"
    return outcomes


@pytest.fixture
def pair(db_url: str) -> Iterator[tuple[Store, Store]]:
    """Two independent stores (own engines and connections) on one database at revision 1."""
    first = Store(db_url)
    first.init(default_seed())
    second = Store(db_url)
    yield first, second
    first.close()
    second.close()


def approved(store: Store, principle_id: str, text: str) -> Amendment:
    draft = AmendmentDraft(op="revise", principle_id=principle_id, text=text)
    amendment = store.propose(draft, AGENT)
    return store.decide(amendment.id, ALICE, "approve").amendment


ROUNDS = 3


def test_applies_on_the_same_principle_one_lands_one_goes_stale(
    pair: tuple[Store, Store],
) -> None:
    one, two = pair
    for n in range(ROUNDS):
        head = one.constitution().revision
        a = approved(one, "helpfulness", f"Help, take {n}a.")
        b = approved(one, "helpfulness", f"Help, take {n}b.")
        outcomes = race(partial(one.apply, a.id, CAROL), partial(two.apply, b.id, CAROL))

        landed = [o for o in outcomes if isinstance(o, Revision)]
        stale = [o for o in outcomes if isinstance(o, StaleAmendment)]
        assert len(landed) == 1 and len(stale) == 1, outcomes
        winner, loser = (a, b) if isinstance(outcomes[0], Revision) else (b, a)
        assert landed[0].number == head + 1
        assert landed[0].amendment_id == winner.id
        assert stale[0].amendment_id == loser.id
        assert (stale[0].base, stale[0].head, stale[0].principles) == (
            head,
            head + 1,
            ["helpfulness"],
        )
        assert one.amendment(winner.id).status == "applied"
        lost = one.amendment(loser.id)
        assert lost.status == "stale" and lost.applied_revision is None
        now = one.constitution()
        assert now.revision == head + 1
        assert (p := now.get("helpfulness")) is not None and p.text == winner.draft.text
    assert one.verify().ok


def test_applies_on_different_principles_both_land(pair: tuple[Store, Store]) -> None:
    one, two = pair
    for n in range(ROUNDS):
        head = one.constitution().revision
        a = approved(one, "helpfulness", f"Help, take {n}.")
        b = approved(one, "privacy", f"Guard privacy, take {n}.")
        outcomes = race(partial(one.apply, a.id, CAROL), partial(two.apply, b.id, CAROL))

        assert all(isinstance(o, Revision) for o in outcomes), outcomes
        assert sorted(o.number for o in outcomes) == [head + 1, head + 2]
        first, second = (a, b) if outcomes[0].number == head + 1 else (b, a)
        assert one.amendment(first.id).base_revision == head
        rebased = one.amendment(second.id)
        assert rebased.status == "applied"
        assert rebased.base_revision == head + 1  # rebased onto the other's revision
        assert rebased.applied_revision == head + 2
        now = one.constitution()
        assert now.revision == head + 2
        assert (p := now.get("helpfulness")) is not None and p.text == a.draft.text
        assert (q := now.get("privacy")) is not None and q.text == b.draft.text
    assert one.verify().ok


DECISIONS: list[tuple[Decision, Decision]] = [
    ("approve", "approve"),
    ("approve", "reject"),
    ("reject", "reject"),
]


@pytest.mark.parametrize("decisions", DECISIONS, ids=["-".join(d) for d in DECISIONS])
def test_reviewers_deciding_at_once_one_decision_wins(
    pair: tuple[Store, Store], decisions: tuple[Decision, Decision]
) -> None:
    """Of two deciding reviews (quorum 1), exactly one counts; the other is a Conflict."""
    one, two = pair
    status = {"approve": "approved", "reject": "rejected"}
    for n in range(ROUNDS):
        draft = AmendmentDraft(op="revise", principle_id="helpfulness", text=f"Help {n}.")
        amendment = one.propose(draft, AGENT)
        calls = [
            partial(store.decide, amendment.id, reviewer, decision, "my call")
            for store, reviewer, decision in zip((one, two), (ALICE, BOB), decisions, strict=True)
        ]
        outcomes = race(*calls)

        won = [i for i, o in enumerate(outcomes) if isinstance(o, ReviewOutcome)]
        lost = [i for i, o in enumerate(outcomes) if isinstance(o, Conflict)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        after = one.amendment(amendment.id)
        assert after.status == status[decisions[won[0]]]
        winner = (ALICE, BOB)[won[0]]
        assert [(r.reviewer, r.decision) for r in after.reviews] == [
            (winner.ref, decisions[won[0]])
        ]
        events = one.audit_log(subject=f"amendment:{amendment.id}")
        assert [e.action for e in events] == [
            "amendment.propose",
            f"review.{decisions[won[0]]}",
            f"amendment.{status[decisions[won[0]]]}",
        ]
    assert one.verify().ok


def test_a_decision_on_a_decided_amendment_is_a_conflict(store: Store) -> None:
    """The serial order of the race above: whoever comes second finds it decided."""
    seconds: tuple[Decision, ...] = ("approve", "reject")
    for second in seconds:
        draft = AmendmentDraft(op="revise", principle_id="helpfulness", text=f"Help ({second}).")
        amendment = store.propose(draft, AGENT)
        assert store.decide(amendment.id, ALICE, "approve").amendment.status == "approved"
        with pytest.raises(Conflict):
            store.decide(amendment.id, BOB, second, "me too")
        after = store.amendment(amendment.id)
        assert after.status == "approved"
        assert [r.reviewer for r in after.reviews] == [ALICE.ref]
        store.apply(amendment.id, CAROL)


def test_concurrent_approvals_under_quorum_two_both_count(db_url: str) -> None:
    """With quorum 2 neither approval decides alone: both count, and it is approved once."""
    policy = Policy(quorum=2)
    with Store(db_url, policy=policy) as one, Store(db_url, policy=policy) as two:
        one.init(default_seed())
        draft = AmendmentDraft(op="revise", principle_id="helpfulness", text="Help twice.")
        amendment = one.propose(draft, AGENT)
        outcomes = race(
            partial(one.decide, amendment.id, ALICE, "approve"),
            partial(two.decide, amendment.id, BOB, "approve"),
        )
        assert all(isinstance(o, ReviewOutcome) for o in outcomes), outcomes
        after = one.amendment(amendment.id)
        assert after.status == "approved"
        assert sorted(r.reviewer for r in after.current_approvals) == [ALICE.ref, BOB.ref]
        actions = [e.action for e in one.audit_log(subject=f"amendment:{amendment.id}")]
        assert actions.count("amendment.approved") == 1
        assert one.verify().ok
