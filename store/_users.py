"""Users who sign in to review, their credentials, and per-database secrets (mixed into Store).

Guarantees: passwords are stored only as argon2id hashes and API tokens only as SHA-256
digests (a token is shown once, when issued); every change to a user is an audit event
whose payload never holds a credential; checking a password for a missing user costs the
same as for a real one, so timing does not reveal who exists. A new password, a revocation
and disabling a user end that user's sign-in sessions in the same transaction; a disabled
user is refused by password and by token alike. Each token carries a scope (`full` or
`read`), fixed when issued; the web layer refuses a `read` token anything that changes state.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, insert, select, update

from principles import (
    SYSTEM,
    Actor,
    InvalidInput,
    NotFound,
    Role,
    TokenScope,
    User,
    UserKind,
    check_new_user,
    check_password,
    check_token_scope,
    utcnow,
)
from store import _audit
from store._base import StoreBase
from store._schema import api_tokens, app_secrets, sessions, users

if TYPE_CHECKING:
    from argon2 import PasswordHasher

TOKEN_PREFIX = "chr_"


@cache
def _hasher() -> PasswordHasher:
    """argon2id with the library's defaults; imported on first use to keep start-up fast."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a miss costs a full verification."""
    return _hasher().hash("charter: no such user")


def _verify(stored: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


def secret_digest(secret: str) -> str:
    """What the database keeps of a bearer secret (an API token, a session id): its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _to_user(row: Row[Any]) -> User:
    """A `users` row (or any row holding its columns) as a `User`."""
    roles = tuple(r for r in row.roles.split(",") if r)
    return User(
        name=row.name,
        kind=row.kind,
        roles=roles,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def end_user_sessions(conn: Connection, user_id: int) -> int:
    """End every live sign-in session of one user, in the caller's transaction; how many."""
    done = conn.execute(
        update(sessions)
        .where(sessions.c.user_id == user_id, sessions.c.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    return int(done.rowcount)


@dataclass(frozen=True)
class TokenAccess:
    """Who a live API token belongs to, and what it may do (`read`: nothing that changes)."""

    user: User
    scope: TokenScope


@dataclass(frozen=True)
class RevokedAccess:
    """What `revoke_access` took away: live API tokens and live sign-in sessions."""

    tokens: int
    sessions: int


def _user_row(conn: Connection, name: str) -> Row[Any]:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFound("user", name)
    return row


class UsersAPI(StoreBase):
    """The users half of `Store` (a `Store` mixin)."""

    def add_user(
        self,
        name: str,
        *,
        kind: UserKind = "human",
        roles: tuple[Role, ...] = (),
        password: str | None = None,
        actor: Actor = SYSTEM,
    ) -> User:
        """Register a person (with a role) or an agent (without); audited as `user.create`."""
        check_new_user(name, kind, roles)
        if password is not None:
            check_password(password)
        hashed = _hasher().hash(password) if password is not None else None

        def run(conn: Connection) -> User:
            if conn.scalar(select(users.c.id).where(users.c.name == name)) is not None:
                raise InvalidInput(f"user {name!r} already exists")
            now = utcnow()
            conn.execute(
                insert(users).values(
                    name=name,
                    kind=kind,
                    roles=",".join(roles),
                    password_hash=hashed,
                    created_at=now,
                    updated_at=now,
                )
            )
            _audit.append(
                conn,
                actor.ref,
                "user.create",
                f"user:{name}",
                {"kind": kind, "roles": list(roles), "password": hashed is not None},
            )
            return _to_user(_user_row(conn, name))

        result: User = self._write(run)
        return result

    def user(self, name: str) -> User:
        result: User = self._read(lambda c: _to_user(_user_row(c, name)))
        return result

    def users(self) -> list[User]:
        rows = self._read(lambda c: c.execute(select(users).order_by(users.c.name)).all())
        return [_to_user(r) for r in rows]

    def find_user(self, name: str) -> User | None:
        try:
            return self.user(name)
        except NotFound:
            return None

    def set_password(self, name: str, password: str, actor: Actor = SYSTEM) -> None:
        """A person's new password; every session signed in with the old one ends."""
        check_password(password)
        hashed = _hasher().hash(password)

        def run(conn: Connection) -> None:
            row = _user_row(conn, name)
            if row.kind != "human":
                raise InvalidInput("agents sign in with API tokens, not passwords")
            now = utcnow()
            conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(password_hash=hashed, updated_at=now, password_changed_at=now)
            )
            ended = end_user_sessions(conn, row.id)
            _audit.append(conn, actor.ref, "user.password", f"user:{name}", {"sessions": ended})

        self._write(run)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if `password` is theirs and they are not disabled; None otherwise (never
        says which part was wrong)."""
        row = self._read(lambda c: c.execute(select(users).where(users.c.name == name)).first())
        stored = row.password_hash if row is not None else None
        if not _verify(stored or _dummy_hash(), password) or row is None or stored is None:
            return None
        if row.disabled_at is not None:
            return None
        if _hasher().check_needs_rehash(stored):
            rehashed = _hasher().hash(password)
            self._write(
                lambda c: c.execute(
                    update(users).where(users.c.id == row.id).values(password_hash=rehashed)
                )
            )
        return _to_user(row)

    def issue_token(
        self, name: str, actor: Actor = SYSTEM, label: str = "", *, scope: TokenScope = "full"
    ) -> str:
        """A new API token for `name`; only its digest is kept, so show it now or never.
        A `read` token reads (the constitution, the pages) and can change nothing."""
        scope = check_token_scope(scope)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)

        def run(conn: Connection) -> None:
            row = _user_row(conn, name)
            tid = conn.execute(
                insert(api_tokens).values(
                    user_id=row.id,
                    label=label[:100],
                    digest=secret_digest(token),
                    created_at=utcnow(),
                    scope=scope,
                )
            ).inserted_primary_key
            assert tid is not None
            _audit.append(
                conn,
                actor.ref,
                "user.token.issue",
                f"user:{name}",
                {"token": tid[0], "label": label, "scope": scope},
            )

        self._write(run)
        return token

    def revoke_access(self, name: str, actor: Actor = SYSTEM) -> RevokedAccess:
        """Revoke every live API token of `name` and end every session they signed in with,
        in one transaction audited as `user.token.revoke`."""

        def run(conn: Connection) -> RevokedAccess:
            row = _user_row(conn, name)
            done = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.user_id == row.id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            ended = end_user_sessions(conn, row.id)
            _audit.append(
                conn,
                actor.ref,
                "user.token.revoke",
                f"user:{name}",
                {"count": done.rowcount, "sessions": ended},
            )
            return RevokedAccess(tokens=int(done.rowcount), sessions=ended)

        return self._write(run)

    def set_disabled(self, name: str, disabled: bool, actor: Actor = SYSTEM) -> User:
        """Disable a user (no sign-in, no token, every session ended; audited `user.disable`)
        or enable them again (`user.enable`; their tokens work again, sessions stay ended)."""

        def run(conn: Connection) -> User:
            row = _user_row(conn, name)
            if (row.disabled_at is not None) == disabled:
                raise InvalidInput(f"user {name!r} is already {'dis' if disabled else 'en'}abled")
            now = utcnow()
            conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(disabled_at=now if disabled else None, updated_at=now)
            )
            ended = end_user_sessions(conn, row.id) if disabled else 0
            action, payload = (
                ("user.disable", {"sessions": ended}) if disabled else ("user.enable", {})
            )
            _audit.append(conn, actor.ref, action, f"user:{name}", payload)
            return _to_user(_user_row(conn, name))

        return self._write(run)

    def token_access(self, token: str) -> TokenAccess | None:
        """The user and scope of a live token (not revoked, its user not disabled), or None;
        one indexed query."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        row = self._read(
            lambda c: c.execute(
                select(users, api_tokens.c.scope.label("token_scope"))
                .join(api_tokens, api_tokens.c.user_id == users.c.id)
                .where(
                    api_tokens.c.digest == secret_digest(token),
                    api_tokens.c.revoked_at.is_(None),
                    users.c.disabled_at.is_(None),
                )
            ).first()
        )
        if row is None:
            return None
        return TokenAccess(user=_to_user(row), scope=check_token_scope(row.token_scope))

    def secret(self, name: str) -> str:
        """A random secret named `name`, generated on first use and the same ever after."""

        def read(conn: Connection) -> str | None:
            value = conn.scalar(select(app_secrets.c.value).where(app_secrets.c.name == name))
            return None if value is None else str(value)

        found: str | None = self._read(read)
        if found is not None:
            return found

        def create(conn: Connection) -> str:
            existing = read(conn)
            if existing is not None:
                return existing
            value = secrets.token_urlsafe(48)
            conn.execute(insert(app_secrets).values(name=name, value=value, created_at=utcnow()))
            _audit.append(conn, SYSTEM.ref, "secret.create", f"secret:{name}", {})
            return value

        created: str = self._write(create)
        return created
