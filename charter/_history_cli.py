"""CLI: set-up and history (init, principles, revisions, constitution, labels, revert, audit)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from charter._output import diff_text, emit_json, moment, out, say, table
from charter._refs import parse_ref, parse_time
from charter._settings import settings_of
from principles import (
    Anchor,
    IntegrityError,
    InvalidInput,
    NotFound,
    Seed,
    VerifyReport,
    render_seed,
    side_by_side,
    unified_diff,
)
from store import DEFAULT, read_seed

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
# A listing limit any database can bind (INTEGER is 32-bit on PostgreSQL).
MAX_LIMIT = 2**31 - 1


def verify_failure(report: VerifyReport) -> str:
    """The one line that says where verification failed."""
    if report.status == "unprotected":
        return f"history unguarded: {report.reason}"
    if report.bad_table == "audit_events" and report.first_bad is not None:
        return f"audit log altered at event {report.first_bad}: {report.reason}"
    return f"history altered at {report.bad_table} row {report.bad_row}: {report.reason}"


def register(app: typer.Typer) -> None:
    principles_app = typer.Typer(help="Principles and their versions.", no_args_is_help=True)
    revisions_app = typer.Typer(
        help="Revisions: snapshots of the constitution.", no_args_is_help=True
    )
    constitution_app = typer.Typer(help="The constitution as a whole.", no_args_is_help=True)
    labels_app = typer.Typer(help="Labels: named pointers to revisions.", no_args_is_help=True)
    audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
    app.add_typer(principles_app, name="principles")
    app.add_typer(revisions_app, name="revisions")
    app.add_typer(constitution_app, name="constitution")
    app.add_typer(labels_app, name="labels")
    app.add_typer(audit_app, name="audit")

    @app.command()
    def init(
        ctx: typer.Context,
        source: Annotated[
            Path | None, typer.Option("--from", help="constitution file (.md, .yaml, .json)")
        ] = None,
        if_missing: Annotated[
            bool, typer.Option("--if-missing", help="do nothing if it already exists")
        ] = False,
        empty: Annotated[
            bool,
            typer.Option("--empty", help="no principles: the agent drafts them (charter draft)"),
        ] = False,
    ) -> None:
        """Create the database and a constitution from a file, the default one, or none.

        It is named by -c when given, else by the file, else `default`."""
        s = settings_of(ctx)
        if empty and source is not None:
            raise InvalidInput("give --from FILE or --empty, not both")
        read = Seed(name=DEFAULT) if empty else read_seed(source)
        name = s.chosen or (read.name if source is not None else DEFAULT)
        seed = Seed.model_validate({**read.model_dump(), "name": name})  # -c is a name too
        renamed = f" (the file names it {read.name!r})" if source and name != read.name else ""
        with s.open() as store:
            if if_missing and store.exists(name):
                say(f"constitution {name!r} already exists in {s.where}")
                return
            revision = store.init(seed, s.actor(store))
        say(
            f"created constitution {name!r}{renamed} in {s.where}: revision {revision.number} "
            f"with {len(revision.entries)} principles"
            + ("" if name == DEFAULT else f" (select it with -c {name})")
        )
        if empty:
            say("draft its principles with `charter draft --purpose TEXT` (or --preferences)")

    @principles_app.command("list")
    def principles_list(
        ctx: typer.Context,
        at: Annotated[str | None, typer.Option("--at", help="revision number or label")] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """The principles at the head (or at a revision)."""
        s = settings_of(ctx)
        with s.open() as store:
            c = store.constitution(s.constitution, at=at)
        if as_json:
            emit_json(list(c.principles))
            return
        table(
            f"{c.name} at revision {c.revision}",
            ["id", "version", "title", "entrenched"],
            [
                (p.principle_id, p.number, p.title, "yes" if p.entrenched else "")
                for p in c.principles
            ],
        )

    @principles_app.command("show")
    def principles_show(
        ctx: typer.Context,
        ref: Annotated[str, typer.Argument(help="ID or ID@VERSION")],
        as_json: JsonOpt = False,
    ) -> None:
        """One version of a principle (the latest by default)."""
        s = settings_of(ctx)
        pid, number = parse_ref(ref)
        with s.open() as store:
            v = store.principle(pid, number, s.constitution)
        if as_json:
            emit_json(v)
            return
        flag = " [entrenched]" if v.entrenched else ""
        out.print(f"{v.ref}: {v.title}{flag}", markup=False, style="bold")
        out.print(
            f"revision {v.revision}, {v.created_at:%Y-%m-%d %H:%M:%S} UTC, by {v.author}"
            + (f", amendment {v.amendment_id}" if v.amendment_id else ""),
            markup=False,
            style="dim",
        )
        out.print()
        out.print(v.text, markup=False)

    @principles_app.command("history")
    def principles_history(ctx: typer.Context, principle_id: str, as_json: JsonOpt = False) -> None:
        """Every version of a principle, oldest first."""
        s = settings_of(ctx)
        with s.open() as store:
            versions = store.version_log(principle_id, s.constitution)
        if as_json:
            emit_json(versions)
            return
        table(
            f"history of {principle_id}",
            ["version", "revision", "created (UTC)", "author", "amendment", "hash"],
            [
                (
                    v.number,
                    v.revision,
                    moment(v.created_at),
                    v.author,
                    v.amendment_id,
                    v.hash[:12],
                )
                for v in versions
            ],
        )

    @principles_app.command("diff")
    def principles_diff(
        ctx: typer.Context,
        a: Annotated[str, typer.Argument(help="ID@A")],
        b: Annotated[str, typer.Argument(help="ID@B (another principle may be named)")],
        side: Annotated[bool, typer.Option("--side-by-side", help="two columns")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """The difference between two versions."""
        s = settings_of(ctx)
        (pa, va), (pb, vb) = parse_ref(a), parse_ref(b)
        with s.open() as store:
            old = store.principle(pa, va, s.constitution)
            new = store.principle(pb, vb, s.constitution)
        text = unified_diff(old.text, new.text, old.ref, new.ref)
        if as_json:
            emit_json(
                {
                    "from": old.ref,
                    "to": new.ref,
                    "unified": text,
                    "title": [old.title, new.title],
                    "side_by_side": side_by_side(old.text, new.text),
                }
            )
            return
        if old.title != new.title:
            out.print(f"title: {old.title!r} -> {new.title!r}", markup=False)
        if side:
            table(
                None,
                ["", old.ref, "", new.ref],
                [
                    (r.left_no, r.left, r.right_no, r.right)
                    for r in side_by_side(old.text, new.text)
                ],
            )
        elif text:
            diff_text(text)
        else:
            say("the texts are identical")

    @principles_app.command("blame")
    def principles_blame(
        ctx: typer.Context,
        ref: Annotated[str, typer.Argument(help="ID or ID@VERSION")],
        as_json: JsonOpt = False,
    ) -> None:
        """Which version, revision and amendment wrote each line."""
        s = settings_of(ctx)
        pid, number = parse_ref(ref)
        with s.open() as store:
            lines = store.blame(pid, number, s.constitution)
        if as_json:
            emit_json(lines)
            return
        for line in lines:
            origin = f"v{line.version} r{line.revision}" + (
                f" a{line.amendment_id}" if line.amendment_id else ""
            )
            out.print(
                f"{origin:<16} {line.author:<20} {line.line_no:>3}  {line.text}", markup=False
            )

    @principles_app.command("search")
    def principles_search(ctx: typer.Context, text: str, as_json: JsonOpt = False) -> None:
        """Versions (current or past) whose title or text contains TEXT."""
        s = settings_of(ctx)
        with s.open() as store:
            found = store.search(text, s.constitution)
        if as_json:
            emit_json(found)
            return
        table(
            f"versions matching {text!r}",
            ["ref", "revision", "title"],
            [(v.ref, v.revision, v.title) for v in found],
        )

    @revisions_app.command("list")
    def revisions_list(
        ctx: typer.Context,
        limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, max=MAX_LIMIT)] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Revisions, newest first."""
        s = settings_of(ctx)
        with s.open() as store:
            revs = store.revisions(s.constitution, limit)
        if as_json:
            emit_json(revs)
            return
        table(
            "revisions",
            ["rev", "created (UTC)", "author", "amendment", "message", "hash"],
            [
                (
                    r.number,
                    moment(r.created_at),
                    r.author,
                    r.amendment_id,
                    r.message,
                    r.hash[:12],
                )
                for r in revs
            ],
        )

    @revisions_app.command("show")
    def revisions_show(ctx: typer.Context, ref: str, as_json: JsonOpt = False) -> None:
        """One revision: its metadata and which version of each principle it holds."""
        s = settings_of(ctx)
        with s.open() as store:
            r = store.revision(ref, s.constitution)
        if as_json:
            emit_json(r)
            return
        out.print(
            f"revision {r.number} (parent {r.parent}) by {r.author}", markup=False, style="bold"
        )
        out.print(f"{r.created_at.isoformat()}  {r.message}  hash {r.hash}", markup=False)
        table(None, ["principle", "version"], sorted(r.entries.items()))

    @revisions_app.command("diff")
    def revisions_diff(ctx: typer.Context, a: str, b: str, as_json: JsonOpt = False) -> None:
        """What changed between two revisions, principle by principle."""
        s = settings_of(ctx)
        with s.open() as store:
            old = store.constitution(s.constitution, at=a)
            new = store.constitution(s.constitution, at=b)
        changes = []
        for pid in sorted(set(old.entries) | set(new.entries)):
            x, y = old.get(pid), new.get(pid)
            if x is not None and y is not None and x.hash == y.hash:
                continue
            kind = "added" if x is None else "removed" if y is None else "changed"
            text = unified_diff(
                x.text if x else "",
                y.text if y else "",
                x.ref if x else "/dev/null",
                y.ref if y else "/dev/null",
            )
            changes.append({"principle": pid, "change": kind, "unified": text})
        if as_json:
            emit_json({"from": old.revision, "to": new.revision, "changes": changes})
            return
        if not changes:
            say(f"revisions {old.revision} and {new.revision} hold the same principles")
        for c in changes:
            out.print(f"{c['change']}: {c['principle']}", style="bold", markup=False)
            diff_text(str(c["unified"]))

    @constitution_app.command("show")
    def constitution_show(
        ctx: typer.Context,
        at: Annotated[str | None, typer.Option("--at", help="revision number or label")] = None,
        as_of: Annotated[
            str | None, typer.Option("--as-of", help="ISO time, e.g. 2026-11-26T12:00Z")
        ] = None,
        fmt: Annotated[Literal["md", "json", "yaml"], typer.Option("--format")] = "md",
    ) -> None:
        """The whole constitution (also an export: the output is a valid seed file)."""
        s = settings_of(ctx)
        if at is not None and as_of is not None:
            raise InvalidInput("give --at or --as-of, not both")
        with s.open() as store:
            c = store.constitution(
                s.constitution, at=at, as_of=parse_time(as_of) if as_of else None
            )
        text = render_seed(
            c.name,
            [p.as_principle() for p in c.principles],
            fmt,
            description=f"revision {c.revision}",
        )
        typer.echo(text, nl=False)

    @labels_app.command("list")
    def labels_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
        """Labels and the revisions they point to."""
        s = settings_of(ctx)
        with s.open() as store:
            found = store.labels(s.constitution)
        if as_json:
            emit_json(found)
            return
        table(
            "labels",
            ["label", "revision", "moved (UTC)"],
            [(x.name, x.revision, moment(x.updated_at)) for x in found],
        )

    @labels_app.command("set")
    def labels_set(ctx: typer.Context, label: str, revision: str) -> None:
        """Point LABEL at REVISION (a number, `head` or another label)."""
        s = settings_of(ctx)
        with s.open() as store:
            x = store.set_label(label, revision, s.actor(store), s.constitution)
        say(f"label {x.name} -> revision {x.revision}")

    @labels_app.command("delete")
    def labels_delete(ctx: typer.Context, label: str) -> None:
        s = settings_of(ctx)
        with s.open() as store:
            store.delete_label(label, s.actor(store), s.constitution)
        say(f"label {label} deleted")

    @app.command()
    def revert(
        ctx: typer.Context,
        revision: str,
        message: Annotated[str, typer.Option("--message", "-m")] = "",
    ) -> None:
        """Make a new head revision equal to REVISION; history is kept."""
        s = settings_of(ctx)
        with s.open() as store:
            r = store.revert(revision, s.actor(store), s.constitution, message)
        say(f"revision {r.number}: {r.message}")

    @audit_app.command("log")
    def audit_log(
        ctx: typer.Context,
        limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, max=MAX_LIMIT)] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """The newest audit events."""
        s = settings_of(ctx)
        with s.open() as store:
            events = store.audit_log(limit=limit)
        if as_json:
            emit_json(events)
            return
        table(
            "audit log",
            ["seq", "at (UTC)", "actor", "action", "subject", "hash"],
            [(e.seq, moment(e.at), e.actor, e.action, e.subject, e.hash[:12]) for e in events],
        )

    @audit_app.command("anchor")
    def audit_anchor(
        ctx: typer.Context,
        output: Annotated[
            Path | None, typer.Option("--out", "-o", help="write to this file")
        ] = None,
    ) -> None:
        """Export the chain's head; keep it outside the database for `verify --anchor`."""
        s = settings_of(ctx)
        with s.open() as store:
            a = store.anchor()
        text = a.model_dump_json(indent=2) + "\n"
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text)
            say(f"anchor at event {a.seq} written to {output}")

    @audit_app.command("verify")
    def audit_verify(
        ctx: typer.Context,
        anchor: Annotated[
            Path | None, typer.Option("--anchor", help="an exported anchor file")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Check the audit chain (and the anchor), every principle version and revision, and
        the append-only triggers. Exit 7 when something was altered or is unguarded, 3 when
        there is no history to check."""
        s = settings_of(ctx)
        expected = None
        if anchor is not None:
            try:
                expected = Anchor.model_validate(json.loads(anchor.read_text()))
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"cannot read anchor {anchor}: {exc}") from exc
        with s.open() as store:
            report = store.verify(expected)
        if as_json:
            emit_json(report)  # the report on stdout; a failure's one line on stderr too
        if report.status == "empty":
            raise NotFound("history to verify", "the audit log is empty")
        if not report.ok:
            raise IntegrityError(verify_failure(report))
        if not as_json:
            say(
                f"history intact: {report.events} events, {report.versions} principle versions, "
                f"{report.revisions} revisions"
                + (f", anchor at event {expected.seq} matches" if expected else "")
            )
