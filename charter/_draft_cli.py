"""CLI: `charter draft eval`: how well a constitution explains people's preferences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from charter._output import emit_json, say, table
from charter._settings import settings_of

draft_app = typer.Typer(
    help="The agent's own constitution: measure how well one explains preferences.",
    no_args_is_help=True,
)


def _fmt(figures: dict[str, Any]) -> tuple[str, ...]:
    low, high = figures["accuracy_ci"]
    return (
        str(figures["n"]),
        f"{figures['accuracy']:.3f} [{low:.2f}, {high:.2f}]",
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
