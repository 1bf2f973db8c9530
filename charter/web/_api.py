"""The read API for applications: /api/v1/constitutions, read-only, token or session.

Guarantees:
- Every route reads; none changes anything, so a `read`-scoped token is enough (and a full
  token or a signed-in person's session reads too). No credential: 401 with
  `WWW-Authenticate: Bearer`, never a redirect to the sign-in form.
- `GET /api/v1/constitutions/{name}` answers with `ETag: "<revision hash>"` (`-md` appended
  for Markdown, so the two representations never share a tag) and answers a matching
  `If-None-Match` with 304 and no body, after one indexed read of the revision row.
- Errors are one line of JSON, `{"error": ..., "code": ...}`: 400 bad input, 401, 404.
- `GET /api/v1/openapi.json` is the OpenAPI schema of these routes alone (the review UI's
  HTML routes are not an API and stay out of it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, Security
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from charter._api_models import (
    ApiError,
    ConstitutionSummary,
    PublishedConstitution,
    RevisionSummary,
)
from charter._refs import parse_time
from charter.web._auth import Principal
from charter.web._web import Web
from principles import InvalidInput, NotFound

PREFIX = "/api/v1"
CACHE_CONTROL = "private, max-age=0, must-revalidate"
MARKDOWN = "text/markdown; charset=utf-8"
Format = Literal["json", "markdown"]

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API token: `charter users token NAME --scope read`.",
)
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "bad input (one line)"},
    401: {"model": ApiError, "description": "no valid token or session"},
    404: {"model": ApiError, "description": "no such constitution, label or revision"},
}


def _web(request: Request) -> Web:
    web = request.app.state.web
    assert isinstance(web, Web)
    return web


def _reader(
    request: Request,
    web: Annotated[Web, Depends(_web)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Principal:
    return web.signed_in(request)


WebDep = Annotated[Web, Depends(_web)]
Reader = Annotated[Principal, Depends(_reader)]


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison of `etag` with each tag of an If-None-Match list."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


def list_constitutions(web: WebDep, _me: Reader) -> list[ConstitutionSummary]:
    """Every constitution: its head revision and where its labels point."""
    found = []
    for name in web.store.constitutions():
        head = web.store.revision("head", name)
        labels = {x.name: x.revision for x in web.store.labels(name)}
        found.append(
            ConstitutionSummary(name=name, head=head.number, hash=head.hash, labels=labels)
        )
    return found


def get_constitution(
    request: Request,
    name: str,
    web: WebDep,
    _me: Reader,
    label: Annotated[str | None, Query(description="a label, e.g. production")] = None,
    revision: Annotated[int | None, Query(ge=1, description="a revision number")] = None,
    as_of: Annotated[
        str | None, Query(description="the revision in force at an ISO 8601 time (with zone)")
    ] = None,
    format: Annotated[
        Format | None, Query(description="json or markdown; default: by Accept, else json")
    ] = None,
    if_none_match: Annotated[str | None, Header(description="an ETag seen before")] = None,
) -> Response:
    """The constitution at its head, or at one label, revision number or time (at most one).
    Markdown is the seed file `charter constitution show --format md` prints."""
    if sum(x is not None for x in (label, revision, as_of)) > 1:
        raise InvalidInput("give one of label, revision and as_of, not several")
    if label is not None and (label == "head" or label.isdigit()):
        raise NotFound("label", label)
    when = parse_time(as_of) if as_of is not None else None
    rev = web.store.revision(label or revision or "head", name, as_of=when)
    fmt = format or _negotiated(request)
    etag = f'"{rev.hash}-md"' if fmt == "markdown" else f'"{rev.hash}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    published = PublishedConstitution.of(web.store.constitution(name, at=rev.number), rev, label)
    if fmt == "markdown":
        return Response(published.markdown(), media_type=MARKDOWN, headers=headers)
    return JSONResponse(published.model_dump(mode="json"), headers=headers)


def _negotiated(request: Request) -> Format:
    accept = request.headers.get("accept", "")
    return "markdown" if "text/markdown" in accept and "application/json" not in accept else "json"


def list_revisions(
    name: str,
    web: WebDep,
    _me: Reader,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="newest N only")] = None,
) -> list[RevisionSummary]:
    """The constitution's revisions, newest first, without their principles."""
    return [
        RevisionSummary(
            number=r.number,
            parent=r.parent,
            hash=r.hash,
            author=r.author,
            message=r.message,
            created_at=r.created_at,
        )
        for r in web.store.revisions(name, limit)
    ]


def router() -> APIRouter:
    """The API's routes and its own OpenAPI schema, for `create_app` to include."""
    api = APIRouter(prefix=PREFIX, tags=["constitutions"], responses=ERRORS)
    api.add_api_route(
        "/constitutions", list_constitutions, response_model=list[ConstitutionSummary]
    )
    api.add_api_route(
        "/constitutions/{name}",
        get_constitution,
        response_model=PublishedConstitution,
        responses={
            200: {
                "description": "the constitution, with its ETag",
                "content": {"text/markdown": {"schema": {"type": "string"}}},
            },
            304: {"description": "not modified: the If-None-Match ETag is still current"},
        },
    )
    api.add_api_route(
        "/constitutions/{name}/revisions", list_revisions, response_model=list[RevisionSummary]
    )
    routes = list(api.routes)
    schema: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not schema:
            schema.update(
                get_openapi(
                    title="Charter read API",
                    version="1",
                    description="Fetch constitutions. Send `Authorization: Bearer <token>`.",
                    routes=routes,
                )
            )
        return schema

    api.add_api_route("/openapi.json", openapi, include_in_schema=False)
    return api


async def invalid_request(request: Request, exc: Exception) -> Response:
    """A malformed request to the API: 400 and one line; elsewhere FastAPI's own answer."""
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith(PREFIX + "/"):
        return await request_validation_exception_handler(request, exc)
    first = exc.errors()[0] if exc.errors() else {}
    where = str(first.get("loc", ("request",))[-1])
    message = str(first.get("msg", "invalid")).splitlines()[0]
    return JSONResponse({"error": f"bad {where}: {message}", "code": "invalid"}, 400)
