"""One process executes a run at a time: a resume claims the run's lease atomically."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from principles import (
    LEASE_TTL,
    Conflict,
    NewOutput,
    RunConfig,
    RunLease,
    Task,
    default_seed,
    utcnow,
)
from store import Store
from tests.conftest import AGENT

HERE = socket.gethostname()


def lease(pid: int, host: str = HERE) -> RunLease:
    return RunLease(token=uuid.uuid4().hex, host=host, pid=pid, since=utcnow())


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def new_run(store: Store) -> int:
    tasks = [(Task(id="a", prompt="x"), "train"), (Task(id="b", prompt="y"), "heldout")]
    return store.create_run(RunConfig(), tasks, AGENT).id


def test_a_second_resume_while_the_first_process_lives_is_refused_and_changes_nothing(
    store: Store,
) -> None:
    run_id = new_run(store)
    first = lease(pid=1)  # init: alive on every Linux machine
    store.resume_run(run_id, AGENT, first)
    before = (store.run(run_id), len(store.audit_log(limit=None)))
    with pytest.raises(Conflict) as refused:
        store.resume_run(run_id, AGENT, lease(pid=2_000_000_000))
    assert str(refused.value) == (
        f"run {run_id} is already being resumed (by pid 1 on {HERE} since "
        f"{first.since:%Y-%m-%d %H:%M:%S} UTC)"
    )
    assert (store.run(run_id), len(store.audit_log(limit=None))) == before


def test_a_run_whose_process_died_can_be_resumed_at_once(store: Store) -> None:
    run_id = new_run(store)
    store.resume_run(run_id, AGENT, lease(pid=dead_pid()))
    mine = lease(pid=1)
    assert store.resume_run(run_id, AGENT, mine).lease == mine


def test_a_lease_held_on_another_machine_expires_when_its_heartbeat_goes_quiet(
    store: Store,
) -> None:
    run_id = new_run(store)
    store.resume_run(run_id, AGENT, lease(pid=dead_pid(), host="elsewhere"))
    with pytest.raises(Conflict, match=r"already being resumed .* on elsewhere"):
        store.resume_run(run_id, AGENT, lease(pid=1))
    with store.engine.begin() as conn:
        quiet = utcnow() - LEASE_TTL - timedelta(minutes=1)
        conn.execute(sa.text("UPDATE runs SET updated_at = :t"), {"t": quiet})
    assert store.resume_run(run_id, AGENT, lease(pid=1)).lease is not None


def test_finishing_a_run_releases_its_lease(store: Store) -> None:
    run_id = new_run(store)
    held = lease(pid=1)
    store.resume_run(run_id, AGENT, held)
    assert store.finish_run(run_id, "stopped", "enough", AGENT, lease=held).lease is None
    resumed = store.resume_run(run_id, AGENT, lease(pid=1))
    assert resumed.status == "running" and resumed.lease is not None


def test_of_many_concurrent_claims_exactly_one_wins(db_url: str) -> None:
    with Store(db_url) as setup:
        setup.init(default_seed())
        run_id = new_run(setup)
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def claim() -> None:
        with Store(db_url) as store:
            start.wait(timeout=30)
            try:
                store.resume_run(run_id, AGENT, lease(pid=1))
                outcomes.append("won")
            except Conflict:
                outcomes.append("refused")

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["refused"] * 5 + ["won"]


def backdate_heartbeat(store: Store, run_id: int) -> None:
    """Make the run's heartbeat older than LEASE_TTL, as if its process had gone quiet."""
    with store.engine.begin() as conn:
        quiet = utcnow() - LEASE_TTL - timedelta(minutes=1)
        conn.execute(
            sa.text("UPDATE runs SET updated_at = :t WHERE id = :r"), {"t": quiet, "r": run_id}
        )


def taken_over(store: Store, run_id: int) -> tuple[RunLease, RunLease]:
    """A run claimed from another machine, whose heartbeat went quiet and which this machine
    then took over: (the old lease, the new one)."""
    old, new = lease(pid=1, host="elsewhere"), lease(pid=1)
    store.resume_run(run_id, AGENT, old)
    backdate_heartbeat(store, run_id)
    store.resume_run(run_id, AGENT, new)
    return old, new


def answer(text: str = "an answer") -> list[NewOutput]:
    return [NewOutput(key="o", task_id="a", purpose="answer", revision=1, text=text)]


def test_a_process_whose_lease_was_taken_over_can_neither_record_a_step_nor_finish_the_run(
    store: Store,
) -> None:
    run_id = new_run(store)
    old, new = taken_over(store, run_id)
    before = (store.run(run_id), store.outputs(run_id), len(store.audit_log(limit=None)))
    message = rf"^run {run_id} was taken over by pid 1 on {HERE} since .* UTC: this process stops$"
    with pytest.raises(Conflict, match=message):
        store.record_step(run_id, 1, "answer", AGENT, outputs_=answer(), lease=old)
    with pytest.raises(Conflict, match=message):
        store.finish_run(run_id, "failed", "the model went away", AGENT, lease=old)
    assert (store.run(run_id), store.outputs(run_id), len(store.audit_log(limit=None))) == before
    store.record_step(run_id, 1, "answer", AGENT, outputs_=answer(), lease=new)
    assert store.finish_run(run_id, "completed", "", AGENT, lease=new).steps_done == (
        (1, "answer"),
    )


def test_a_step_recorded_without_the_lease_of_a_leased_run_is_refused(store: Store) -> None:
    run_id = new_run(store)
    holder = lease(pid=1)
    store.resume_run(run_id, AGENT, holder)
    with pytest.raises(Conflict, match=rf"run {run_id} is being executed by pid 1 on {HERE}"):
        store.record_step(run_id, 1, "answer", AGENT, outputs_=answer())
    with pytest.raises(Conflict, match=rf"run {run_id} is being executed by pid 1 on {HERE}"):
        store.finish_run(run_id, "stopped", "enough", AGENT)
    assert store.outputs(run_id) == [] and store.run(run_id).lease == holder


def test_renewing_a_lease_keeps_another_machine_from_taking_it_over(store: Store) -> None:
    run_id = new_run(store)
    held = lease(pid=1, host="elsewhere")
    store.resume_run(run_id, AGENT, held)
    backdate_heartbeat(store, run_id)
    store.renew_lease(run_id, held)
    assert utcnow() - store.run(run_id).updated_at < timedelta(minutes=1)
    with pytest.raises(Conflict, match=r"already being resumed .* on elsewhere"):
        store.resume_run(run_id, AGENT, lease(pid=1))
    assert store.run(run_id).lease == held


def test_a_lease_that_was_taken_over_cannot_be_renewed(store: Store) -> None:
    run_id = new_run(store)
    old, new = taken_over(store, run_id)
    before = store.run(run_id)
    with pytest.raises(Conflict, match=rf"run {run_id} was taken over by pid 1 on {HERE}"):
        store.renew_lease(run_id, old)
    assert store.run(run_id) == before and before.lease == new
