"""CLI: `charter judge eval | calibrate | show`: measure the critic against labels, fit its
calibration, and show what is in force. Each command parses, calls the agent's judge
functions, and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from charter._output import emit_json, say, table, with_ci
from charter._settings import Settings, settings_of
from principles import InvalidInput, Principle
from store import Store

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
LabelsOpt = Annotated[
    Path | None, typer.Option("--labels", help="a JSONL labels file (see README)")
]
ReviewsOpt = Annotated[
    bool, typer.Option("--from-reviews", help="use the labels reviewers gave in this database")
]
ModelOpt = Annotated[str, typer.Option("--model", help="the judge's backend URI")]
PrinciplesOpt = Annotated[
    Path | None,
    typer.Option("--principles", help="a constitution file whose principles the labels add"),
]
ParaphrasesOpt = Annotated[int, typer.Option("--paraphrases", min=1, max=3)]


def _principles(store: Store, s: Settings, extra: Path | None) -> list[Principle]:
    """The head's principles (the default constitution before `charter init`), plus those of
    `extra`, which replace head principles of the same id."""
    from principles import NotFound
    from store import read_seed

    try:
        base = [p.as_principle() for p in store.constitution(s.constitution).principles]
    except NotFound:
        base = list(read_seed(None).principles)
    if extra is None:
        return base
    added = {p.id: p for p in read_seed(extra).principles}
    return [p for p in base if p.id not in added] + list(added.values())


def _labelled(store: Store, labels: Path | None, from_reviews: bool) -> tuple[list[Any], str]:
    from agent import from_store, load_labels

    if (labels is None) == (not from_reviews):
        raise InvalidInput("give --labels FILE or --from-reviews (one of them)")
    if labels is not None:
        return load_labels(labels), f"file:{labels.name}"
    found = from_store(store.judge_labels())
    if not found:
        raise InvalidInput("no reviewer labels in this database yet (charter review label)")
    return found, "reviewers"


def _figure_rows(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = [*report["principles"], {"principle": "overall", **report["overall"]}]
    return [
        (
            r["principle"],
            r["n"],
            with_ci(r["auc"], r["auc_ci"]),
            with_ci(r["accuracy"], r["accuracy_ci"]),
            with_ci(r["balanced_accuracy"]),
            with_ci(r["kappa"], r["kappa_ci"]),
            with_ci(r["spearman"], r["spearman_ci"]),
            with_ci(r["ece"]),
        )
        for r in rows
    ]


FIGURE_COLUMNS = [
    "principle",
    "n",
    "AUC [95% CI]",
    "accuracy",
    "bal. acc.",
    "kappa",
    "Spearman",
    "ECE",
]


def judge_eval(
    ctx: typer.Context,
    labels: LabelsOpt = None,
    from_reviews: ReviewsOpt = False,
    model: ModelOpt = "default",
    principles_file: PrinciplesOpt = None,
    paraphrases: ParaphrasesOpt = 2,
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0)] = 0.5,
    uncalibrated: Annotated[
        bool, typer.Option("--uncalibrated", help="judge with the raw option scores only")
    ] = False,
    resamples: Annotated[int, typer.Option("--resamples", min=0)] = 1000,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="keep the measurement in the database")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Score the critic against human labels: AUC, accuracy, kappa, calibration error."""
    from agent import NoProgress, calibrator_for, evaluate_judge, open_backend

    s = settings_of(ctx)
    with s.open() as store:
        labelled, source = _labelled(store, labels, from_reviews)
        principles = _principles(store, s, principles_file)
        say(f"loading model {model} ...")
        backend = open_backend(model, store)
        calibrator = None if uncalibrated else calibrator_for(store, backend)
        report = evaluate_judge(
            backend,
            principles,
            labelled,
            calibrator=calibrator,
            paraphrases=paraphrases,
            threshold=threshold,
            resamples=resamples,
            progress=NoProgress(),
        )
        if record:
            store.record_judge_evaluation(report.evaluation(source), s.actor(store))
    if as_json:
        emit_json(report.as_json())
        return
    where = f"calibration {report.calibration_id}" if report.calibration_id else "no calibration"
    table(
        f"judge {report.model} ({where}) on {report.n} labels",
        FIGURE_COLUMNS,
        _figure_rows(report.figures),
    )
    if report.calibrated:
        table("before calibration (raw option scores)", FIGURE_COLUMNS, _figure_rows(report.raw))
    typer.echo(f"calibrated principles: {', '.join(report.calibrated) or 'none'}")


def judge_calibrate(
    ctx: typer.Context,
    labels: LabelsOpt = None,
    from_reviews: ReviewsOpt = False,
    model: ModelOpt = "default",
    principles_file: PrinciplesOpt = None,
    method: Annotated[str, typer.Option("--method", help="probe | platt")] = "probe",
    layer: Annotated[int | None, typer.Option("--layer", help="hidden layer (probe)")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, max=20)] = 5,
    paraphrases: ParaphrasesOpt = 2,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Fit the critic's calibration on labels and store it (cross-validated figures)."""
    from agent import (
        DEFAULT_LAYER,
        NoProgress,
        calibration_in_force,
        fit_calibration,
        open_backend,
    )

    s = settings_of(ctx)
    with s.open() as store:
        labelled, source = _labelled(store, labels, from_reviews)
        principles = _principles(store, s, principles_file)
        say(f"loading model {model} ...")
        backend = open_backend(model, store)
        new, skipped = fit_calibration(
            backend,
            principles,
            labelled,
            method=method,
            layer=DEFAULT_LAYER if layer is None else layer,
            paraphrases=paraphrases,
            folds=folds,
            seed=seed,
            inherited=calibration_in_force(store, backend.uri),
            source=source,
            progress=NoProgress(),
        )
        stored = store.add_calibration(new, s.actor(store))
    for why in skipped:
        say(f"skipped {why}")
    if as_json:
        emit_json(stored)
        return
    table(
        f"calibration {stored.id} for {stored.model}: cross-validated ({folds} folds)",
        FIGURE_COLUMNS,
        _figure_rows(stored.metrics["cross_validated"]),
    )
    table("the same labels, raw option scores", FIGURE_COLUMNS, _figure_rows(stored.metrics["raw"]))


def judge_show(ctx: typer.Context, model: ModelOpt = "default", as_json: JsonOpt = False) -> None:
    """The calibration in force for a judge model and its latest measurement."""
    from agent import calibration_in_force, fitted_summary

    s = settings_of(ctx)
    with s.open() as store:
        found = calibration_in_force(store, model)
        measured = store.latest_judge_evaluation(model, found.id if found else None)
    if as_json:
        emit_json({"model": model, "calibration": found, "latest_evaluation": measured})
        return
    if found is None:
        typer.echo(
            f"{model}: no calibration (raw option scores); fit one with charter judge calibrate"
        )
    else:
        typer.echo(
            f"{model}: calibration {found.id} ({found.method}, layer {found.params.get('layer')}), "
            f"fitted on {found.n_labels} labels {found.label_set[:19]} by {found.created_by.name} "
            f"at {found.created_at:%Y-%m-%d %H:%M}"
            + (f" from {found.source}" if found.source else "")
        )
        table(
            "principles with a head (others keep raw scores)",
            ["principle", "labels", "lambda", "cross-validated AUC [95% CI]", "raw AUC"],
            [
                (
                    r["principle"],
                    r["n"],
                    r["lambda"],
                    with_ci(r["cv_auc"], r["cv_auc_ci"]),
                    with_ci(r["raw_auc"]),
                )
                for r in fitted_summary(found)
            ],
        )
    if measured is None:
        typer.echo("never measured with this calibration: charter judge eval --labels FILE")
    else:
        typer.echo(
            f"last measured {measured.created_at:%Y-%m-%d %H:%M} on {measured.n} labels "
            f"({measured.source or 'labels'}): AUC {with_ci(measured.auc)}"
        )


def register(judge_app: typer.Typer) -> None:
    judge_app.command("eval")(judge_eval)
    judge_app.command("calibrate")(judge_calibrate)
    judge_app.command("show")(judge_show)
