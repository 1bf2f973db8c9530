"""The review web app: `create_app(store, secret=...)` builds it with every dependency explicit.

Server-rendered Jinja2 pages; HTMX (served from /static) only where it spares a reload.
Every response carries a strict content security policy: scripts, styles and images come
from this server only, and no inline script or style is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from charter.web._auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    LoginLimiter,
    Principal,
    SessionCodec,
    same,
)
from charter.web._charts import line_chart
from charter.web._sources import EvidenceSource, ScoreSource, evidence_from_runs, run_scores
from principles import CharterError, Conflict, IntegrityError, InvalidInput, NotFound
from principles import PolicyViolation as Refused
from store import DatabaseError, Store

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
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


class NeedSignIn(Exception):
    """No valid session or token: pages redirect to the sign-in form, the rest get 401."""


class BadCsrf(Exception):
    """A state-changing request without the session's CSRF token: 403."""


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


def _when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True)
class Web:
    """What every route needs; built once by `create_app` and closed over by the routes."""

    store: Store
    constitution: str
    templates: Jinja2Templates
    codec: SessionCodec
    limiter: LoginLimiter
    secure_cookies: bool
    scores: ScoreSource
    evidence: EvidenceSource

    def principal(self, request: Request) -> Principal | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            user = self.store.user_for_token(auth[7:].strip())
            return Principal(user=user, via="token") if user else None
        session = self.codec.read_session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        user = self.store.find_user(session[0])
        if user is None or user.kind != "human":
            return None
        return Principal(user=user, via="session", csrf=session[1])

    def signed_in(self, request: Request) -> Principal:
        me = self.principal(request)
        if me is None:
            raise NeedSignIn()
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

    def set_session(self, response: Response, name: str) -> None:
        value, _ = self.codec.new_session(name)
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=self.codec.max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies,
            path="/",
        )


def wants_json(request: Request, me: Principal | None = None) -> bool:
    if me is not None and me.via == "token":
        return True
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def create_app(
    store: Store,
    *,
    secret: str,
    constitution: str = "default",
    secure_cookies: bool = False,
    session_max_age: int = 12 * 3600,
    limiter: LoginLimiter | None = None,
    score_source: ScoreSource = run_scores,
    evidence_source: EvidenceSource = evidence_from_runs,
) -> FastAPI:
    """The review UI over `store`. Nothing is global: two apps never share state."""
    from charter.web import _actions, _labels, _login, _pages

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    templates = Jinja2Templates(env=env)
    templates.env.filters["when"] = _when
    templates.env.filters["score"] = lambda v: "" if v is None else f"{v:.3f}"
    templates.env.filters["signed"] = lambda v: f"{v:+.3f}"
    templates.env.globals["line_chart"] = line_chart
    web = Web(
        store=store,
        constitution=constitution,
        templates=templates,
        codec=SessionCodec(secret, session_max_age),
        limiter=limiter or LoginLimiter(),
        secure_cookies=secure_cookies,
        scores=score_source,
        evidence=evidence_source,
    )
    app = FastAPI(title="Charter review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = web
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            if key == "Cache-Control" and request.url.path.startswith("/static/"):
                continue
            response.headers.setdefault(key, value)
        return response

    @app.exception_handler(NeedSignIn)
    async def _need_sign_in(request: Request, _exc: Exception) -> Response:
        if request.method in ("GET", "HEAD") and not wants_json(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        if wants_json(request):
            return JSONResponse({"error": "sign in first", "code": "unauthenticated"}, 401)
        return web.render(
            request, "error.html", 401, title="Sign in first", message="Sign in first."
        )

    @app.exception_handler(BadCsrf)
    async def _bad_csrf(request: Request, _exc: Exception) -> Response:
        message = "missing or wrong CSRF token: reload the page and try again"
        if wants_json(request):
            return JSONResponse({"error": message, "code": "csrf"}, 403)
        return web.render(request, "error.html", 403, title="Refused", message=message)

    @app.exception_handler(CharterError)
    async def _charter_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CharterError)
        status = status_for(exc)
        if wants_json(request):
            return JSONResponse({"error": str(exc), "code": exc.code}, status)
        title = "Not found" if status == 404 else "Error"
        return web.render(request, "error.html", status, title=title, message=str(exc))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    router = APIRouter()
    _login.register(router, web)
    _pages.register(router, web)
    _actions.register(router, web)
    _labels.register(router, web)
    app.include_router(router)
    return app
