"""The refinement loop: durable, resumable iterations of seven steps (agent/_steps.py).

answer -> critique -> revise -> aggregate -> propose -> evaluate -> decide

Each step records everything it produced together with its completion mark in one
transaction, so a run killed at any point resumes at the first step without a mark; with a
deterministic backend (or the LM-call cache) it ends in the same state as a run never
interrupted. One process drives a run at a time: `continue_run` claims the run's lease,
keeps it alive with a heartbeat (agent/_heartbeat.py) and records every step under it; if
another process takes the run over all the same, this one stops with `LeaseLost` at its next
write, having written nothing beside the new holder.
"""

from __future__ import annotations

import contextlib
import random
from datetime import timedelta
from typing import Any

from agent._calibration import Calibrator
from agent._heartbeat import Heartbeat
from agent._judge import calibration_in_force, judge_model_id
from agent._progress import NoProgress, Progress
from agent._steps import AGENT, STEP_FUNCTIONS, Loop, stop_reason
from agent._tasks import load_tasks
from agent._traced import traced
from agent._tracing import NoTracer, Tracer, run_attributes, step_attributes
from agent.models import Backend
from principles import (
    LEASE_HEARTBEAT,
    STEPS,
    CharterError,
    InvalidInput,
    LeaseLost,
    PolicyViolation,
    Run,
    RunConfig,
    RunLease,
    RunStatus,
    split_tasks,
)
from store import Store, this_process


def start_run(
    store: Store,
    backend: Backend,
    config: RunConfig,
    *,
    constitution: str = "default",
    progress: Progress | None = None,
    tracer: Tracer | None = None,
) -> Run:
    """Create a run (tasks split into train and held-out) and run it to its end, traced on
    `tracer` (nothing is traced without one)."""
    require_principles(store, constitution)
    tasks = load_tasks(config.tasks)
    if config.tasks_limit is not None and len(tasks) > config.tasks_limit:
        rng = random.Random(config.seed)
        tasks = sorted(rng.sample(tasks, config.tasks_limit), key=lambda t: t.id)
    train, held = split_tasks(tasks, config.seed, config.heldout_fraction)
    if not train or not held:
        raise InvalidInput("a run needs at least two tasks (one to train on, one held out)")
    standing = judge_standing(store, backend, config)
    run = store.create_run(
        config,
        [(t, "train") for t in train] + [(t, "heldout") for t in held],
        AGENT,
        constitution,
        model_info={**backend.info().model_dump(mode="json"), "judge": standing},
    )
    return continue_run(store, backend, run.id, progress=progress, tracer=tracer)


def require_principles(store: Store, constitution: str) -> None:
    """A run refines principles, so it needs some: a constitution started empty gets them
    drafted and approved first."""
    if not store.constitution(constitution).principles:
        raise InvalidInput(
            f"constitution {constitution!r} has no principles yet: draft them (charter draft "
            "--purpose TEXT), approve and apply them, then run"
        )


def judge_standing(store: Store, backend: Backend, config: RunConfig) -> dict[str, Any]:
    """The judge a run starts with: its calibration (pinned for the whole run) and latest
    measurement. Autonomous mode needs a judge measured at or above `config.judge_floor`
    (overall AUC on labels); without one it refuses, unless `config.judge_override`, which
    the run's config (and so its audit event) records."""
    calibration = calibration_in_force(store, judge_model_id(backend))
    cid = calibration.id if calibration is not None else None
    measured = store.latest_judge_evaluation(judge_model_id(backend), cid)
    standing: dict[str, Any] = {
        "model": judge_model_id(backend),
        "calibration_id": cid,
        "evaluation_id": measured.id if measured is not None else None,
        "auc": measured.auc if measured is not None else None,
        "floor": config.judge_floor,
    }
    if config.mode != "autonomous":
        return standing
    if measured is None or measured.auc is None:
        problem = "has never been measured against labels"
    elif measured.auc < config.judge_floor:
        problem = f"measured AUC {measured.auc:.3f} is below the floor {config.judge_floor:.2f}"
    else:
        return standing
    standing["override"] = config.judge_override
    if not config.judge_override:
        what = f"judge {standing['model']}" + (f" with calibration {cid}" if cid else "")
        raise PolicyViolation(
            f"autonomous mode refused: {what} {problem} (measure it with charter judge eval "
            "--labels FILE, or pass --override-judge-floor to run anyway, on the record)"
        )
    return standing


def _pinned(store: Store, run: Run) -> Calibrator | None:
    """The calibration the run started with, so a resumed run judges as it began."""
    cid = run.model_info.get("judge", {}).get("calibration_id")
    return Calibrator(store.calibration(cid)) if cid is not None else None


def continue_run(
    store: Store,
    backend: Backend,
    run_id: int,
    *,
    progress: Progress | None = None,
    tracer: Tracer | None = None,
    heartbeat: timedelta = LEASE_HEARTBEAT,
) -> Run:
    """Run (or resume) every step not yet recorded, then close the run.

    The run is claimed first: while another live process executes it, this raises
    `Conflict` and changes nothing. The claim's heartbeat is renewed every `heartbeat`
    while the steps run. If the run is taken over nonetheless, the next write raises
    `LeaseLost` and nothing more is written; otherwise, however this ends, the claim is
    given up.
    With a `tracer`, the run is a `charter.run` span (ERROR if it fails) with a
    `charter.iteration` child per iteration that has steps left, a `charter.step.<name>`
    child per step it executes, and the model calls under the steps (agent/_traced.py).
    """
    tracer = tracer or NoTracer()
    lease = this_process()
    run = store.resume_run(run_id, AGENT, lease)
    with (
        Heartbeat(store, run_id, lease, heartbeat),
        tracer.span("charter.run", run_attributes(run)) as span,
    ):
        loop = Loop(
            store,
            traced(backend, tracer),
            run,
            progress or NoProgress(),
            calibrator=_pinned(store, run),
            tracer=tracer,
            lease=lease,
        )
        done = _drive(loop, lease)
        span.set({"charter.run.status": done.status})
        return done


def _drive(loop: Loop, lease: RunLease) -> Run:
    """`continue_run`'s body: the iterations, then the run's end, whichever it is."""
    store, run, run_id = loop.store, loop.run, loop.run.id
    try:
        for iteration in range(1, run.config.iterations + 1):
            left = [name for name in STEPS if not loop.run.done(iteration, name)]
            traced_iteration = loop.tracer.span(
                "charter.iteration", {"charter.iteration": iteration}
            )
            with traced_iteration if left else contextlib.nullcontext():
                for name in left:
                    with loop.tracer.span(f"charter.step.{name}", {"charter.step": name}) as step:
                        STEP_FUNCTIONS[name](loop, iteration)
                        if loop.tracer.enabled:
                            step.set(step_attributes(store.step_result(run_id, iteration, name)))
                    loop.run = store.run(run_id)
            reason = stop_reason(loop, iteration)
            if reason:
                return store.finish_run(run_id, "stopped", reason, AGENT, lease=lease)
    except LeaseLost:
        raise  # the run is another process's now: leave it to that one
    except (CharterError, KeyboardInterrupt) as exc:
        # A model that failed or a person who pressed Ctrl-C: the run says so and stays
        # resumable (`charter run --resume`); a killed process leaves it "running".
        status: RunStatus = "stopped" if isinstance(exc, KeyboardInterrupt) else "failed"
        with contextlib.suppress(LeaseLost):
            store.finish_run(run_id, status, str(exc) or "interrupted", AGENT, lease=lease)
        raise
    except BaseException:
        # A bug: the run stays `running` (resumable, like a killed one) and unclaimed.
        with contextlib.suppress(CharterError):
            store.release_run(run_id, lease)
        raise
    return store.finish_run(run_id, "completed", "", AGENT, lease=lease)
