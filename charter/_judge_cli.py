"""CLI: `charter judge` (the critic's own record) and `charter review label`.

`charter review label` lets a person mark one of an amendment's evidence critiques right or
wrong; the agent's identity is refused (and the refusal audited). `charter judge labels
export` writes the labels that count (the newest per labeller and critique) as a labels
file, one JSON object a line, which `charter judge eval --labels` reads.

More `judge` commands register on `judge_app` (and label commands on `labels_app`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from charter._output import say
from charter._settings import settings_of
from principles import (
    Amendment,
    Critique,
    InvalidInput,
    JudgeLabel,
    Judgment,
    agrees,
    export_record,
)
from store import Store

judge_app = typer.Typer(
    name="judge",
    help="The critic's own record: human labels, calibrations and measurements.",
    no_args_is_help=True,
)
labels_app = typer.Typer(
    help="Labels people gave on critiques (the newest per person and critique counts).",
    no_args_is_help=True,
)
judge_app.add_typer(labels_app, name="labels")


def critique_ids(amendment: Amendment) -> list[int]:
    """The ids of the critiques an amendment names as evidence (`critique:ID`), in order."""
    ids = []
    for ref in amendment.draft.evidence:
        kind, _, rest = ref.partition(":")
        if kind == "critique" and rest.isdigit():
            ids.append(int(rest))
    return ids


def label_mark(critique: Critique, label: JudgeLabel) -> str:
    """`alice right` or `bob wrong` (about the critic's verdict); on an unclear verdict, the
    verdict the person gave: `carol follows`."""
    right = agrees(critique.verdict, label.label)
    if right is None:
        said = "follows" if label.binary else "violates"
    else:
        said = "right" if right else "wrong"
    return f"{label.labeller.name} {said}"


def evidence_critiques(
    store: Store, amendment: Amendment
) -> list[tuple[Critique, list[JudgeLabel]]]:
    """The stored critiques the amendment names as evidence, each with the labels that
    count on it (an id that names no stored critique is left out)."""
    found = store.critiques_by_id(critique_ids(amendment))
    labels = store.critique_labels(found)
    return [(c, labels.get(c.id, [])) for c in found.values()]


def evidence_line(critique: Critique, labels: list[JudgeLabel]) -> str:
    """`clarity@1 fail, score 0.200; labels: alice right, bob wrong`."""
    c = critique
    marks = ", ".join(label_mark(c, label) for label in labels)
    return f"{c.principle_id}@{c.version} {c.verdict}, score {c.score:.3f}; " + (
        f"labels: {marks}" if marks else "not labelled"
    )


def evidence_json(critique: Critique, labels: list[JudgeLabel]) -> dict[str, Any]:
    c = critique
    return {
        "critique_id": c.id,
        "principle": c.principle_id,
        "version": c.version,
        "verdict": c.verdict,
        "score": c.score,
        "labels": [
            {
                "labeller": x.labeller.ref,
                "label": x.binary,
                "right": agrees(c.verdict, x.label),
                "note": x.note,
                "created_at": x.created_at.isoformat(),
            }
            for x in labels
        ],
    }


def judgment_of(right: bool, wrong: bool, verdict: str | None) -> Judgment:
    """The one judgment the options give: --right, --wrong or --verdict follows|violates."""
    if right + wrong + (verdict is not None) != 1:
        raise InvalidInput("give exactly one of --right, --wrong and --verdict follows|violates")
    if right:
        return "right"
    if wrong:
        return "wrong"
    if verdict == "follows":
        return "follows"
    if verdict == "violates":
        return "violates"
    raise InvalidInput(f"unknown verdict {verdict!r}: use follows or violates")


def jsonl(labels: Iterable[JudgeLabel]) -> str:
    """Labels as a labels file: one JSON object a line."""
    return "".join(json.dumps(export_record(x), ensure_ascii=False) + "\n" for x in labels)


def review_label(
    ctx: typer.Context,
    amendment_id: int,
    critique_id: int,
    right: Annotated[
        bool, typer.Option("--right", help="the critic's verdict was correct")
    ] = False,
    wrong: Annotated[bool, typer.Option("--wrong", help="the critic's verdict was wrong")] = False,
    verdict: Annotated[
        str | None, typer.Option("--verdict", help="the right verdict: follows | violates")
    ] = None,
    note: Annotated[str, typer.Option("--note", "-m", help="why (optional)")] = "",
) -> None:
    """Mark one of the amendment's evidence critiques right or wrong, as a person.

    An unclear verdict cannot be right or wrong: give --verdict follows|violates."""
    s = settings_of(ctx)
    judgment = judgment_of(right, wrong, verdict)
    with s.open() as store:
        label = store.label_critique(
            critique_id, judgment, s.actor(store), note, amendment_id=amendment_id
        )
    said = "follows" if label.binary else "violates"
    say(f"critique {critique_id} labelled: the response {said} {label.principle_id}")


@labels_app.command("export")
def labels_export(
    ctx: typer.Context,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write to this file [stdout]")
    ] = None,
    principle: Annotated[
        str | None, typer.Option("--principle", help="only this principle's labels")
    ] = None,
) -> None:
    """Write the labels that count as JSONL: a `charter judge eval --labels` file."""
    s = settings_of(ctx)
    with s.open() as store:
        labels = store.judge_labels(principle_id=principle)
    text = jsonl(labels)
    if out_file is None:
        sys.stdout.write(text)
    else:
        try:
            out_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {out_file}: {exc.strerror}") from exc
    say(f"{len(labels)} label(s) exported" + (f" to {out_file}" if out_file else ""))
