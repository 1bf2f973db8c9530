"""What every route shares: the `Web` dependencies, who is asking, and how to answer.

The route modules (`_login`, `_pages`, `_actions`, `_labels`) import this module; `_app`
imports them and builds one `Web`. Nothing here imports a route module or the app module,
so the package has no import cycle.

Guarantees: a request's principal is looked up once (one indexed query for a session,
one for an API token) and kept on the request; a state-changing request made with a
session carries that session's own CSRF token, compared in constant time; a read-scoped
token is refused (403) on any request but GET, HEAD and OPTIONS, whatever the route.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from charter.web._auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    LoginLimiter,
    LoginTokens,
    Principal,
    csrf_for,
    same,
)
from charter.web._sources import EvidenceSource, ScoreSource
from principles import CharterError, Conflict, IntegrityError, InvalidInput, NotFound
from principles import PolicyViolation as Refused
from store import DatabaseError, Store

HTMX_CONFIG = json.dumps(
    {
        "includeIndicatorStyles": False,
        "allowEval": False,
        "allowScriptTags": False,
        # Never copy `style` attributes while settling: the CSP forbids inline styles.
        "attributesToSettle": ["class", "width", "height"],
        "responseHandling": [
            {"code": "204", "swap": False},
            {"code": "[23]..", "swap": True},
            {"code": "[45]..", "swap": True, "error": True},
        ],
    }
)


_UNKNOWN = object()


class NeedSignIn(Exception):
    """No valid session or token: pages redirect to the sign-in form, the rest get 401."""


class BadCsrf(Exception):
    """A state-changing request without the session's CSRF token: 403."""


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ReadOnlyToken(Refused):
    """A read-scoped API token on a request that could change something: 403."""

    code = "read-only-token"

    def __init__(self, user: str) -> None:
        super().__init__(
            f"a read-scoped token of {user} can change nothing: "
            f"use a full token (charter users token {user})"
        )
        self.user = user


def status_for(error: CharterError) -> int:
    for kind, status in (
        (NotFound, 404),
        (InvalidInput, 400),
        (Refused, 403),
        (Conflict, 409),
        (IntegrityError, 500),
        (DatabaseError, 503),
    ):
        if isinstance(error, kind):
            return status
    return 500


def wants_json(request: Request, me: Principal | None = None) -> bool:
    if me is not None and me.via == "token":
        return True
    if request.url.path.startswith("/api/"):
        return True
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


@dataclass(frozen=True)
class Web:
    """What every route needs; built once by `create_app` and passed to each route module."""

    store: Store
    constitution: str
    templates: Jinja2Templates
    login_tokens: LoginTokens
    limiter: LoginLimiter
    secure_cookies: bool
    session_max_age: int
    scores: ScoreSource
    evidence: EvidenceSource

    def principal(self, request: Request) -> Principal | None:
        """Who is asking: by API token, else by session cookie, else nobody."""
        found = getattr(request.state, "principal", _UNKNOWN)
        if found is _UNKNOWN:
            found = request.state.principal = self._look_up(request)
        assert found is None or isinstance(found, Principal)
        return found

    def _look_up(self, request: Request) -> Principal | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            access = self.store.token_access(auth[7:].strip())
            if access is None:
                return None
            return Principal(user=access.user, via="token", scope=access.scope)
        session = request.cookies.get(SESSION_COOKIE, "")
        user = self.store.session_user(session) if session else None
        if user is None:
            return None
        return Principal(user=user, via="session", csrf=csrf_for(session))

    def signed_in(self, request: Request) -> Principal:
        """The principal, who may make this request: a read-scoped token only reads."""
        me = self.principal(request)
        if me is None:
            raise NeedSignIn()
        if me.scope != "full" and request.method not in SAFE_METHODS:
            raise ReadOnlyToken(me.user.name)
        return me

    def guard(self, request: Request, form_token: str | None) -> Principal:
        """The principal of a state-changing request, after its CSRF check."""
        me = self.signed_in(request)
        if me.via == "session":
            token = form_token or request.headers.get(CSRF_HEADER, "")
            if not token or not same(token, me.csrf):
                raise BadCsrf()
        return me

    def render(
        self, request: Request, template: str, status: int = 200, /, **context: Any
    ) -> HTMLResponse:
        me = context.pop("me", None) or self.principal(request)
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "me": me,
                "csrf": me.csrf if me else "",
                "csrf_field": CSRF_FIELD,
                "htmx_config": HTMX_CONFIG,
                "constitution": self.constitution,
                **context,
            },
            status_code=status,
        )

    def start_session(self, response: Response, name: str) -> None:
        """Sign `name` in: a new server-side session, its random id in the cookie."""
        session = self.store.start_session(name, timedelta(seconds=self.session_max_age))
        response.set_cookie(
            SESSION_COOKIE,
            session.id,
            max_age=self.session_max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies,
            path="/",
        )

    def end_session(self, request: Request, response: Response) -> None:
        """Sign out: the session's row is ended, so its cookie is refused from now on."""
        session = request.cookies.get(SESSION_COOKIE, "")
        if session:
            self.store.end_session(session)
        response.delete_cookie(SESSION_COOKIE, path="/")
