"""The `charter` command: parses, calls library functions, prints. Nothing else lives here.

Heavy libraries are never imported at module import time, so `charter --help` is fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from charter import (
    _draft_cli,
    _federation_cli,
    _history_cli,
    _hooks_cli,
    _judge_cli,
    _judge_eval_cli,
    _models_cli,
    _probe_cli,
    _review_cli,
    _reviews_cli,
    _run_cli,
    _users_cli,
)
from charter._errors import EXIT_INTERNAL, EXIT_INVALID, exit_code
from charter._output import fail, say
from charter._settings import Settings
from principles import CharterError, validation_message

app = typer.Typer(
    name="charter",
    help="A self-governing agent's constitution: versioned principles, amendments, review, audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="SQLite file or database URL [env CHARTER_DB; charter.db]"),
    ] = None,
    constitution: Annotated[
        str | None,
        typer.Option(
            "--constitution",
            "-c",
            help="constitution name [env CHARTER_CONSTITUTION; the only one, else default]",
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--as", help="act as this person [env CHARTER_USER; login]")
    ] = None,
) -> None:
    ctx.obj = Settings.resolve(db, constitution, user)


_history_cli.register(app)
_review_cli.register(app)
_run_cli.register(app)
_reviews_cli.register(app)
_users_cli.register(app)
app.add_typer(_models_cli.app, name="models")
_judge_eval_cli.register(_judge_cli.judge_app)
app.add_typer(_judge_cli.judge_app, name="judge")
app.add_typer(_hooks_cli.hooks_app, name="hooks")
app.add_typer(_draft_cli.draft_app, name="draft")
app.add_typer(_probe_cli.probe_app, name="probe")
app.add_typer(_probe_cli.tasks_app, name="tasks")
app.add_typer(_federation_cli.federation_app, name="federation")


def main() -> None:
    """Entry point: user errors become one line and an exit code, never a traceback; usage
    errors show click's usage and exit 2."""
    try:
        # Outside standalone mode click returns a `typer.Exit`'s code instead of exiting.
        code = app(prog_name="charter", standalone_mode=False)
    except CharterError as exc:
        fail(str(exc))
        sys.exit(exit_code(exc))
    except ValidationError as exc:  # user input that failed a model's validation
        fail(f"invalid input: {validation_message(exc)}")
        sys.exit(EXIT_INVALID)
    except (typer.Exit, SystemExit) as exc:
        code = exc.exit_code if isinstance(exc, typer.Exit) else exc.code
        sys.exit(code)
    except (typer.Abort, KeyboardInterrupt):
        say("interrupted")
        sys.exit(130)
    except typer.TyperException as exc:  # a usage error: typer bundles its own click
        message = exc.format_message()  # empty for a group's help, which rich printed
        show = getattr(exc, "show", None)  # click's usage, hint and `Error:` line
        if message and callable(show):
            show()
        elif message:
            fail(message)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug
        fail(f"internal error: {type(exc).__name__}: {exc}")
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
