"""People and agents who sign in to review: who they are and what they may do.

Credentials (password hashes, API tokens) are a storage concern and never appear here. A
`User` turns into the `Actor` that reviews, audits and policy checks see; an agent user
becomes an agent actor, so the review policy refuses its approvals like any other agent's.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

from principles._errors import InvalidInput, PolicyViolation
from principles._models import Actor, Role, UTCDateTime

UserKind = Literal["human", "agent"]
ROLES: tuple[Role, ...] = ("reviewer", "admin")
TokenScope = Literal["full", "read"]
"""What an API token may do: `full` acts as its user; `read` reads and can change nothing."""
TOKEN_SCOPES: tuple[TokenScope, ...] = ("full", "read")
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
    disabled_at: UTCDateTime | None = None

    @property
    def actor(self) -> Actor:
        return Actor(kind=self.kind, name=self.name, roles=self.roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def disabled(self) -> bool:
        """A disabled user signs in by no means until enabled again."""
        return self.disabled_at is not None


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


def check_token_scope(scope: str) -> TokenScope:
    """`scope` as a `TokenScope`, or `InvalidInput` naming the scopes there are."""
    for known in TOKEN_SCOPES:
        if scope == known:
            return known
    raise InvalidInput(f"unknown token scope {scope!r}: use {' or '.join(TOKEN_SCOPES)}")


def check_password(password: str) -> None:
    """Length is the one rule that helps: at least MIN_PASSWORD characters."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password is too long: at most {MAX_PASSWORD} characters")


def acting_actor(
    name: str, user: User | None, people_registered: bool, reserved: Collection[str]
) -> Actor:
    """Who a command acts as when it names `name` (the CLI's `--as`), given the registered
    user of that name (if any) and whether any person is registered.

    - A registered user acts with its own kind and roles: the agent's identity stays an agent.
    - A reserved name (the system actor's, the agent's) is never a person's: refused.
    - Once a person is registered, the name must be a registered user: refused otherwise.
    - A database with no person registered is single-user: the name is taken as a person's.
    Refusals are `PolicyViolation`s.
    """
    if user is not None and not (name in reserved and user.kind == "human"):
        return user.actor
    if name in reserved:
        raise PolicyViolation(
            f"{name} is a reserved name (the system's or the agent's identity): act as a person"
        )
    if people_registered:
        raise PolicyViolation(
            f"{name} is not a registered user: once people are registered, --as (or "
            "CHARTER_USER) must name one of them (charter users list)"
        )
    try:
        return Actor(kind="human", name=name)
    except ValueError as exc:
        raise InvalidInput(f"bad user name {name!r}") from exc
