"""A hypothesis state machine drives the Store through random governance histories.

After every step: history is append-only (every version, revision and audit event seen
before is still there, unchanged), the head is the last applied revision, every label
points to an existing revision, and the audit chain verifies. Failed actions change nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from principles import Actor, AmendmentDraft, CharterError, StaleAmendment, default_seed
from store import Store
from tests.conftest import reset_pg

PEOPLE = [Actor(kind="human", name=n) for n in ("ann", "ben", "cat")]
AGENT = Actor(kind="agent", name="agent")
ACTORS = [*PEOPLE, AGENT]
LABELS = ["production", "staging"]
OUTCOMES: Counter[str] = Counter()  # what the runs exercised, checked after each run
words = st.text(alphabet="abcdefgh \n", min_size=1, max_size=40).filter(lambda s: s.strip() != "")


class StoreMachine(RuleBasedStateMachine):
    url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.store = Store(self.make_url())
        self.store.init(default_seed())
        self.head = 1
        self.seen_events: list[str] = []
        self.seen_revisions: list[str] = []
        self.seen_versions: set[tuple[str, int, str]] = set()
        self.amendment_ids: list[int] = []

    def make_url(self) -> str:
        raise TypeError("each database's machine says where its database is")

    def teardown(self) -> None:
        self.store.close()

    def _events(self) -> int:
        return len(self.store.audit_log())

    def _guard(self, action: object) -> None:
        """Run an action; an error must leave no trace but its record (a stale mark, a refused
        review's audit event)."""
        before = self._events()
        try:
            result = action() if callable(action) else None
        except StaleAmendment:
            assert self._events() == before + 1
            event("stale")
            OUTCOMES["stale"] += 1
            return
        except CharterError as exc:
            # Only a refused review leaves a trace: its `review.refused` event.
            added = [e.action for e in self.store.audit_log(after=before)]
            assert added in ([], ["review.refused"]), added
            event(f"refused: {type(exc).__name__}")
            OUTCOMES["refused"] += 1
            return
        event(f"done: {type(result).__name__}")
        OUTCOMES[type(result).__name__] += 1
        if result is not None and hasattr(result, "number") and hasattr(result, "entries"):
            self.head = result.number

    @rule(
        pid=st.sampled_from([p.id for p in default_seed().principles] + ["new-one"]),
        text=words,
        who=st.sampled_from(ACTORS),
        op=st.sampled_from(["revise", "add", "retire"]),
    )
    def propose(self, pid: str, text: str, who: Actor, op: str) -> None:
        def act() -> None:
            draft = AmendmentDraft.model_validate(
                {"op": op, "principle_id": pid}
                | ({"text": text} if op != "retire" else {})
                | ({"title": "New"} if op == "add" else {})
            )
            self.amendment_ids.append(self.store.propose(draft, who).id)

        self._guard(act)

    @precondition(lambda self: self.amendment_ids)
    @rule(
        data=st.data(),
        who=st.sampled_from(ACTORS),
        decision=st.sampled_from(["approve", "reject", "comment"]),
    )
    def review(self, data: st.DataObject, who: Actor, decision: str) -> None:
        aid = data.draw(st.sampled_from(self.amendment_ids))
        self._guard(lambda: self.store.decide(aid, who, decision, "because").amendment)  # type: ignore[arg-type]

    @precondition(lambda self: self.amendment_ids)
    @rule(data=st.data(), who=st.sampled_from(ACTORS), autonomous=st.booleans())
    def apply(self, data: st.DataObject, who: Actor, autonomous: bool) -> None:
        aid = data.draw(st.sampled_from(self.amendment_ids))
        self._guard(lambda: self.store.apply(aid, who, autonomous=autonomous))

    @rule(data=st.data(), who=st.sampled_from(ACTORS))
    def revert(self, data: st.DataObject, who: Actor) -> None:
        to = data.draw(st.integers(1, self.head + 1))
        self._guard(lambda: self.store.revert(to, who))

    @rule(data=st.data(), label=st.sampled_from(LABELS), who=st.sampled_from(ACTORS))
    def move_label(self, data: st.DataObject, label: str, who: Actor) -> None:
        to = data.draw(st.integers(1, self.head + 1))
        self._guard(lambda: self.store.set_label(label, to, who))

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = Store(self.store.url)

    @invariant()
    def history_is_append_only(self) -> None:
        events = [e.hash for e in self.store.audit_log()]
        assert events[: len(self.seen_events)] == self.seen_events
        self.seen_events = events
        revisions = [r.hash for r in reversed(self.store.revisions())]
        assert revisions[: len(self.seen_revisions)] == self.seen_revisions
        self.seen_revisions = revisions
        versions = {
            (v.principle_id, v.number, v.hash)
            for pid in {p for p, *_ in self.seen_versions} | set(self.store.constitution().entries)
            for v in self.store.history(pid)
        }
        assert self.seen_versions <= versions
        self.seen_versions = versions

    @invariant()
    def head_is_the_last_applied_revision(self) -> None:
        c = self.store.constitution()
        assert c.revision == self.head == self.store.revisions(limit=1)[0].number
        applied = [a.applied_revision for a in self.store.amendments() if a.status == "applied"]
        assert len(applied) == len(set(applied))
        assert all(r is not None and r <= self.head for r in applied)

    @invariant()
    def labels_point_to_revisions(self) -> None:
        for label in self.store.labels():
            assert 1 <= label.revision <= self.head
            assert self.store.revision(label.name).number == label.revision

    @invariant()
    def audit_chain_verifies(self) -> None:
        assert self.store.verify().ok


class SQLiteMachine(StoreMachine):
    def make_url(self) -> str:
        self.tmp = tempfile.mkdtemp()
        return f"sqlite:///{self.tmp}/charter.db"

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.tmp, ignore_errors=True)


def test_store_invariants_on_sqlite() -> None:
    OUTCOMES.clear()
    run_state_machine_as_test(
        SQLiteMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            database=None,
            derandomize=True,  # the same sequences every run: no flaky coverage check
        ),
    )
    # The runs must have reached the interesting states, not only refusals.
    assert OUTCOMES["Revision"] > 0 and OUTCOMES["Label"] > 0 and OUTCOMES["refused"] > 0
    assert OUTCOMES["NoneType"] > 0, OUTCOMES  # successful proposals


def test_store_invariants_on_postgresql(pg_database: str) -> None:
    class PostgresMachine(StoreMachine):
        def make_url(self) -> str:
            reset_pg(pg_database)
            return pg_database

    run_state_machine_as_test(
        PostgresMachine,
        settings=settings(max_examples=10, stateful_step_count=20, deadline=None, database=None),
    )
