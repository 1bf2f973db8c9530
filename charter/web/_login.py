"""Sign-in and sign-out routes. The sign-in form has its own CSRF token (double submit).

Signing in starts a server-side session; signing out ends it, so its cookie is refused
from then on, on every server that shares the database.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from charter.web._auth import CSRF_FIELD, LOGIN_COOKIE, safe_next
from charter.web._web import Web


def register(router: APIRouter, web: Web) -> None:
    def login_page(
        request: Request, next_url: str, status: int = 200, error: str = "", name: str = ""
    ) -> Response:
        cookie, token = web.login_tokens.new_login_token()
        response = web.render(
            request,
            "login.html",
            status,
            me=None,
            login_token=token,
            next_url=safe_next(next_url),
            error=error,
            name=name,
        )
        response.set_cookie(
            LOGIN_COOKIE,
            cookie,
            max_age=3600,
            httponly=True,
            samesite="strict",
            secure=web.secure_cookies,
            path="/login",
        )
        return response

    @router.get("/login")
    def login_form(
        request: Request, next_url: Annotated[str, Query(alias="next")] = "/"
    ) -> Response:
        if web.principal(request) is not None:
            return RedirectResponse(safe_next(next_url), status_code=303)
        return login_page(request, next_url)

    @router.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = "",
        next_url: Annotated[str, Form(alias="next")] = "/",
    ) -> Response:
        if not web.login_tokens.check_login_token(request.cookies.get(LOGIN_COOKIE), csrf_token):
            return login_page(
                request, next_url, 403, "The form expired or was not sent by this site: try again."
            )
        address = request.client.host if request.client else "unknown"
        keys = (f"user:{username}", f"ip:{address}")
        wait = web.limiter.retry_after(*keys)
        if wait:
            response = login_page(
                request,
                next_url,
                429,
                f"Too many failed sign-ins: try again in {wait} seconds.",
                username,
            )
            response.headers["Retry-After"] = str(wait)
            return response
        user = web.store.authenticate(username, password) if username and password else None
        if user is None or user.kind != "human":
            web.limiter.failed(*keys)
            return login_page(request, next_url, 401, "Wrong user name or password.", username)
        web.limiter.succeeded(keys[0])
        response = RedirectResponse(safe_next(next_url), status_code=303)
        web.start_session(response, user.name)
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @router.post("/logout")
    def logout(
        request: Request, csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = ""
    ) -> Response:
        web.guard(request, csrf_token)
        response = RedirectResponse("/login", status_code=303)
        web.end_session(request, response)
        return response
