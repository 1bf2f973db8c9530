"""CLI: `charter hooks` (add, list, remove, test, log, deliver): webhooks for other tools.

Only an admin (or the one person of a database with no people registered) adds or removes
a hook. `hooks add` prints a generated secret once, on stdout; `--secret-from-stdin` reads
one from the first line of standard input instead, so it never appears on a command line.
`hooks deliver` sends what the outbox holds, for a cron job or a systemd unit; `charter
serve` and `charter run` send deliveries in the background themselves.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from charter._output import emit_json, fail, moment, say, table
from charter._settings import settings_of
from principles import HOOK_EVENTS, InvalidInput

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]

hooks_app = typer.Typer(
    name="hooks",
    help="Webhooks: signed HTTP POSTs when amendments, labels, runs or the audit change.",
    no_args_is_help=True,
)


def read_secret() -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise InvalidInput("no secret on standard input")
    return line


@hooks_app.command("add")
def hooks_add(
    ctx: typer.Context,
    url: str,
    events: Annotated[
        str, typer.Option("--events", help=f"comma-separated: {', '.join(HOOK_EVENTS)}")
    ],
    secret_from_stdin: Annotated[
        bool, typer.Option("--secret-from-stdin", help="read the signing secret from stdin")
    ] = False,
) -> None:
    """Send EVENTS to URL (admins only); prints a generated signing secret once."""
    s = settings_of(ctx)
    secret = read_secret() if secret_from_stdin else None
    with s.open() as store:
        added = store.add_hook(url, [events], s.actor(store), secret=secret)
    say(f"webhook {added.hook.id} added: {', '.join(added.hook.events)} -> {added.hook.url}")
    if secret is None:
        say("signing secret (shown once; verify the Charter-Signature header with it):")
        typer.echo(added.secret)


@hooks_app.command("list")
def hooks_list(
    ctx: typer.Context,
    removed: Annotated[bool, typer.Option("--removed", help="include removed hooks")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Webhooks (never their secrets)."""
    s = settings_of(ctx)
    with s.open() as store:
        found = store.hooks(removed=removed)
    if as_json:
        emit_json(found)
        return
    table(
        "webhooks",
        ["id", "url", "events", "added by", "added (UTC)", "removed (UTC)"],
        [
            (
                h.id,
                h.url,
                ", ".join(h.events),
                h.created_by,
                moment(h.created_at),
                moment(h.removed_at),
            )
            for h in found
        ],
    )


@hooks_app.command("remove")
def hooks_remove(ctx: typer.Context, hook_id: int) -> None:
    """Stop a webhook (admins only); its pending deliveries are dropped."""
    s = settings_of(ctx)
    with s.open() as store:
        store.remove_hook(hook_id, s.actor(store))
    say(f"webhook {hook_id} removed")


@hooks_app.command("test")
def hooks_test(ctx: typer.Context, hook_id: int) -> None:
    """Send a `ping` to a webhook now and say how the receiver answered."""
    from charter._hooks import ping

    s = settings_of(ctx)
    with s.open() as store:
        done = ping(store, hook_id)
    if done.status != "delivered":
        fail(f"webhook {hook_id} did not accept the ping: {done.last_error}")
        raise typer.Exit(1)
    say(f"webhook {hook_id} accepted the ping (HTTP {done.last_status})")


@hooks_app.command("log")
def hooks_log(
    ctx: typer.Context,
    hook: Annotated[int | None, typer.Option("--hook", help="one webhook's deliveries")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="pending | delivered | failed")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="the newest N", min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Recent deliveries, newest first: status, attempts and the last error."""
    s = settings_of(ctx)
    with s.open() as store:
        found = store.deliveries(hook_id=hook, status=status, limit=limit)
    if as_json:
        emit_json(found)
        return
    table(
        "webhook deliveries",
        ["id", "hook", "event", "subject", "status", "attempts", "last", "error", "at (UTC)"],
        [
            (
                d.id,
                d.hook_id,
                d.event,
                d.subject,
                d.status,
                d.attempts,
                d.last_status or "",
                d.last_error,
                moment(d.created_at),
            )
            for d in found
        ],
    )


@hooks_app.command("deliver")
def hooks_deliver(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="send what is due now and exit (for cron)")
    ] = False,
) -> None:
    """Send pending deliveries: once, or until interrupted."""
    from charter._hooks import Dispatcher, drain

    s = settings_of(ctx)
    with s.open() as store:
        if once:
            say(f"{drain(store)} delivery attempt(s) made")
            return
        say("sending webhook deliveries (Ctrl-C stops)")
        Dispatcher(store).run()
