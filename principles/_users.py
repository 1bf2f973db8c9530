"""People and agents who sign in to review: who they are and what they may do.

Credentials (password hashes, API tokens) are a storage concern and never appear here. A
`User` turns into the `Actor` that reviews, audits and policy checks see; an agent user
becomes an agent actor, so the review policy refuses its approvals like any other agent's.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

from principles._errors import InvalidInput
from principles._models import Actor, Role, UTCDateTime

UserKind = Literal["human", "agent"]
ROLES: tuple[Role, ...] = ("reviewer", "admin")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def _user_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"bad user name {value!r}: use letters, digits and . _ @ -, starting with a letter "
            "or digit, at most 64 characters"
        )
    return value


UserName = Annotated[str, AfterValidator(_user_name)]


class User(BaseModel):
    """A registered identity. Humans carry at least one role; agents carry none."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: UserName
    kind: UserKind
    roles: tuple[Role, ...] = ()
    has_password: bool = False
    created_at: UTCDateTime

    @property
    def actor(self) -> Actor:
        return Actor(kind=self.kind, name=self.name, roles=self.roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def check_new_user(name: str, kind: UserKind, roles: tuple[Role, ...]) -> None:
    """A person needs a role to review; an agent may never hold one (agents never review)."""
    try:
        _user_name(name)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InvalidInput(f"unknown role {unknown[0]!r}: use reviewer or admin")
    if kind == "human" and not roles:
        raise InvalidInput("a person needs a role: reviewer or admin")
    if kind == "agent" and roles:
        raise InvalidInput("an agent takes no role: agents never review amendments")


def check_password(password: str) -> None:
    """Length is the one rule that helps: at least MIN_PASSWORD characters."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password is too long: at most {MAX_PASSWORD} characters")
