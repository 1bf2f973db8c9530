"""CLI: `charter draft --preferences FILE` drafts principles from preference data and
proposes them as amendments (nothing is applied); `charter draft eval` measures how well a
constitution explains preferences."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from charter._output import emit_json, say, table, with_ci
from charter._settings import settings_of
from principles import AmendmentDraft, InvalidInput

if TYPE_CHECKING:
    from agent._icai import Candidate, Drafted
    from agent._preferences import Reconstruction

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
    preferences: PrefsOpt = None,
    most: Annotated[int, typer.Option("--max", min=1, max=10, help="principles at most")] = 3,
    samples: Annotated[
        int, typer.Option("--samples", min=1, max=64, help="training pairs asked for a principle")
    ] = 8,
    model: Annotated[str, typer.Option("--model", help="the backend URI")] = "default",
    seed: Annotated[int, typer.Option("--seed", help="the drafting seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Draft principles that explain people's preferences (Inverse Constitutional AI) and
    propose the ones that help as `add` amendments, with their figures, for review."""
    if ctx.invoked_subcommand is not None:
        return
    if preferences is None:
        raise InvalidInput("give --preferences FILE (or a subcommand: charter draft eval)")
    from agent import open_backend
    from agent._icai import draft_from_preferences
    from agent._preferences import load_preferences
    from agent._proposer import duplicates
    from agent._steps import AGENT
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
        proposed = []
        pending = store.amendments(s.constitution, status="proposed")
        for c in found.kept:
            draft = _amendment(found, c)
            if (dup := duplicates(draft, pending)) is not None:
                found.failed.append(f"{c.principle.id}: duplicates amendment {dup.id}")
                continue
            proposed.append(store.propose(draft, AGENT, s.constitution))
    report = _report(found, [a.id for a in proposed])
    if as_json:
        emit_json(report)
        return
    table(
        f"{len(found.candidates)} candidate principles from {found.train_n} training pairs "
        f"(the bar: {found.baseline_train.accuracy:.2f} reconstructed by the head, or by a "
        "placebo principle when it is empty)",
        ["id", "proposed by", "train accuracy", "kept"],
        [
            (c["id"], c["support"], f"{c['train']['accuracy']:.2f}", "yes" if c["kept"] else "")
            for c in report["candidates"]
        ],
    )
    if found.heldout_before and found.heldout_after:
        say(
            f"held-out ({found.heldout_n} pairs): {found.heldout_before.accuracy:.2f} -> "
            f"{found.heldout_after.accuracy:.2f} with the kept principles"
        )
    say(
        f"proposed {len(proposed)} amendment(s) for review: "
        + (", ".join(f"#{a.id}" for a in proposed) or "none")
    )


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


def _report(found: Drafted, proposed: list[int]) -> dict[str, Any]:
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
            }
            for c in found.candidates
        ],
        "heldout_before": figures(found.heldout_before),
        "heldout_after": figures(found.heldout_after),
        "proposed": proposed,
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
