"""Sign-in for the review UI: signed session cookies, CSRF tokens, API tokens, rate limiting.

Guarantees:
- The session cookie is signed (itsdangerous, salted) and time-limited, HttpOnly and
  SameSite=Lax; it carries the user name and that session's CSRF token, nothing secret.
- Every state-changing request made with a session must carry the session's CSRF token
  (form field `csrf_token` or header `X-CSRF-Token`); compared in constant time.
- Scripts authenticate with `Authorization: Bearer <token>` (no cookie, so no CSRF).
- The user is re-read from the store on every request, so a removed user is signed out.
- Failed sign-ins are limited per user name and per client address.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer

from principles import User

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


class SessionCodec:
    """Signs and checks session and pre-login cookies with the app's secret."""

    def __init__(self, secret: str, max_age: int) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 characters")
        self._session = URLSafeTimedSerializer(secret, salt="charter-session")
        self._login = URLSafeTimedSerializer(secret, salt="charter-login-csrf")
        self.max_age = max_age

    def new_session(self, name: str) -> tuple[str, str]:
        """A cookie value for `name` and its fresh CSRF token."""
        csrf = secrets.token_urlsafe(32)
        return self._session.dumps({"u": name, "c": csrf}), csrf

    def read_session(self, cookie: str | None) -> tuple[str, str] | None:
        if not cookie:
            return None
        try:
            data = self._session.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not {"u", "c"} <= data.keys():
            return None
        return str(data["u"]), str(data["c"])

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


@dataclass
class LoginLimiter:
    """Sliding-window count of failed sign-ins per key ("user:NAME", "ip:ADDR")."""

    per_user: int = 5
    per_address: int = 20
    window: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _limit(self, key: str) -> int:
        return self.per_user if key.startswith("user:") else self.per_address

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._failures[key]
                while q and q[0] <= now - self.window:
                    q.popleft()
                if len(q) >= self._limit(key):
                    wait = max(wait, q[0] + self.window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._failures[key].append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
