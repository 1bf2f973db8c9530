"""Settings resolved once at the edge and passed down explicitly (no module globals)."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

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

    def actor(self) -> Actor:
        """The person at the keyboard."""
        try:
            return Actor(kind="human", name=self.user)
        except ValueError as exc:
            raise InvalidInput(f"bad user name {self.user!r}") from exc

    def open(self) -> Store:
        return Store(self.db)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"
