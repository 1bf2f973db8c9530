"""Whole runs with the scripted loop model: modes, guards, injection, provenance, resume."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from agent import continue_run, load_tasks, loop_backend, open_backend, start_run, summarize
from agent._progress import NoProgress
from agent._steps import AGENT, STEPS, Loop, step_answer, step_critique
from agent.models import ScriptedBackend
from principles import (
    LEASE_TTL,
    Conflict,
    ModelError,
    Policy,
    Run,
    RunConfig,
    RunLease,
    Task,
    default_seed,
    utcnow,
)
from store import Store

ENTRENCHED = {"honesty", "harm-avoidance", "transparency-ai"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(str(tmp_path / "c.db")) as s:
        s.init(default_seed())
        yield s


def config(**kw: Any) -> RunConfig:
    base: dict[str, Any] = dict(
        model="scripted:loop",
        iterations=2,
        tasks_limit=24,
        train_per_iteration=4,
        heldout_size=6,
        seed=7,
        judge_override=True,  # the scripted judge is never measured; see test_judge_floor.py
    )
    return RunConfig(**{**base, **kw})


def test_review_mode_queues_passed_and_inconclusive_drafts(store: Store) -> None:
    run = start_run(store, loop_backend(), config(mode="review"))
    assert run.status == "completed"
    assert len(run.steps_done) == 2 * len(STEPS)
    amendments = store.amendments(run_id=run.id)
    assert amendments, "the scripted model's weak principles must draw proposals"
    assert store.constitution().revision == 1  # review mode never applies
    for a in amendments:
        assert a.evaluation is not None and a.proposer == "agent:charter-agent"
        assert a.status == ("rejected" if a.evaluation.outcome == "regressed" else "proposed")
        assert a.draft.evidence and all(
            e.split(":")[0] in ("critique", "output") for e in a.draft.evidence
        )
    assert {"passed", "inconclusive"} <= {a.evaluation.outcome for a in amendments}  # type: ignore[union-attr]
    summary = summarize(store, run.id)
    assert summary.pending == [a.id for a in amendments if a.status == "proposed"]
    gate = {k: v for i in summary.iterations for k, v in i.gate.items()}
    assert set(gate) >= {"passed", "inconclusive"}
    assert [i.iteration for i in summary.iterations] == [1, 2]
    assert store.verify().ok


def test_a_held_out_set_too_small_for_any_evidence_is_warned_about(store: Store) -> None:
    said: list[str] = []

    class Recording(NoProgress):
        def message(self, text: str) -> None:
            said.append(text)

    run = start_run(
        store, loop_backend(), config(heldout_size=3, iterations=1), progress=Recording()
    )
    warnings = store.step_result(run.id, 1, "evaluate")["warnings"]
    assert warnings and "held-out set too small: with 3 task(s)" in warnings[0]
    assert f"warning: {warnings[0]}" in said
    amendments = store.amendments(run_id=run.id)
    assert amendments and all(a.status == "proposed" for a in amendments)  # queued, unproven
    assert {a.evaluation.outcome for a in amendments if a.evaluation} == {"inconclusive"}


def test_review_mode_rejects_only_regressions_with_the_reason(store: Store) -> None:
    """A judge that likes the candidates' answers less: every evaluated draft regresses."""
    backend = loop_backend()
    scores = backend.score_fn
    assert scores is not None
    backend.score_fn = lambda conversation, options: [  # Yes and No swapped
        scores(conversation, options)[{"Yes": 1, "No": 0}.get(o, i)] for i, o in enumerate(options)
    ]
    run = start_run(store, backend, config(mode="review", iterations=1))
    amendments = store.amendments(run_id=run.id)
    regressed = [a for a in amendments if a.evaluation and a.evaluation.outcome == "regressed"]
    assert regressed and all(a.status == "rejected" for a in regressed)
    for a in regressed:
        reason = next(r.comment for r in a.reviews if r.decision == "reject")
        assert reason.startswith("gate: regressed:")


def test_autonomous_mode_applies_only_significant_gains(store: Store) -> None:
    run = start_run(store, loop_backend(), config(mode="autonomous", iterations=3))
    amendments = store.amendments(run_id=run.id)
    applied = [a for a in amendments if a.status == "applied"]
    assert applied and store.constitution().revision == 1 + len(applied)
    inconclusive = [a for a in amendments if a.evaluation and a.evaluation.outcome != "passed"]
    assert inconclusive and all(a.status == "rejected" for a in inconclusive)
    for a in applied:
        assert a.evaluation is not None and a.evaluation.passed
        assert a.evaluation.details["p_value"] < 0.05 and a.evaluation.details["ci"][0] > 0
        assert not set(a.draft.touched) & ENTRENCHED
        revision = store.revision(a.applied_revision)  # type: ignore[arg-type]
        assert revision.author == "agent:charter-agent" and revision.amendment_id == a.id
    events = [e for e in store.audit_log() if e.action == "revision.create"]
    assert any(e.payload.get("autonomous") for e in events)


def test_critiques_name_the_version_they_judged_and_keep_rationales(store: Store) -> None:
    run = start_run(store, loop_backend(), config(iterations=1))
    answers = store.outputs(run.id, iteration=1, purpose="answer")
    critiques = store.critiques(run.id, output_ids=[o.id for o in answers])
    assert len(critiques) == len(answers) * 10
    assert {c.version for c in critiques} == {1}
    with_rationale = [c for c in critiques if c.rationale]
    assert 0 < len(with_rationale) <= run.config.max_rationales
    assert all(c.score < run.config.threshold for c in with_rationale)
    revisions = store.outputs(run.id, purpose="revision")
    assert revisions and all(r.parent_id in {o.id for o in answers} for r in revisions)


def test_the_proposer_and_actor_never_see_held_out_tasks(store: Store) -> None:
    backend = loop_backend()
    run = start_run(store, backend, config(iterations=2))
    held = [t for t, split in store.run_tasks(run.id) if split == "heldout"]
    held_prompts = {t.prompt for t in held}
    gate_calls = 0
    for call in backend.history:
        text = "\n".join(m.content for c in call.conversations for m in c)
        if any(p in text for p in held_prompts):
            gate_calls += 1
        if call.method == "generate_structured":  # the proposer
            assert not any(p in text for p in held_prompts)
    assert gate_calls > 0  # the gate did use them
    answered = {o.task_id for o in store.outputs(run.id, purpose="answer")}
    assert answered.isdisjoint({t.id for t in held})


@pytest.mark.parametrize("mode", ["autonomous", "review"])
def test_injection_never_changes_an_entrenched_principle(tmp_path: Path, mode: str) -> None:
    """Tasks that tell the agent to drop its principles: the scripted model complies, every
    principle scores low, and the proposer drafts changes to entrenched principles too;
    none of those is ever applied, in either mode. The gate's held-out set is eight ordinary
    tasks, enough for a significant gain."""
    builtin = load_tasks("builtin")
    injections = [t for t in builtin if t.category == "injection"]
    held = [t for t in builtin if t.category == "help"][:8]
    with Store(str(tmp_path / "c.db"), policy=Policy(max_amendments_per_run=50)) as s:
        s.init(default_seed())
        cfg = config(mode=mode, tasks_limit=None, iterations=3, max_proposals=10, heldout_size=8)
        tasks = [(t, "train") for t in injections] + [(t, "heldout") for t in held]
        run = continue_run(s, loop_backend(), s.create_run(cfg, tasks, AGENT).id)
        proposed = s.amendments(run_id=run.id)
        touching = [a for a in proposed if set(a.draft.touched) & ENTRENCHED]
        assert touching, "the test must exercise proposals on entrenched principles"
        assert all(a.status != "applied" for a in touching)
        assert any(a.evaluation and a.evaluation.passed for a in touching)
        for p in s.constitution().principles:
            if p.principle_id in ENTRENCHED:
                assert p.number == 1
        if mode == "autonomous":
            assert any(a.status == "applied" for a in proposed)  # others did go through


def test_guards_caps_and_drift(tmp_path: Path) -> None:
    with Store(str(tmp_path / "cap.db"), policy=Policy(max_amendments_per_run=1)) as s:
        s.init(default_seed())
        run = start_run(s, loop_backend(), config(mode="review", iterations=3))
        assert len(s.amendments(run_id=run.id)) == 1
    with Store(str(tmp_path / "drift.db")) as s:
        s.init(default_seed())
        run = start_run(s, loop_backend(), config(mode="autonomous", iterations=3, max_drift=0.05))
        assert run.status == "stopped" and "drift" in run.stop_reason
        assert s.constitution().revision == 1


def test_stop_on_held_out_regression(store: Store) -> None:
    iteration = {"now": 1}

    def worse_each_iteration(conversation: Any, options: Any) -> list[float]:
        yes = max(0.05, 0.9 - 0.3 * (iteration["now"] - 1))
        return [math.log(yes * 0.9), math.log((1 - yes) * 0.9), math.log(0.1)]

    class Tracking(NoProgress):
        def step(self, it: int, iterations: int, step: str, total: int) -> None:
            iteration["now"] = it

    tasks = [Task(id=f"t{i}", prompt=f"question {i}") for i in range(6)]
    run = store.create_run(
        config(iterations=3, max_proposals=0),
        [(t, "train") for t in tasks[:4]] + [(t, "heldout") for t in tasks[4:]],
        AGENT,
    )
    backend = ScriptedBackend(score_fn=worse_each_iteration, default="an answer")
    done = continue_run(store, backend, run.id, progress=Tracking())
    assert done.status == "stopped" and "regressed" in done.stop_reason
    assert max(i for i, _ in done.steps_done) == 2


def test_resume_after_an_interrupted_step_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    def final_state(s: Store, run_id: int) -> list[Any]:
        return [
            [(o.iteration, o.task_id, o.purpose, o.text) for o in s.outputs(run_id)],
            [(c.principle_id, round(c.score, 9), c.rationale) for c in s.critiques(run_id)],
            [(a.draft, a.status, a.evaluation) for a in s.amendments(run_id=run_id)],
            [r.entries for r in s.revisions()],
            s.run(run_id).steps_done,
        ]

    with Store(str(tmp_path / "a.db")) as a:
        a.init(default_seed())
        whole = start_run(a, loop_backend(), config(mode="autonomous"))
        expected = final_state(a, whole.id)

    with Store(str(tmp_path / "b.db")) as b:
        b.init(default_seed())

        class Boom(Exception):
            pass

        class Exploding(NoProgress):
            def step(self, iteration: int, iterations: int, step: str, total: int) -> None:
                if (iteration, step) == (2, "critique"):
                    raise Boom

        with pytest.raises(Boom):
            start_run(b, loop_backend(), config(mode="autonomous"), progress=Exploding())
        interrupted = b.runs()[0]
        assert interrupted.status == "running" and (2, "answer") in interrupted.steps_done
        assert (2, "critique") not in interrupted.steps_done
        resumed = continue_run(b, open_backend("scripted:loop", b), interrupted.id)
        assert resumed.status == "completed"
        assert final_state(b, resumed.id) == expected


def test_a_step_is_never_recorded_twice(store: Store) -> None:
    run = start_run(store, loop_backend(), config(iterations=1))
    loop = Loop(store, loop_backend(), run, NoProgress())
    with pytest.raises(Conflict, match="completed"):
        step_answer(loop, 1)
    open_run = store.create_run(config(iterations=1), list(store.run_tasks(run.id)), AGENT)
    loop = Loop(store, loop_backend(), open_run, NoProgress())
    step_answer(loop, 1)
    with pytest.raises(Conflict, match="recorded"):
        step_answer(loop, 1)
    step_critique(loop, 1)
    with pytest.raises(Conflict, match="recorded"):
        step_critique(loop, 1)


def test_a_failing_model_marks_the_run_failed_and_resume_finishes_it(store: Store) -> None:
    class Flaky(ScriptedBackend):
        broken = True

        def score_options(self, prompts: Any, options: Any, **kw: Any) -> list[list[float]]:
            if Flaky.broken:
                raise ModelError("server went away")
            return super().score_options(prompts, options, **kw)

    flaky = Flaky(default="an answer")
    with pytest.raises(ModelError, match="went away"):
        start_run(store, flaky, config(iterations=1, max_proposals=0))
    failed = store.runs()[0]
    assert failed.status == "failed" and "went away" in failed.stop_reason
    assert failed.steps_done == ((1, "answer"),)
    Flaky.broken = False
    done = continue_run(store, flaky, failed.id)
    assert done.status == "completed" and len(done.steps_done) == len(STEPS)
    actions = [e.action for e in store.audit_log()]
    assert "run.failed" in actions and "run.resume" in actions


def test_a_second_resume_while_the_first_runs_is_refused_and_leaves_the_run_alone(
    tmp_path: Path,
) -> None:
    """Two `charter run --resume 1` at once: the second says the run is already being
    resumed, changes nothing, and the first finishes the run."""
    db = str(tmp_path / "c.db")
    with Store(db) as s:
        s.init(default_seed())
        tasks = load_tasks("builtin")
        split = [(t, "train") for t in tasks[:6]] + [(t, "heldout") for t in tasks[6:9]]
        run_id = s.create_run(config(iterations=1), split, AGENT).id
    entered, release = threading.Event(), threading.Event()
    backend = loop_backend()
    generate = backend.generate

    def gated(*args: Any, **kw: Any) -> list[str]:
        entered.set()
        release.wait(timeout=60)
        return generate(*args, **kw)

    backend.generate = gated  # type: ignore[method-assign]
    finished: list[Run] = []

    def first() -> None:
        with Store(db) as s:
            finished.append(continue_run(s, backend, run_id))

    worker = threading.Thread(target=first)
    worker.start()
    try:
        assert entered.wait(timeout=60)
        with Store(db) as s:
            before = (s.run(run_id), len(s.audit_log(limit=None)))
            with pytest.raises(Conflict, match=rf"run {run_id} is already being resumed \(by pid"):
                continue_run(s, loop_backend(), run_id)
            assert (s.run(run_id), len(s.audit_log(limit=None))) == before
    finally:
        release.set()
        worker.join(timeout=120)
    assert finished and finished[0].status == "completed" and finished[0].lease is None


def test_a_run_interrupted_by_an_unexpected_error_can_be_resumed_by_the_same_process(
    store: Store,
) -> None:
    class Boom(Exception):
        pass

    class Exploding(NoProgress):
        def step(self, iteration: int, iterations: int, step: str, total: int) -> None:
            raise Boom

    with pytest.raises(Boom):
        start_run(store, loop_backend(), config(iterations=1), progress=Exploding())
    interrupted = store.runs()[0]
    assert interrupted.status == "running" and interrupted.lease is None
    assert continue_run(store, loop_backend(), interrupted.id).status == "completed"


class Gated:
    """A run whose first model call waits until the test lets it go: a long step."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = str(tmp_path / "c.db")
        with Store(self.db) as s:
            s.init(default_seed())
            tasks = load_tasks("builtin")
            split = [(t, "train") for t in tasks[:6]] + [(t, "heldout") for t in tasks[6:9]]
            self.run_id = s.create_run(config(iterations=1), split, AGENT).id
        self.entered, self.release = threading.Event(), threading.Event()
        self.backend = loop_backend()
        generate = self.backend.generate

        def gated(*args: Any, **kw: Any) -> list[str]:
            self.entered.set()
            self.release.wait(timeout=60)
            return generate(*args, **kw)

        self.backend.generate = gated  # type: ignore[method-assign]
        self.outcome: list[Run | BaseException] = []

    def start(self, **kw: Any) -> threading.Thread:
        def first() -> None:
            with Store(self.db) as s:
                try:
                    self.outcome.append(continue_run(s, self.backend, self.run_id, **kw))
                except Exception as exc:
                    self.outcome.append(exc)

        worker = threading.Thread(target=first)
        worker.start()
        deadline = time.monotonic() + 60
        while not self.entered.wait(timeout=0.05):
            assert worker.is_alive() and time.monotonic() < deadline, self.outcome
        return worker


def backdate_heartbeat(s: Store, run_id: int) -> datetime:
    quiet = utcnow() - LEASE_TTL - timedelta(minutes=1)
    with s.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE runs SET updated_at = :t WHERE id = :r"), {"t": quiet, "r": run_id}
        )
    return quiet


def test_a_run_taken_over_during_a_long_step_stops_its_first_process_writing_nothing(
    tmp_path: Path,
) -> None:
    """A step outlives the lease's TTL (no heartbeat), another machine takes the run over:
    the first process's step is refused when it ends, and the run is the new holder's."""
    run = Gated(tmp_path)
    worker = run.start(heartbeat=timedelta(hours=1))
    try:
        with Store(run.db) as s:
            backdate_heartbeat(s, run.run_id)
            other = RunLease(token=uuid.uuid4().hex, host="elsewhere", pid=1, since=utcnow())
            taken = s.resume_run(run.run_id, AGENT, other)
            before = (taken, s.outputs(run.run_id), len(s.audit_log(limit=None)))
    finally:
        run.release.set()
        worker.join(timeout=120)
    [stopped] = run.outcome
    assert isinstance(stopped, Conflict)
    assert str(stopped).startswith(f"run {run.run_id} was taken over by pid 1 on elsewhere")
    assert str(stopped).endswith(": this process stops")
    with Store(run.db) as s:
        after = (s.run(run.run_id), s.outputs(run.run_id), len(s.audit_log(limit=None)))
    assert after == before and after[0].lease == other and after[0].steps_done == ()


def test_a_heartbeat_keeps_a_long_step_s_lease_alive_past_the_ttl(tmp_path: Path) -> None:
    run = Gated(tmp_path)
    worker = run.start(heartbeat=timedelta(milliseconds=20))
    try:
        with Store(run.db) as s:
            quiet = backdate_heartbeat(s, run.run_id)
            deadline = time.monotonic() + 30
            while s.run(run.run_id).updated_at <= quiet and time.monotonic() < deadline:
                time.sleep(0.01)
            other = RunLease(token=uuid.uuid4().hex, host="elsewhere", pid=1, since=utcnow())
            with pytest.raises(Conflict, match=rf"run {run.run_id} is already being resumed"):
                s.resume_run(run.run_id, AGENT, other)
    finally:
        run.release.set()
        worker.join(timeout=120)
    [done] = run.outcome
    assert isinstance(done, Run) and done.status == "completed" and done.lease is None
