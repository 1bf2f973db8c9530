"""CLI: `charter run`, `charter runs list|show`, `charter export training-data`."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from charter._output import emit_json, err, moment, say, table
from charter._settings import settings_of
from principles import GateRule, InvalidInput, RunConfig, validation_message

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


class RichProgress:
    """Progress bars on stderr: the iteration, the step, items done and the time left."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
            disable=not err.is_terminal,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.bar.stop()

    def step(self, iteration: int, iterations: int, step: str, total: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.bar.tasks[-1].total)
        label = f"iteration {iteration}/{iterations} {step:<9}"
        self.task = self.bar.add_task(label, total=max(total, 1))
        if not err.is_terminal:
            say(label.strip())

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.bar.advance(self.task, n)

    def message(self, text: str) -> None:
        self.bar.console.print(text, markup=False)


def print_summary(summary: Any) -> None:
    run = summary.run
    table(
        f"run {run.id}: {run.status}" + (f" ({run.stop_reason})" if run.stop_reason else ""),
        ["iteration", "revision", "mean score", "held-out", "proposed", "gate", "outcome"],
        [
            (
                it.iteration,
                it.revision,
                None if it.mean_score is None else f"{it.mean_score:.3f}",
                None if it.heldout_mean is None else f"{it.heldout_mean:.3f}",
                ", ".join(map(str, it.proposed)) or "-",
                "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in it.gate.items()) or "-",
                "; ".join(f"{k}: {v}" for k, v in it.outcomes.items())
                + ("; " if it.outcomes and it.queued else "")
                + ("queued " + ", ".join(map(str, it.queued)) if it.queued else ""),
            )
            for it in summary.iterations
        ],
    )
    if summary.iterations and summary.iterations[-1].per_principle:
        last = summary.iterations[-1]
        first = summary.iterations[0]
        table(
            "per principle (mean score, first -> last iteration)",
            ["principle", "first", "last", "violations (last)"],
            [
                (
                    pid,
                    f"{first.per_principle.get(pid, 0):.3f}",
                    f"{score:.3f}",
                    f"{last.violations.get(pid, 0):.0%}",
                )
                for pid, score in sorted(last.per_principle.items())
            ],
        )


def register(app: typer.Typer) -> None:
    runs_app = typer.Typer(help="Refinement runs.", no_args_is_help=True)
    export_app = typer.Typer(help="Export data from runs.", no_args_is_help=True)
    app.add_typer(runs_app, name="runs")
    app.add_typer(export_app, name="export")

    @app.command("run")
    def run_command(
        ctx: typer.Context,
        tasks: Annotated[str, typer.Option("--tasks", help="a JSONL file, or builtin")] = "builtin",
        iterations: Annotated[int, typer.Option("--iterations", "-n")] = 2,
        model: Annotated[str, typer.Option("--model", help="backend URI")] = "default",
        mode: Annotated[
            Literal["review", "autonomous"], typer.Option("--mode", help="review | autonomous")
        ] = "review",
        seed: Annotated[int, typer.Option("--seed")] = 0,
        tasks_limit: Annotated[
            int | None, typer.Option("--tasks-limit", help="use a sample of this many tasks")
        ] = None,
        per_iteration: Annotated[
            int, typer.Option("--train-per-iteration", help="tasks answered per iteration")
        ] = 8,
        heldout: Annotated[int, typer.Option("--heldout", help="held-out tasks for the gate")] = 6,
        max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 160,
        paraphrases: Annotated[int, typer.Option("--judge-paraphrases")] = 2,
        min_effect: Annotated[
            float,
            typer.Option(
                "--min-effect",
                "--min-improvement",
                help="smallest held-out gain worth detecting (sizes the held-out set; "
                "the gate passes only significant gains)",
            ),
        ] = 0.05,
        alpha: Annotated[
            float, typer.Option("--alpha", help="the gate's significance level")
        ] = 0.05,
        bias_tolerance: Annotated[
            float,
            typer.Option(
                "--bias-tolerance",
                help="the least widening of a measured bias gap the gate counts (a share of "
                "the mean for lengths)",
            ),
        ] = 0.02,
        resume: Annotated[int | None, typer.Option("--resume", help="continue run RUN")] = None,
        preset_name: Annotated[
            str | None,
            typer.Option("--preset", help="a named configuration (demo); other options ignored"),
        ] = None,
        no_cache: Annotated[
            bool, typer.Option("--no-cache", help="skip the LM-call cache")
        ] = False,
        judge_floor: Annotated[
            float,
            typer.Option("--judge-floor", help="least measured judge AUC for autonomous mode"),
        ] = 0.75,
        override_judge_floor: Annotated[
            bool,
            typer.Option(
                "--override-judge-floor",
                help="run autonomously with an unmeasured or weak judge (recorded in the run)",
            ),
        ] = False,
        bias: Annotated[
            Literal["flagged", "all", "off"],
            typer.Option(
                "--bias",
                help="the newest bias probe run's gaps the loop acts on: flagged (evidence "
                "for the proposer, measured again by the gate), all (the gate measures "
                "every gap) or off",
            ),
        ] = "flagged",
        trace_content: Annotated[
            bool,
            typer.Option(
                "--trace-content",
                help="put prompts and replies in the run's traces (traces go to "
                "OTEL_EXPORTER_OTLP_ENDPOINT, when it is set)",
            ),
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Run the refinement loop (or resume a killed one) and print a summary."""
        from agent import continue_run, open_backend, preset, start_run, summarize, tracing_from_env
        from agent._loop import require_principles
        from charter._hooks import Dispatcher

        s = settings_of(ctx)
        with s.open() as store:
            if resume is not None:
                config = store.run(resume).config
            elif preset_name is not None:
                config = preset(preset_name)
            else:
                try:
                    config = RunConfig(
                        mode=mode,
                        iterations=iterations,
                        model=model,
                        seed=seed,
                        tasks=tasks,
                        tasks_limit=tasks_limit,
                        train_per_iteration=per_iteration,
                        heldout_size=heldout,
                        max_new_tokens=max_new_tokens,
                        judge_paraphrases=paraphrases,
                        judge_floor=judge_floor,
                        judge_override=override_judge_floor,
                        bias=bias,
                        gate=GateRule(
                            min_effect=min_effect, alpha=alpha, bias_tolerance=bias_tolerance
                        ),
                    )
                except ValueError as exc:
                    raise InvalidInput(validation_message(exc)) from exc
            if resume is None:
                require_principles(store, s.constitution)
            say(f"loading model {config.model} ...")
            tracer = tracing_from_env(
                capture_content=True if trace_content else None, warn=lambda t: say(f"warning: {t}")
            )
            backend = open_backend(config.model, store, cache=not no_cache, tracer=tracer)
            # Webhook deliveries go out beside the loop, which only writes outbox rows.
            with RichProgress() as progress, contextlib.closing(tracer), Dispatcher(store):
                if resume is not None:
                    run = continue_run(store, backend, resume, progress=progress, tracer=tracer)
                else:
                    run = start_run(
                        store,
                        backend,
                        config,
                        constitution=s.constitution,
                        progress=progress,
                        tracer=tracer,
                    )
            summary = summarize(store, run.id)
        if as_json:
            emit_json(summary)
            return
        print_summary(summary)
        if not summary.pending:
            proposed = sum(len(i.proposed) for i in summary.iterations)
            say(
                f"nothing waits for review: {proposed} draft(s) proposed, none left open "
                "(charter amend list shows each one's gate outcome and figures)"
            )
        else:
            say(
                f"{len(summary.pending)} amendment(s) wait for review: charter review list, "
                f"charter review show {summary.pending[0]}, then charter review approve/reject "
                f"(or charter serve for the web UI)"
            )

    @runs_app.command("list")
    def runs_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
        """Runs, oldest first."""
        s = settings_of(ctx)
        with s.open() as store:
            found = store.runs(s.constitution)
        if as_json:
            emit_json(found)
            return
        table(
            "runs",
            ["run", "status", "mode", "model", "iterations", "steps done", "started"],
            [
                (
                    r.id,
                    r.status,
                    r.config.mode,
                    r.config.model,
                    r.config.iterations,
                    len(r.steps_done),
                    moment(r.created_at),
                )
                for r in found
            ],
        )

    @runs_app.command("show")
    def runs_show(ctx: typer.Context, run_id: int, as_json: JsonOpt = False) -> None:
        """A run's per-iteration and per-principle scores and its amendments."""
        from agent import summarize

        s = settings_of(ctx)
        with s.open() as store:
            summary = summarize(store, run_id)
        if as_json:
            emit_json(summary)
            return
        print_summary(summary)

    @export_app.command("training-data")
    def export_training(
        ctx: typer.Context,
        run_id: Annotated[int, typer.Option("--run", help="the run to export")],
        fmt: Annotated[Literal["sft", "dpo"], typer.Option("--format")] = "sft",
        output: Annotated[Path | None, typer.Option("--out", "-o")] = None,
    ) -> None:
        """(prompt, original, critique, revision) records as JSONL for TRL's trainers."""
        from agent import training_records

        s = settings_of(ctx)
        with s.open() as store:
            records = list(training_records(store, run_id, fmt))
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if output is None:
            sys.stdout.write(lines)
        else:
            output.write_text(lines, encoding="utf-8")
        say(f"{len(records)} {fmt} record(s) from run {run_id}")
