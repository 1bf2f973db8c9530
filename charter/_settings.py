"""Settings resolved once at the edge and passed down explicitly (no module globals)."""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import typer

from agent import AGENT
from principles import SYSTEM, Actor, InvalidInput, NotFound, acting_actor
from store import DEFAULT, Store, redact_credentials

DEFAULT_DB = "charter.db"
RESERVED_NAMES = frozenset({SYSTEM.name, AGENT.name})


@dataclass(frozen=True)
class Settings:
    db: str
    chosen: str | None  # -c or CHARTER_CONSTITUTION; None: see `constitution`
    user: str
    # The database's constitution names, read by the first `open()` when none was chosen.
    _found: dict[str, tuple[str, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def resolve(cls, db: str | None, constitution: str | None, user: str | None) -> Settings:
        return cls(
            db=db or os.environ.get("CHARTER_DB") or DEFAULT_DB,
            chosen=constitution or os.environ.get("CHARTER_CONSTITUTION") or None,
            user=user or os.environ.get("CHARTER_USER") or _login(),
        )

    @property
    def constitution(self) -> str:
        """The constitution commands act on: the chosen one, else the database's only one,
        else `default` (NotFound, naming them, when there are several and none is `default`).
        Commands that never read it work on any database."""
        if self.chosen is not None:
            return self.chosen
        if "names" not in self._found:
            self.open().close()
        return pick_constitution(self._found["names"])

    def actor(self, store: Store | None = None) -> Actor:
        """Who is acting: the registered user of that name (with its kind and roles, so the
        agent's identity stays an agent on every command). Reserved names (the system actor,
        the agent) never act as a person; once people are registered, only they may act.
        A database with no people registered is single-user: the name is a person's."""
        user = store.find_user(self.user) if store is not None else None
        people = store is not None and any(u.kind == "human" for u in store.users())
        return acting_actor(self.user, user, people, RESERVED_NAMES)

    @property
    def where(self) -> str:
        """The database as messages name it: a URL's password is never shown."""
        return redact_credentials(self.db)

    def open(self) -> Store:
        store = Store(self.db)
        if self.chosen is None and "names" not in self._found:
            try:
                self._found["names"] = tuple(store.constitutions())
            except BaseException:
                store.close()
                raise
        return store


def pick_constitution(names: Sequence[str]) -> str:
    """The only constitution, else `default`; several without `default` cannot be guessed."""
    if len(names) == 1:
        return names[0]
    if len(names) > 1 and DEFAULT not in names:
        listed = ", ".join(sorted(names))
        key = f"{DEFAULT} (the database holds {listed}: choose one with -c NAME)"
        raise NotFound("constitution", key)
    return DEFAULT


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root callback resolved for this invocation."""
    assert isinstance(ctx.obj, Settings)
    return ctx.obj


def read_text_option(text: str | None, file: Path | None) -> str | None:
    """The value of a `--text` / `--file` pair of options."""
    if text is not None and file is not None:
        raise InvalidInput("give --text or --file, not both")
    if file is None:
        return text
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc}") from exc


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"
