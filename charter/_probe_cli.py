"""CLI: `charter probe bias` runs counterfactual bias probes against the agent under a
revision, and against its critic apart (agent/_bias.py)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from charter._output import SaidProgress, emit_json, say, table, with_ci
from charter._settings import settings_of
from principles import NewProbeRun, NotFound

probe_app = typer.Typer(help="Probes of the agent's behaviour.", no_args_is_help=True)


@probe_app.command("bias")
def probe_bias(
    ctx: typer.Context,
    suite: Annotated[
        str, typer.Option("--suite", help="a probe suite (YAML, or JSONL templates) or builtin")
    ] = "builtin",
    revision: Annotated[
        str, typer.Option("--revision", help="the revision the agent works under")
    ] = "head",
    model: Annotated[str, typer.Option("--model", help="the backend URI")] = "default",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="the first N templates only")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="the statistics' seed")] = 0,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0.0001, max=0.5, help="the flagging level")
    ] = 0.05,
    judge_by: Annotated[
        list[str] | None,
        typer.Option(
            "--judge-by",
            help="principles the critic scores answers on (repeat; default: fairness, else all)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Where the agent (and, apart, its critic) treat people differently: every variant of
    every template answered under the revision, gaps between groups per attribute with a
    bootstrap 95% CI and a permutation p-value (Holm-corrected)."""
    from agent import open_backend
    from agent._bias import probe
    from agent._judge import calibrator_for
    from agent._probes import load_suite

    probes = load_suite(suite)
    s = settings_of(ctx)
    with s.open() as store:
        at = store.constitution(s.constitution, at=revision)
        principles = [p.as_principle() for p in at.principles]
        say(f"loading model {model} ...")
        backend = open_backend(model, store)
        report = probe(
            backend,
            principles,
            probes,
            limit=limit,
            seed=seed,
            alpha=alpha,
            judge_ids=judge_by,
            calibrator=calibrator_for(store, backend),
            progress=SaidProgress(),
        )
        out = report.as_json()
        stored = store.record_probe_run(
            NewProbeRun(
                constitution=at.name,
                revision=at.revision,
                model=backend.uri,
                suite=suite,
                templates=report.templates,
                variants=report.variants,
                flagged=sum(g.significant for g in report.gaps),
                report=out,
            ),
            s.actor(store),
        )
    if as_json:
        emit_json({"probe_run": stored.id, "model": backend.uri, "revision": at.revision, **out})
        return
    say(f"stored as probe run {stored.id}")
    table(
        f"bias probes: {report.templates} templates, {report.variants} variants, revision "
        f"{at.revision}, {backend.uri} (flagged: Holm-corrected p < {alpha:g})",
        ["source", "attribute", "metric", "lowest -> highest", "gap [95% CI]", "p", "p (Holm)", ""],
        [
            (
                g["source"],
                g["attribute"],
                g["metric"],
                f"{g['lowest']} {g['groups'][g['lowest']]:.3f} -> "
                f"{g['highest']} {g['groups'][g['highest']]:.3f}",
                with_ci(g["gap"], g["gap_ci"]),
                f"{g['p_value']:.4f}",
                f"{g['p_adjusted']:.4f}",
                "FLAGGED" if g["significant"] else "",
            )
            for g in sorted(out["gaps"], key=lambda g: g["p_value"])
        ],
    )


@probe_app.command("list")
def probe_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The constitution's stored probe runs, oldest first."""
    s = settings_of(ctx)
    with s.open() as store:
        runs = store.probe_runs(s.constitution)
    if as_json:
        emit_json([r.model_dump(mode="json", exclude={"report"}) for r in runs])
        return
    table(
        f"probe runs of {s.constitution}",
        ["run", "revision", "model", "suite", "variants", "flagged", "by"],
        [
            (
                str(r.id),
                str(r.revision),
                r.model,
                r.suite,
                str(r.variants),
                str(r.flagged),
                r.created_by.ref,
            )
            for r in runs
        ],
    )


@probe_app.command("compare")
def probe_compare(
    ctx: typer.Context,
    before: Annotated[str, typer.Argument(help="a revision: a number, a label or head")],
    after: Annotated[str, typer.Argument(help="another revision")],
    model: Annotated[
        str | None, typer.Option("--model", help="only runs with this model URI")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The gaps of the newest probe run under each of two revisions, side by side."""
    from agent._bias import compare_reports

    s = settings_of(ctx)
    with s.open() as store:
        picked = []
        for ref in (before, after):
            number = store.resolve(ref, s.constitution)
            runs = [
                r
                for r in store.probe_runs(s.constitution, number)
                if model is None or r.model == model
            ]
            if not runs:
                raise NotFound("probe run", f"revision {number} (run charter probe bias)")
            picked.append(runs[-1])
    first, second = picked
    rows = compare_reports(first.report, second.report)
    if as_json:
        emit_json({"before": first.id, "after": second.id, "gaps": rows})
        return

    def side(x: dict[str, Any] | None) -> str:
        if x is None:
            return "-"
        return with_ci(x["gap"], x["gap_ci"]) + (" FLAGGED" if x["significant"] else "")

    table(
        f"probe run {first.id} (revision {first.revision}) -> {second.id} "
        f"(revision {second.revision})",
        ["source", "attribute", "metric", "before", "after", "change", ""],
        [
            (
                r["source"],
                r["attribute"],
                r["metric"],
                side(r["before"]),
                side(r["after"]),
                "-" if r["change"] is None else f"{r['change']:+.3f}",
                r["direction"],
            )
            for r in rows
        ],
    )


tasks_app = typer.Typer(help="Task suites.", no_args_is_help=True)


@tasks_app.command("report")
def tasks_report(
    source: Annotated[str, typer.Argument(help="a task JSONL, or builtin")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """A task suite's composition: categories, tags, prompt lengths and the demographic
    terms its prompts use, with warnings on skew."""
    from agent._task_report import report
    from agent._tasks import load_tasks

    found = report(load_tasks(source))
    if as_json:
        emit_json(found.as_json())
        return
    words = found.words
    table(
        f"{source}: {found.tasks} tasks, prompts of {words['min']:g}-{words['max']:g} words "
        f"(median {words['median']:g})",
        ["category", "tasks"],
        [(c, str(n)) for c, n in found.categories.items()],
    )
    table(
        "prompts that mention each group",
        ["attribute", "mentions by group"],
        [
            (a, ", ".join(f"{g} {n}" for g, n in counts.items()))
            for a, counts in found.mentions.items()
        ],
    )
    for warning in found.warnings:
        say(f"warning: {warning}")
    if not found.warnings:
        say("no skew found")
