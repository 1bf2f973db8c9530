"""The review web app: `create_app(store, secret=...)` builds it with every dependency explicit.

Server-rendered Jinja2 pages; HTMX (served from /static) only where it spares a reload.
Every response carries a strict content security policy: scripts, styles and images come
from this server only, and no inline script or style is allowed. This module imports the
route modules and wires them to one `Web` (charter/web/_web.py); they never import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

from charter.web import _actions, _api, _hooks, _labels, _login, _pages
from charter.web._auth import LoginLimiter, LoginTokens
from charter.web._charts import line_chart
from charter.web._sources import EvidenceSource, ScoreSource, evidence_from_runs, run_scores
from charter.web._web import BadCsrf, NeedSignIn, Web, status_for, wants_json
from principles import CharterError
from store import Store

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


def _when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"


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
    """The review UI over `store`. Nothing is global: two apps share only their database
    (sessions and failed sign-ins live there, so every server on it agrees on both)."""
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
        login_tokens=LoginTokens(secret),
        limiter=limiter or LoginLimiter(store),
        secure_cookies=secure_cookies,
        session_max_age=session_max_age,
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
            return JSONResponse(
                {
                    "error": "sign in first, or send Authorization: Bearer <token>",
                    "code": "unauthenticated",
                },
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
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

    app.add_exception_handler(RequestValidationError, _api.invalid_request)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    router = APIRouter()
    _login.register(router, web)
    _pages.register(router, web)
    _actions.register(router, web)
    _labels.register(router, web)
    _hooks.register(router, web)
    app.include_router(router)
    app.include_router(_api.router())
    return app
