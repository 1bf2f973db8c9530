"""CLI: amendments by hand (propose, list, show, approve, reject, edit, comment, apply)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from charter._output import emit_json, say, table
from charter._reviews_cli import add_shared_commands
from charter._settings import read_text_option, settings_of
from principles import (
    AmendmentDraft,
    InvalidAmendment,
    Op,
    validation_message,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    amend = typer.Typer(help="Amendments: propose, review and apply changes.", no_args_is_help=True)
    app.add_typer(amend, name="amend")

    @amend.command("propose")
    def propose(
        ctx: typer.Context,
        op: Annotated[str, typer.Argument(help="add | revise | retire | merge")],
        principle_id: Annotated[str, typer.Argument(help="target (or new) principle id")],
        title: Annotated[str | None, typer.Option("--title")] = None,
        text: Annotated[str | None, typer.Option("--text")] = None,
        file: Annotated[
            Path | None, typer.Option("--file", help="read the text from a file")
        ] = None,
        merge_from: Annotated[
            list[str] | None, typer.Option("--merge-from", help="principles merged in (repeat)")
        ] = None,
        entrenched: Annotated[bool | None, typer.Option("--entrenched/--not-entrenched")] = None,
        rationale: Annotated[str, typer.Option("--rationale", "-r")] = "",
        supersedes: Annotated[int | None, typer.Option("--supersedes")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Propose a change; it waits for review."""
        s = settings_of(ctx)
        if op not in ("add", "revise", "retire", "merge"):
            raise InvalidAmendment(f"unknown op {op!r}: use add, revise, retire or merge")
        op_: Op = op  # type: ignore[assignment]
        try:
            draft = AmendmentDraft(
                op=op_,
                principle_id=principle_id,
                title=title,
                text=read_text_option(text, file),
                merge_from=tuple(merge_from or ()),
                entrenched=entrenched,
                rationale=rationale,
            )
        except ValueError as exc:
            raise InvalidAmendment(validation_message(exc)) from exc
        with s.open() as store:
            a = store.propose(draft, s.actor(store), s.constitution, supersedes=supersedes)
        if as_json:
            emit_json(a)
        say(f"amendment {a.id} proposed against revision {a.base_revision}")

    @amend.command("list")
    def amend_list(
        ctx: typer.Context,
        status: Annotated[str | None, typer.Option("--status")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Amendments, oldest first; filter with --status proposed|approved|..."""
        s = settings_of(ctx)
        with s.open() as store:
            found = store.amendments(s.constitution, status=status)
        if as_json:
            emit_json(found)
            return
        table(
            "amendments",
            ["id", "status", "op", "principle", "base", "proposer", "approvals", "gate"],
            [
                (
                    a.id,
                    a.status,
                    a.draft.op,
                    a.draft.principle_id,
                    a.base_revision,
                    a.proposer,
                    len(a.current_approvals),
                    f"{a.evaluation.before:.3f}->{a.evaluation.after:.3f}" if a.evaluation else "",
                )
                for a in found
            ],
        )

    @amend.command("approve")
    def approve(
        ctx: typer.Context,
        amendment_id: int,
        comment: Annotated[str, typer.Option("--comment", "-m")] = "",
    ) -> None:
        """Approve (you may not approve your own amendment)."""
        s = settings_of(ctx)
        with s.open() as store:
            a = store.decide(
                amendment_id, s.actor(store), "approve", comment, apply=False
            ).amendment
        say(f"amendment {a.id} is {a.status} ({len(a.current_approvals)} approval(s))")

    @amend.command("apply")
    def apply(ctx: typer.Context, amendment_id: int) -> None:
        """Apply an approved amendment as a new head revision (rebasing when clean)."""
        s = settings_of(ctx)
        with s.open() as store:
            r = store.apply(amendment_id, s.actor(store))
        say(f"amendment {amendment_id} applied: revision {r.number}")

    add_shared_commands(amend)  # show, reject, edit, comment: as `charter review`
