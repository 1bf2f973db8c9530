"""CLI: `charter review` (list, show, approve, reject, edit, comment, rebase, label), `serve`.

The person acting is `--as` (or CHARTER_USER, or the login). When that name is a registered
user, its kind and roles apply: an agent's identity is refused (and the refusal audited) as
it would be in the web UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from charter._judge_cli import evidence_critiques, evidence_json, evidence_line, review_label
from charter._output import diff_text, emit_json, out, say, table, with_ci
from charter._settings import read_text_option, settings_of
from principles import (
    STATUS_GROUPS,
    Evaluation,
    InvalidInput,
    NotFound,
    ReviewState,
    unified_diff,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def state_diff(state: ReviewState) -> str:
    """The amendment's change as a unified diff (against the head, or as it was applied)."""
    parts = []
    for change in state.changes:
        old_label = change.old.ref if change.old else "/dev/null"
        if change.new_text is None:
            new_label = "/dev/null"
        elif state.amendment.status == "applied":
            new_label = f"{change.principle_id} (applied in r{state.amendment.applied_revision})"
        else:
            new_label = f"{change.principle_id} (proposed)"
        parts.append(unified_diff(change.old_text, change.new_text or "", old_label, new_label))
    return "\n".join(p for p in parts if p)


def state_json(state: ReviewState) -> dict[str, Any]:
    return {
        **state.model_dump(mode="json"),
        "requirements": state.requirements(),
        "missing_approvals": state.missing_approvals,
        "diff": state_diff(state),
    }


def _rebase_line(state: ReviewState) -> str:
    r = state.rebase
    if r.state == "current":
        return f"based on the head (revision {r.head})"
    if r.state == "clean":
        return (
            f"based on revision {r.base}; the head is {r.head} and changed other principles "
            "only: it rebases cleanly (`charter review rebase`, or on apply)"
        )
    return f"STALE: based on revision {r.base}; head {r.head} changed {', '.join(r.conflicts)}"


def print_state(state: ReviewState, evidence: dict[str, str] | None = None) -> None:
    """`evidence`: a line about each stored evidence critique (verdict, labels), by ref."""
    a, d = state.amendment, state.amendment.draft
    out.print(f"amendment {a.id}: {d.op} {d.principle_id} [{a.status}]", style="bold", markup=False)
    out.print(
        f"proposed by {a.proposer} on {a.created_at:%Y-%m-%d %H:%M} UTC; edit {a.edit}"
        + (f" (edited by {', '.join(a.editors)})" if a.editors else ""),
        markup=False,
    )
    if state.is_open:
        out.print(f"base: {_rebase_line(state)}", markup=False)
    elif a.applied_revision:
        out.print(f"applied as revision {a.applied_revision}", markup=False)
    if d.merge_from:
        out.print(f"merges: {', '.join(d.merge_from)}", markup=False)
    if d.rationale:
        out.print(f"rationale: {d.rationale}", markup=False)
    out.print("evidence:" if d.evidence else "evidence: none attached", markup=False)
    known = evidence or {}
    for ref in d.evidence:
        out.print(f"  {ref}" + (f"  {known[ref]}" if ref in known else ""), markup=False)
    if known:
        out.print(
            f"  (label one: charter review label {a.id} CRITIQUE_ID --right|--wrong)", markup=False
        )
    print_gate(a.evaluation)
    out.print(
        f"approvals: {len(state.approvals)} of {state.quorum}"
        + (f" ({', '.join(state.approvals)})" if state.approvals else ""),
        markup=False,
    )
    if state.entrenched:
        out.print(f"entrenched: {', '.join(state.entrenched)} (a human must approve)", markup=False)
    needs = state.requirements()
    out.print("policy requires:" if needs else "policy requires: nothing more", markup=False)
    for need in needs:
        out.print(f"  - {need}", markup=False)
    diff = state_diff(state)
    if diff:
        diff_text(diff)
    for r in a.reviews:
        void = " [void: edited since]" if r.decision == "approve" and r.edit != a.edit else ""
        out.print(
            f"  {r.created_at:%Y-%m-%d %H:%M} {r.reviewer} {r.decision} (edit {r.edit}){void}"
            + (f": {r.comment}" if r.comment else ""),
            markup=False,
        )


def print_gate(e: Evaluation | None) -> None:
    """The gate's outcome, its effect with 95% CI, p-value and n tasks, its warnings, per
    principle the scores with the paired effect's CI and p (when the gate stored them), and
    the bias gaps it measured again."""
    if e is None:
        out.print("gate: not evaluated", markup=False)
        return
    out.print(f"gate: {e.before:.3f} -> {e.after:.3f} ({e.delta:+.3f}), {e.outcome}", markup=False)
    x = e.details
    if "p_value" in x:
        out.print(
            f"  effect {x['effect']:+.3f}, 95% CI [{x['ci'][0]:+.3f}, {x['ci'][1]:+.3f}], "
            f"p = {x['p_value']:.3f}, n = {x['n']} held-out tasks",
            markup=False,
        )
    for warning in x.get("warnings", []):
        out.print(f"  warning: {warning}", markup=False)
    per: dict[str, Any] = x.get("per_principle", {})
    names = sorted({*e.per_principle_before, *e.per_principle_after})
    if names:
        rows = []
        for n in names:
            b, f = e.per_principle_before.get(n), e.per_principle_after.get(n)
            change = f"{f - b:+.3f}" if b is not None and f is not None else ""
            fig = per.get(n)
            ci = f"[{fig['ci'][0]:+.3f}, {fig['ci'][1]:+.3f}]" if fig else ""
            p = _num(fig["p_value"]) if fig else ""
            rows.append((n, _num(b), _num(f), change, ci, p))
        table(None, ["principle", "before", "after", "change", "95% CI", "p"], rows)
    bias: dict[str, Any] | None = x.get("bias")
    if bias:
        table(
            f"bias gaps of probe run {bias['probe_run']}, measured again under the head and "
            "with this change",
            ["attribute", "metric", "before", "after", "change [95% CI]", "p (Holm)", ""],
            [
                (
                    r["attribute"],
                    r["metric"],
                    _num(r["gap_before"]),
                    _num(r["gap_after"]),
                    with_ci(r["change"], r["change_ci"], signed=True),
                    f"{r['p_adjusted']:.4f}",
                    "WIDENED" if r["widened"] else "",
                )
                for r in bias["checked"]
            ],
        )


def _gate_cell(e: Evaluation | None) -> str:
    return f"{e.outcome} {e.before:.3f}->{e.after:.3f}" if e is not None else ""


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _editor(initial: str, what: str) -> str:
    """Let the person edit `initial` in $VISUAL / $EDITOR; refuse an unchanged text."""
    import click

    edited = click.edit(initial, extension=".md", require_save=True)
    if edited is None or edited.strip() == initial.strip():
        raise InvalidInput(f"{what} not changed: nothing to do")
    return edited.strip()


# Commands shared by `charter review` and `charter amend` (one implementation each).


def review_show(ctx: typer.Context, amendment_id: int, as_json: JsonOpt = False) -> None:
    """The change as a diff, its evidence, the gate's figures and what policy requires."""
    s = settings_of(ctx)
    with s.open() as store:
        state = store.review_state(amendment_id)
        labelled = evidence_critiques(store, state.amendment)
    if as_json:
        emit_json(
            {**state_json(state), "evidence_critiques": [evidence_json(*x) for x in labelled]}
        )
        return
    print_state(state, {f"critique:{c.id}": evidence_line(c, ls) for c, ls in labelled})


def review_reject(
    ctx: typer.Context,
    amendment_id: int,
    reason: Annotated[str, typer.Option("--reason", "-m", help="why (required)")] = "",
) -> None:
    """Reject, with a reason."""
    s = settings_of(ctx)
    with s.open() as store:
        done = store.decide(amendment_id, s.actor(store), "reject", reason)
    say(f"amendment {done.amendment.id} is {done.amendment.status}")


def review_edit(
    ctx: typer.Context,
    amendment_id: int,
    text: Annotated[str | None, typer.Option("--text")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="read the text from")] = None,
    title: Annotated[str | None, typer.Option("--title")] = None,
    rationale: Annotated[str | None, typer.Option("--rationale")] = None,
) -> None:
    """Edit the proposed text (--text, --file, or $EDITOR); approvals no longer count."""
    s = settings_of(ctx)
    new_text = read_text_option(text, file)
    with s.open() as store:
        state = store.review_state(amendment_id)
        if new_text is None and title is None and rationale is None:
            if state.amendment.draft.op == "retire":
                raise InvalidInput("a retire has no text to edit: give --rationale")
            current = state.amendment.draft.text or (
                state.changes[0].old_text if state.changes else ""
            )
            new_text = _editor(current, "the text was")
        a = store.edit(
            amendment_id,
            s.actor(store),
            seen_edit=state.amendment.edit,
            title=title,
            text=new_text,
            rationale=rationale,
        )
    say(f"amendment {a.id} edited (edit {a.edit}); another reviewer must approve it")


def review_comment(
    ctx: typer.Context,
    amendment_id: int,
    text: Annotated[str | None, typer.Argument(help="the comment ($EDITOR if omitted)")] = None,
) -> None:
    """Comment on an amendment (any status)."""
    s = settings_of(ctx)
    with s.open() as store:
        store.amendment(amendment_id)
        body = text if text is not None else _editor("", "the comment was")
        store.decide(amendment_id, s.actor(store), "comment", body)
    say(f"comment added to amendment {amendment_id}")


def add_shared_commands(group: typer.Typer) -> None:
    """Register show, reject, edit and comment on `group`."""
    group.command("show")(review_show)
    group.command("reject")(review_reject)
    group.command("edit")(review_edit)
    group.command("comment")(review_comment)


def register(app: typer.Typer) -> None:
    review = typer.Typer(
        help="Review amendments: the change, its evidence, the gate's figures; then decide.",
        no_args_is_help=True,
    )
    app.add_typer(review, name="review")
    add_shared_commands(review)
    review.command("label")(review_label)

    @review.command("list")
    def review_list(
        ctx: typer.Context,
        status: Annotated[
            str, typer.Option("--status", help="open | stale | closed | all")
        ] = "open",
        as_json: JsonOpt = False,
    ) -> None:
        """Amendments waiting for review (or --status stale|closed|all), oldest first."""
        s = settings_of(ctx)
        if status not in STATUS_GROUPS:
            raise InvalidInput(f"unknown status filter {status!r}: use {', '.join(STATUS_GROUPS)}")
        with s.open() as store:
            states = store.review_states(s.constitution, STATUS_GROUPS[status])
        if as_json:
            emit_json([state_json(x) for x in states])
            return
        table(
            f"{status} amendments",
            ["id", "status", "change", "base", "approvals", "entrenched", "gate", "proposer"],
            [
                (
                    x.amendment.id,
                    x.amendment.status,
                    f"{x.amendment.draft.op} {x.amendment.draft.principle_id}",
                    x.rebase.state if x.is_open else x.amendment.base_revision,
                    f"{len(x.approvals)}/{x.quorum}",
                    ", ".join(x.entrenched),
                    _gate_cell(x.amendment.evaluation),
                    x.amendment.proposer,
                )
                for x in states
            ],
        )

    @review.command("approve")
    def review_approve(
        ctx: typer.Context,
        amendment_id: int,
        comment: Annotated[str, typer.Option("--comment", "-m")] = "",
        no_apply: Annotated[
            bool, typer.Option("--no-apply", help="only approve, even when the quorum is met")
        ] = False,
    ) -> None:
        """Approve; when that completes the quorum, apply it as a new head revision."""
        s = settings_of(ctx)
        with s.open() as store:
            done = store.decide(
                amendment_id, s.actor(store), "approve", comment, apply=not no_apply
            )
        a = done.amendment
        if done.revision is not None:
            say(f"amendment {a.id} approved and applied: revision {done.revision.number}")
        else:
            say(f"amendment {a.id} is {a.status} ({len(a.current_approvals)} approval(s))")

    @review.command("rebase")
    def review_rebase(ctx: typer.Context, amendment_id: int) -> None:
        """Move a cleanly rebasable amendment onto the head revision."""
        s = settings_of(ctx)
        with s.open() as store:
            a = store.rebase(amendment_id, s.actor(store))
        say(f"amendment {a.id} rebased onto revision {a.base_revision}")

    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8000,
        secure_cookies: Annotated[
            bool, typer.Option("--secure-cookies", help="mark cookies Secure (behind HTTPS)")
        ] = False,
    ) -> None:
        """Serve the review web UI (sign in as a user made with `charter users add`)."""
        from charter.web import serve as run_server

        s = settings_of(ctx)
        store = s.open()
        try:
            if not store.exists(s.constitution):
                raise NotFound("constitution", f"{s.constitution} (run `charter init` first)")
            if not store.users():
                say("no users yet: add one with `charter users add NAME --role reviewer`")
            say(f"serving the review UI on http://{host}:{port}/ (Ctrl-C stops it)")
            run_server(
                store,
                host=host,
                port=port,
                constitution=s.constitution,
                secure_cookies=secure_cookies,
            )
        finally:
            store.close()
