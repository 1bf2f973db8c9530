"""`charter users token NAME --scope read|full`: the scope is stored with the token."""

from __future__ import annotations

from store import Store
from tests.charter.test_review_cli import CLI, cli

__all__ = ["cli"]


def test_users_token_issues_a_read_scoped_token_on_request(cli: CLI) -> None:
    cli.ok("users", "add", "app", "--agent")
    read = cli.ok("users", "token", "app", "--scope", "read", "--label", "docs").strip()
    full = cli.ok("users", "token", "app").strip()
    with Store(str(cli.db)) as store:
        found_read, found_full = store.token_access(read), store.token_access(full)
    assert found_read is not None and found_read.scope == "read"
    assert found_full is not None and found_full.scope == "full"


def test_users_token_refuses_an_unknown_scope_in_one_line(cli: CLI) -> None:
    cli.ok("users", "add", "app", "--agent")
    code, out, err = cli("users", "token", "app", "--scope", "admin")
    assert code == 2 and not out.strip()
    assert "Traceback" not in err


def test_an_application_registered_read_only_gets_only_a_read_token(cli: CLI) -> None:
    code, out, err = cli("users", "add", "app", "--agent", "--scope", "read")
    assert code == 0, err
    token = out.strip()
    with Store(str(cli.db)) as store:
        found = store.token_access(token)
    assert found is not None and found.user.kind == "agent" and found.scope == "read"
