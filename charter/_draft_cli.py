"""CLI: `charter draft --purpose TEXT` drafts principles from a purpose and
`charter draft --preferences FILE` from preference data, and both propose them as amendments
(nothing is applied); `charter draft eval` measures how well a constitution explains
preferences."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from charter._output import SaidProgress, emit_json, say, table, with_ci
from charter._settings import settings_of
from principles import AmendmentDraft, Evaluation, InvalidInput

if TYPE_CHECKING:
    from agent._icai import Candidate, Drafted
    from agent._preferences import Reconstruction
    from agent._purpose import PurposeCandidate, PurposeDrafted
    from store import Store

draft_app = typer.Typer(
    help="The agent drafts principles of its own, for people to review.",
    no_args_is_help=True,
    invoke_without_command=True,
)
PrefsOpt = Annotated[
    Path | None,
    typer.Option("--preferences", help='a JSONL of {"prompt", "chosen", "rejected"} pairs'),
]


@draft_app.callback()
def draft(
    ctx: typer.Context,
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="what the assistant is for, in a sentence or two"),
    ] = None,
    tasks: Annotated[
        str, typer.Option("--tasks", help="with --purpose: a task JSONL, or builtin")
    ] = "builtin",
    preferences: PrefsOpt = None,
    most: Annotated[int, typer.Option("--max", min=1, max=10, help="principles at most")] = 3,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples",
            min=1,
            max=64,
            help="answers drafted from (with --purpose; 4) or training pairs (8)",
        ),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="the backend URI")] = "default",
    seed: Annotated[int, typer.Option("--seed", help="the drafting seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Draft principles and propose them as `add` amendments, with their figures, for
    people to review: from a purpose (the agent answers sample tasks, critiques its answers
    against the purpose, drafts principles and measures each on held-out tasks), or from
    preference pairs (Inverse Constitutional AI). Nothing is applied."""
    if ctx.invoked_subcommand is not None:
        return
    if (purpose is None) == (preferences is None):
        raise InvalidInput(
            "give --purpose TEXT or --preferences FILE (or a subcommand: charter draft eval)"
        )
    if purpose is not None:
        _from_purpose(ctx, purpose, tasks, most, samples or 4, model, seed, as_json)
    else:
        assert preferences is not None
        _from_preferences(ctx, preferences, most, samples or 8, model, seed, as_json)


def _from_purpose(
    ctx: typer.Context,
    purpose: str,
    tasks: str,
    most: int,
    samples: int,
    model: str,
    seed: int,
    as_json: bool,
) -> None:
    from agent import open_backend
    from agent._judge import calibrator_for
    from agent._purpose import draft_from_purpose, state_purpose
    from agent._tasks import load_tasks

    state_purpose(purpose)  # a bad purpose is refused before the model loads
    task_list = load_tasks(tasks)
    s = settings_of(ctx)
    with s.open() as store:
        head = store.constitution(s.constitution)
        existing = [p.as_principle() for p in head.principles]
        say(f"loading model {model} ...")
        backend = open_backend(model, store)
        found = draft_from_purpose(
            backend,
            purpose,
            task_list,
            existing,
            max_principles=most,
            samples=samples,
            seed=seed,
            calibrator=calibrator_for(store, backend),
            progress=SaidProgress(),
        )
        drafts = [(c.principle.id, _purpose_amendment(found, c), c.evaluation) for c in found.kept]
        proposed = _propose_all(store, s.constitution, drafts, found.failed)
    report = _purpose_report(found, proposed)
    if as_json:
        emit_json(report)
        return
    table(
        f"{len(found.candidates)} candidate principles from the {len(found.shortfalls)} of "
        f"{found.answered} answers that served the purpose least (mean purpose score "
        f"{found.mean_score:.2f}); measured on {found.heldout} held-out tasks",
        ["id", "proposed by", "purpose score", "effect [95% CI]", "outcome", "amendment"],
        [
            (
                c["id"],
                str(c["support"]),
                f"{c['before']:.2f} -> {c['after']:.2f}",
                with_ci(c["effect"], c["ci"], signed=True),
                c["outcome"],
                _proposal(c),
            )
            for c in report["candidates"]
        ],
    )
    for line in found.failed:
        say(f"set aside: {line}")
    _say_proposed(proposed)


def _propose_all(
    store: Store,
    name: str,
    drafts: Sequence[tuple[str, AmendmentDraft, Evaluation | None]],
    failed: list[str],
) -> dict[str, int]:
    """Propose each (principle id, draft, evaluation) as the agent, unless an open amendment
    already proposes the same (noted in `failed`); an evaluation is recorded with it.
    Returns the amendment numbers by principle id."""
    from agent._proposer import duplicates
    from agent._steps import AGENT

    proposed: dict[str, int] = {}
    pending = store.amendments(name, status="proposed")
    for pid, draft, evaluation in drafts:
        if (dup := duplicates(draft, pending)) is not None:
            failed.append(f"{pid}: duplicates amendment {dup.id}")
            continue
        made = store.propose(draft, AGENT, name)
        if evaluation is not None:
            made = store.record_evaluation(made.id, evaluation, AGENT)
        proposed[pid] = made.id
    return proposed


def _proposal(candidate: dict[str, Any]) -> str:
    """A candidate's amendment as a table shows it: its number, or why there is none."""
    if candidate["amendment"] is not None:
        return f"#{candidate['amendment']}"
    return "a duplicate" if candidate["kept"] else ""


def _say_proposed(proposed: dict[str, int]) -> None:
    say(
        f"proposed {len(proposed)} amendment(s) for review: "
        + (", ".join(f"#{n}" for n in proposed.values()) or "none")
    )


def _purpose_amendment(found: PurposeDrafted, c: PurposeCandidate) -> AmendmentDraft:
    e, d = c.evaluation, c.evaluation.details
    low, high = d["ci"]
    scores = {s.task.id: s.score for s in found.shortfalls}
    asked = ", ".join(f"{t} ({scores[t]:.2f})" for t in c.sources)
    return AmendmentDraft(
        op="add",
        principle_id=c.principle.id,
        title=c.principle.title,
        text=c.principle.text,
        rationale=(
            "Drafted from the assistant's purpose: the critic judged the agent's answers to "
            "sample tasks against it, and this principle was drafted from those that served "
            "it least. Held-out answers under the constitution with it were judged against "
            f"the purpose: {e.outcome}."
        ),
        evidence=(
            f"purpose: {found.purpose.text}",
            f"drafted from the answers to {asked} (purpose scores; the mean over "
            f"{found.answered} answers was {found.mean_score:.2f}); {c.support} of "
            f"{len(found.shortfalls)} drafts proposed it (near-duplicates merged)",
            f"held-out ({d['n']} tasks): purpose score {e.before:.2f} -> {e.after:.2f}, effect "
            f"{d['effect']:+.3f} [{low:+.3f}, {high:+.3f}], p = {d['p_value']:.3f}: {e.outcome}",
        ),
    )


def _purpose_report(found: PurposeDrafted, proposed: dict[str, int]) -> dict[str, Any]:
    kept = {c.principle.id for c in found.kept}
    return {
        "purpose": found.purpose.text,
        "answered": found.answered,
        "heldout": found.heldout,
        "mean_purpose_score": round(found.mean_score, 6),
        "shortfalls": [
            {"task": s.task.id, "score": round(s.score, 6), "critique": s.critique}
            for s in found.shortfalls
        ],
        "candidates": [
            {
                "id": c.principle.id,
                "title": c.principle.title,
                "text": c.principle.text,
                "support": c.support,
                "sources": list(c.sources),
                "before": c.evaluation.before,
                "after": c.evaluation.after,
                "effect": c.effect,
                "ci": c.evaluation.details["ci"],
                "p_value": c.evaluation.details["p_value"],
                "outcome": c.evaluation.outcome,
                "kept": c.principle.id in kept,
                "amendment": proposed.get(c.principle.id),
            }
            for c in found.candidates
        ],
        "proposed": list(proposed.values()),
        "rejected_drafts": len(found.rejected),
        "failed": found.failed,
    }


def _from_preferences(
    ctx: typer.Context,
    preferences: Path,
    most: int,
    samples: int,
    model: str,
    seed: int,
    as_json: bool,
) -> None:
    from agent import open_backend
    from agent._icai import draft_from_preferences
    from agent._preferences import load_preferences
    from agent.models import GenerationParams

    pairs = load_preferences(preferences)
    s = settings_of(ctx)
    with s.open() as store:
        head = store.constitution(s.constitution)
        existing = [p.as_principle() for p in head.principles]
        say(f"loading model {model} ...")
        backend = open_backend(model, store)
        found = draft_from_preferences(
            backend,
            pairs,
            existing,
            max_principles=most,
            samples=samples,
            params=GenerationParams(max_new_tokens=160, seed=seed),
        )
        drafts = [(c.principle.id, _amendment(found, c), None) for c in found.kept]
        proposed = _propose_all(store, s.constitution, drafts, found.failed)
    report = _report(found, proposed)
    if as_json:
        emit_json(report)
        return
    table(
        f"{len(found.candidates)} candidate principles from {found.train_n} training pairs "
        f"(the bar: {found.baseline_train.accuracy:.2f} reconstructed by the head, or by a "
        "placebo principle when it is empty)",
        ["id", "proposed by", "train accuracy", "amendment"],
        [
            (c["id"], c["support"], f"{c['train']['accuracy']:.2f}", _proposal(c))
            for c in report["candidates"]
        ],
    )
    if found.heldout_before and found.heldout_after:
        say(
            f"held-out ({found.heldout_n} pairs): {found.heldout_before.accuracy:.2f} -> "
            f"{found.heldout_after.accuracy:.2f} with the kept principles"
        )
    for line in found.failed:
        say(f"set aside: {line}")
    _say_proposed(proposed)


def _amendment(found: Drafted, c: Candidate) -> AmendmentDraft:
    train, base = c.train, found.baseline_train
    low, high = train.accuracy_ci
    evidence = [
        f"training pairs: {train.accuracy:.2f} [{low:.2f}, {high:.2f}] of {found.train_n} "
        f"reconstructed with it, {base.accuracy:.2f} by the head alone (a placebo principle "
        "when the head is empty)",
        f"proposed by {c.support} of the sampled training pairs (near-duplicates merged)",
    ]
    if found.heldout_before and found.heldout_after:
        evidence.append(
            f"held-out pairs (all kept principles together): {found.heldout_before.accuracy:.2f}"
            f" -> {found.heldout_after.accuracy:.2f} of {found.heldout_n}"
        )
    return AmendmentDraft(
        op="add",
        principle_id=c.principle.id,
        title=c.principle.title,
        text=c.principle.text,
        rationale="Drafted from preference data (Inverse Constitutional AI): with this "
        "principle the judge prefers what people preferred more often than without it.",
        evidence=tuple(evidence),
    )


def _report(found: Drafted, proposed: dict[str, int]) -> dict[str, Any]:
    kept = {c.principle.id for c in found.kept}

    def figures(r: Reconstruction | None) -> dict[str, Any] | None:
        return r.as_json() if r is not None else None

    return {
        "train_n": found.train_n,
        "heldout_n": found.heldout_n,
        "baseline_train": figures(found.baseline_train),
        "candidates": [
            {
                "id": c.principle.id,
                "title": c.principle.title,
                "text": c.principle.text,
                "support": c.support,
                "train": figures(c.train),
                "kept": c.principle.id in kept,
                "amendment": proposed.get(c.principle.id),
            }
            for c in found.candidates
        ],
        "heldout_before": figures(found.heldout_before),
        "heldout_after": figures(found.heldout_after),
        "proposed": list(proposed.values()),
        "rejected_drafts": len(found.rejected),
        "failed": found.failed,
    }


def _fmt(figures: dict[str, Any]) -> tuple[str, ...]:
    return (
        str(figures["n"]),
        with_ci(figures["accuracy"], figures["accuracy_ci"]),
        f"{figures['mean_p_chosen']:.3f}",
        f"{figures['position_bias']:+.3f}",
    )


@draft_app.command("eval")
def draft_eval(
    ctx: typer.Context,
    preferences: Annotated[
        Path,
        typer.Option("--preferences", help='a JSONL of {"prompt", "chosen", "rejected"} pairs'),
    ],
    constitution: Annotated[
        str,
        typer.Option("--constitution", help="the revision to measure: a number, a label or head"),
    ] = "head",
    model: Annotated[str, typer.Option("--model", help="the judge's backend URI")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """How often the judge, given the constitution, prefers `chosen` over `rejected` (both
    orders), against no constitution at all; with bootstrap 95% CIs."""
    from agent import open_backend
    from agent._preferences import load_preferences, reconstruct

    pairs = load_preferences(preferences)
    s = settings_of(ctx)
    with s.open() as store:
        revision = store.constitution(s.constitution, at=constitution)
        principles = [p.as_principle() for p in revision.principles]
        say(f"loading model {model} ...")
        backend = open_backend(model, store)
        rows = {
            "none": reconstruct(backend, [], pairs),
            f"revision {revision.revision}": reconstruct(backend, principles, pairs),
        }
    report = {name: r.as_json() for name, r in rows.items()}
    if as_json:
        emit_json({"model": backend.uri, "preferences": str(preferences), "constitutions": report})
        return
    table(
        f"preferences reconstructed by {backend.uri} ({len(pairs)} pairs, both orders)",
        ["constitution", "n", "accuracy [95% CI]", "mean P(chosen)", "position bias"],
        [(name, *_fmt(figures)) for name, figures in report.items()],
    )
