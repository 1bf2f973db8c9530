"""Settings resolved once at the edge and passed down explicitly (no module globals)."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

import typer

from principles import Actor, InvalidInput
from store import Store

DEFAULT_DB = "charter.db"


@dataclass(frozen=True)
class Settings:
    db: str
    constitution: str
    user: str

    @classmethod
    def resolve(cls, db: str | None, constitution: str | None, user: str | None) -> Settings:
        return cls(
            db=db or os.environ.get("CHARTER_DB") or DEFAULT_DB,
            constitution=constitution or os.environ.get("CHARTER_CONSTITUTION") or "default",
            user=user or os.environ.get("CHARTER_USER") or _login(),
        )

    def actor(self, store: Store | None = None) -> Actor:
        """Who is acting: the registered user of that name (with its kind and roles, so the
        agent's identity stays an agent on every command), else a person of that name."""
        if store is not None and (user := store.find_user(self.user)) is not None:
            return user.actor
        try:
            return Actor(kind="human", name=self.user)
        except ValueError as exc:
            raise InvalidInput(f"bad user name {self.user!r}") from exc

    def open(self) -> Store:
        return Store(self.db)


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
