"""Server-side sign-in sessions and shared failed-sign-in counts (mixed into Store).

Guarantees:
- A session id is 32 random bytes, handed out once (for the browser's cookie); the database
  keeps only its SHA-256 digest, so neither a copy of the database nor the app's secret
  lets anyone make a session.
- `session_user` is one query on the digest's unique index. A session counts only while it
  has neither expired nor ended, and its user is a person who is not disabled and has not
  changed password since the session began.
- Starting and ending sessions are audited, naming the session's row id, never its id.
  A password change, a revocation or a disabled account ends the user's sessions in the
  transaction of that change (store/_users.py).
- Failed sign-ins are rows, so every server on one database counts the same failures and
  a lockout holds on all of them. They are not audited: a guesser must not fill the log.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, or_, select, update

from principles import InvalidInput, User, utcnow
from store import _audit
from store._base import StoreBase
from store._schema import login_failures, sessions, users
from store._users import _to_user, secret_digest

MAX_KEY = 128


@dataclass(frozen=True)
class NewSession:
    """A session just started: `id` goes in the cookie and is never stored or shown again."""

    id: str
    user: User
    expires_at: datetime


class SessionsAPI(StoreBase):
    """The sessions part of `Store` (mixed in)."""

    def start_session(self, name: str, lifetime: timedelta) -> NewSession:
        """A new session for person `name`, valid for `lifetime`; audited `session.start`.

        The caller has already checked the password: this only refuses a user who may not
        sign in (an agent, a disabled person) and clears that user's expired sessions."""
        session_id = secrets.token_urlsafe(32)

        def run(conn: Connection) -> NewSession:
            row = conn.execute(select(users).where(users.c.name == name)).first()
            if row is None or row.kind != "human" or row.disabled_at is not None:
                raise InvalidInput(f"user {name!r} may not sign in")
            now = utcnow()
            conn.execute(
                delete(sessions).where(sessions.c.user_id == row.id, sessions.c.expires_at < now)
            )
            expires = now + lifetime
            key = conn.execute(
                insert(sessions).values(
                    digest=secret_digest(session_id),
                    user_id=row.id,
                    created_at=now,
                    expires_at=expires,
                )
            ).inserted_primary_key
            assert key is not None
            user = _to_user(row)
            _audit.append(
                conn,
                user.actor.ref,
                "session.start",
                f"user:{name}",
                {"session": key[0], "expires_at": expires.isoformat()},
            )
            return NewSession(id=session_id, user=user, expires_at=expires)

        return self._write(run)

    def session_user(self, session_id: str, *, now: datetime | None = None) -> User | None:
        """The person signed in with `session_id`, if that session still counts (one query)."""
        if not session_id:
            return None
        at = now or utcnow()
        query = (
            select(users)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(
                sessions.c.digest == secret_digest(session_id),
                sessions.c.ended_at.is_(None),
                sessions.c.expires_at > at,
                users.c.kind == "human",
                users.c.disabled_at.is_(None),
                or_(
                    users.c.password_changed_at.is_(None),
                    users.c.password_changed_at <= sessions.c.created_at,
                ),
            )
        )
        row = self._read(lambda c: c.execute(query).first())
        return None if row is None else _to_user(row)

    def end_session(self, session_id: str) -> bool:
        """Sign-out: end the session with this id; audited `session.end`. False if it was
        not live (already ended, expired, or never existed)."""

        def run(conn: Connection) -> bool:
            row = conn.execute(
                select(users, sessions.c.id.label("session_id"))
                .join(sessions, sessions.c.user_id == users.c.id)
                .where(
                    sessions.c.digest == secret_digest(session_id),
                    sessions.c.ended_at.is_(None),
                )
            ).first()
            if row is None:
                return False
            conn.execute(
                update(sessions).where(sessions.c.id == row.session_id).values(ended_at=utcnow())
            )
            user = _to_user(row)
            _audit.append(
                conn,
                user.actor.ref,
                "session.end",
                f"user:{user.name}",
                {"session": row.session_id},
            )
            return True

        return self._write(run)

    # -- failed sign-ins -----------------------------------------------------------------

    def login_failures(self, keys: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        """When each key failed to sign in from `since` on, oldest first (one query)."""
        wanted = {k[:MAX_KEY]: k for k in keys}
        query = (
            select(login_failures.c.key, login_failures.c.at)
            .where(login_failures.c.key.in_(list(wanted)), login_failures.c.at > since)
            .order_by(login_failures.c.at)
        )
        found: dict[str, list[datetime]] = {k: [] for k in keys}
        for row in self._read(lambda c: c.execute(query).all()):
            found[wanted[row.key]].append(row.at)
        return found

    def record_login_failure(
        self, keys: Sequence[str], at: datetime, forget_before: datetime
    ) -> None:
        """Count one failed sign-in against each key, and forget those keys' failures older
        than `forget_before` (they no longer count toward any limit)."""
        short = [k[:MAX_KEY] for k in keys]

        def run(conn: Connection) -> None:
            conn.execute(
                delete(login_failures).where(
                    login_failures.c.key.in_(short), login_failures.c.at < forget_before
                )
            )
            conn.execute(insert(login_failures), [{"key": k, "at": at} for k in short])

        self._write(run)

    def clear_login_failures(self, key: str) -> None:
        """Forget the failures of one key (after that user signed in)."""
        self._write(
            lambda c: c.execute(delete(login_failures).where(login_failures.c.key == key[:MAX_KEY]))
        )
