"""Sign-in for the review UI: server-side sessions, CSRF tokens, API tokens, rate limiting.

Guarantees:
- The session cookie holds only a random session id (HttpOnly, SameSite=Lax); the database
  keeps its hash and decides on every request whether the session still counts (store's
  `session_user`): sign-out, a new password, a revocation and a disabled user end it, and
  no secret of the app can make one.
- Every state-changing request made with a session must carry that session's CSRF token
  (form field `csrf_token` or header `X-CSRF-Token`), an HMAC of the session id, so a token
  from any other session fails; compared in constant time.
- The sign-in form has its own CSRF token (double submit, signed with the app's secret).
- Scripts authenticate with `Authorization: Bearer <token>` (no cookie, so no CSRF). A
  `read`-scoped token is refused on every state-changing request (see `Web.signed_in`).
- Failed sign-ins are limited per user name and per client address, counted in the
  database, so a lockout holds on every server that shares it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer

from principles import TokenScope, User, utcnow
from store import Store

SESSION_COOKIE = "charter_session"
LOGIN_COOKIE = "charter_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Principal:
    """Who is making the request, and how they proved it."""

    user: User
    via: Literal["session", "token"]
    csrf: str = ""
    scope: TokenScope = "full"


def csrf_for(session_id: str) -> str:
    """The CSRF token of one session: an HMAC keyed by its id, so it cannot be derived from
    the stored hash of the id, and no other session's token matches it."""
    mac = hmac.new(session_id.encode(), b"charter-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


class LoginTokens:
    """The sign-in form's own CSRF token, in a cookie signed with the app's secret."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the app secret must be at least 16 characters")
        self._login = URLSafeTimedSerializer(secret, salt="charter-login-csrf")

    def new_login_token(self) -> tuple[str, str]:
        """A pre-login CSRF token and the signed cookie that holds it (double submit)."""
        token = secrets.token_urlsafe(32)
        return self._login.dumps(token), token

    def check_login_token(self, cookie: str | None, submitted: str) -> bool:
        if not cookie or not submitted:
            return False
        try:
            token = self._login.loads(cookie, max_age=3600)
        except BadSignature:
            return False
        return isinstance(token, str) and same(token, submitted)


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class LoginLimiter:
    """Sliding-window count of failed sign-ins per key ("user:NAME", "ip:ADDR"), kept in
    `store`'s database so every server on it sees the same failures.

    Checks and records are separate transactions: requests racing in parallel may each get
    one more try than the limit, never more than one each."""

    store: Store
    per_user: int = 5
    per_address: int = 20
    window: float = 900.0
    clock: Callable[[], datetime] = utcnow

    def _limit(self, key: str) -> int:
        return self.per_user if key.startswith("user:") else self.per_address

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = self.clock()
        window = timedelta(seconds=self.window)
        wait = 0.0
        for key, failures in self.store.login_failures(keys, now - window).items():
            over = len(failures) - self._limit(key)
            if over >= 0:  # a try frees up when the failure that fills the limit ages out
                wait = max(wait, (failures[over] + window - now).total_seconds())
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self.clock()
        self.store.record_login_failure(keys, now, now - timedelta(seconds=self.window))

    def succeeded(self, key: str) -> None:
        self.store.clear_login_failures(key)


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
