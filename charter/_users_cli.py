"""CLI: `charter users` (add, list, passwd, token, revoke, disable, enable): who may sign in.

Passwords are read from a hidden prompt or, with --password-stdin, from the first line of
standard input; they never appear on the command line. Tokens are printed once, on stdout.
A new password, `revoke` and `disable` sign the user out of every browser at once.
"""

from __future__ import annotations

import sys
from typing import Annotated, cast

import typer

from charter._output import emit_json, moment, say, table
from charter._settings import settings_of
from principles import InvalidInput, Role, TokenScope, UserKind

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from standard input")
]


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InvalidInput("no password on standard input")
        return line
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for a password: use --password-stdin")
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    return password


def register(app: typer.Typer) -> None:
    users = typer.Typer(
        help="People and agents who sign in to the review UI.", no_args_is_help=True
    )
    app.add_typer(users, name="users")

    @users.command("add")
    def users_add(
        ctx: typer.Context,
        name: str,
        role: Annotated[
            list[str] | None, typer.Option("--role", help="reviewer | admin (repeatable)")
        ] = None,
        agent: Annotated[
            bool, typer.Option("--agent", help="the agent's identity: a token, never a role")
        ] = False,
        password_stdin: StdinOpt = False,
        no_password: Annotated[
            bool, typer.Option("--no-password", help="no password: sign in with a token only")
        ] = False,
        token: Annotated[bool, typer.Option("--token", help="also issue an API token")] = False,
        scope: Annotated[
            TokenScope,
            typer.Option("--scope", help="the issued token's scope: full | read"),
        ] = "full",
    ) -> None:
        """Register a reviewer or admin (with a password) or the agent (with a token); an
        application that only reads the constitution: `--agent --scope read`."""
        s = settings_of(ctx)
        kind: UserKind = "agent" if agent else "human"
        roles = cast("tuple[Role, ...]", tuple(dict.fromkeys(role or ())))
        if kind == "human" and not roles:
            raise InvalidInput("give a role: --role reviewer or --role admin")
        password = None if agent or no_password else read_password(password_stdin)
        with s.open() as store:
            user = store.add_user(
                name, kind=kind, roles=roles, password=password, actor=s.actor(store)
            )
            issued = (
                store.issue_token(name, s.actor(store), "cli", scope=scope)
                if (agent or token)
                else None
            )
        say(
            f"{user.kind} {user.name} added"
            + (f" as {', '.join(user.roles)}" if user.roles else "")
        )
        if issued is not None:
            say("API token (shown once; send it as `Authorization: Bearer <token>`):")
            typer.echo(issued)

    @users.command("list")
    def users_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
        """Registered users (never their credentials)."""
        s = settings_of(ctx)
        with s.open() as store:
            found = store.users()
        if as_json:
            emit_json(found)
            return
        table(
            "users",
            ["name", "kind", "roles", "password", "created (UTC)", "disabled (UTC)"],
            [
                (
                    u.name,
                    u.kind,
                    ", ".join(u.roles),
                    "yes" if u.has_password else "",
                    moment(u.created_at),
                    moment(u.disabled_at),
                )
                for u in found
            ],
        )

    @users.command("passwd")
    def users_passwd(ctx: typer.Context, name: str, password_stdin: StdinOpt = False) -> None:
        """Set a person's password (and sign them out everywhere)."""
        s = settings_of(ctx)
        password = read_password(password_stdin)
        with s.open() as store:
            store.set_password(name, password, s.actor(store))
        say(f"password of {name} changed")

    @users.command("token")
    def users_token(
        ctx: typer.Context,
        name: str,
        label: Annotated[str, typer.Option("--label", help="what the token is for")] = "",
        scope: Annotated[
            TokenScope,
            typer.Option("--scope", help="full: acts as the user; read: reads, changes nothing"),
        ] = "full",
    ) -> None:
        """Issue an API token for scripts (printed once on stdout). An application that only
        fetches the constitution (GET /api/v1/constitutions/NAME) needs `--scope read`."""
        s = settings_of(ctx)
        with s.open() as store:
            issued = store.issue_token(name, s.actor(store), label, scope=scope)
        typer.echo(issued)

    @users.command("revoke")
    def users_revoke(ctx: typer.Context, name: str) -> None:
        """Revoke every API token of a user and end every session they signed in with."""
        s = settings_of(ctx)
        with s.open() as store:
            done = store.revoke_access(name, s.actor(store))
        say(f"{done.tokens} token(s) of {name} revoked, {done.sessions} session(s) ended")

    @users.command("disable")
    def users_disable(ctx: typer.Context, name: str) -> None:
        """Stop a user signing in (password or token) and end their sessions."""
        s = settings_of(ctx)
        with s.open() as store:
            store.set_disabled(name, True, s.actor(store))
        say(f"{name} disabled: signed out everywhere, sign-in and tokens refused")

    @users.command("enable")
    def users_enable(ctx: typer.Context, name: str) -> None:
        """Let a disabled user sign in again (their unrevoked tokens work again)."""
        s = settings_of(ctx)
        with s.open() as store:
            store.set_disabled(name, False, s.actor(store))
        say(f"{name} enabled")
