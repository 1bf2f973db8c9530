"""State-changing routes: approve, reject, edit, comment, rebase, apply. All need CSRF.

Each action is one Store call (one transaction). A refusal re-renders the amendment page
with the reason and the matching status (403 policy, 409 conflict or stale, 400 invalid);
success redirects back to the page (POST/redirect/GET), or answers JSON to a script.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from charter.web._auth import CSRF_FIELD, Principal
from charter.web._pages import amendment_context, amendment_refusal
from charter.web._web import Web, is_htmx, wants_json
from principles import Amendment, CharterError
from store import ReviewOutcome

Csrf = Annotated[str, Form(alias=CSRF_FIELD)]
SeenEdit = Annotated[int | None, Form()]


def _clean(text: str) -> str:
    """Browsers send textarea lines with CRLF; the store keeps LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def register(router: APIRouter, web: Web) -> None:
    store = web.store

    def act(
        request: Request,
        amendment_id: int,
        csrf: str,
        done: str,
        fn: Callable[[Principal], Amendment | ReviewOutcome],
    ) -> Response:
        me = web.guard(request, csrf)
        try:
            result = fn(me)
        except CharterError as exc:
            return amendment_refusal(web, request, me, amendment_id, exc)
        outcome = result if isinstance(result, ReviewOutcome) else ReviewOutcome(amendment=result)
        a = outcome.amendment
        if wants_json(request, me):
            return JSONResponse(
                {
                    "id": a.id,
                    "status": a.status,
                    "edit": a.edit,
                    "approvals": len(a.current_approvals),
                    "revision": outcome.revision.number if outcome.revision else None,
                }
            )
        if is_htmx(request) and done == "commented":
            context = amendment_context(web, me, amendment_id)
            return web.render(request, "_reviews.html", me=me, **context)
        return RedirectResponse(f"/amendments/{amendment_id}?done={done}", status_code=303)

    @router.post("/amendments/{amendment_id}/approve")
    def approve(
        request: Request,
        amendment_id: int,
        csrf_token: Csrf = "",
        seen_edit: SeenEdit = None,
        comment: Annotated[str, Form()] = "",
    ) -> Response:
        return act(
            request,
            amendment_id,
            csrf_token,
            "approved",
            lambda me: store.decide(
                amendment_id,
                me.user.actor,
                "approve",
                _clean(comment),
                seen_edit=seen_edit,
                apply=True,
            ),
        )

    @router.post("/amendments/{amendment_id}/reject")
    def reject(
        request: Request,
        amendment_id: int,
        csrf_token: Csrf = "",
        seen_edit: SeenEdit = None,
        reason: Annotated[str, Form()] = "",
    ) -> Response:
        return act(
            request,
            amendment_id,
            csrf_token,
            "rejected",
            lambda me: store.decide(
                amendment_id, me.user.actor, "reject", _clean(reason), seen_edit=seen_edit
            ),
        )

    @router.post("/amendments/{amendment_id}/comment")
    def comment(
        request: Request,
        amendment_id: int,
        csrf_token: Csrf = "",
        comment: Annotated[str, Form()] = "",
    ) -> Response:
        return act(
            request,
            amendment_id,
            csrf_token,
            "commented",
            lambda me: store.decide(amendment_id, me.user.actor, "comment", _clean(comment)),
        )

    @router.post("/amendments/{amendment_id}/edit")
    def edit(
        request: Request,
        amendment_id: int,
        csrf_token: Csrf = "",
        seen_edit: SeenEdit = None,
        title: Annotated[str | None, Form()] = None,
        text: Annotated[str | None, Form()] = None,
        rationale: Annotated[str | None, Form()] = None,
    ) -> Response:
        def run(me: Principal) -> Amendment:
            state = store.review_state(amendment_id)
            shown = state.changes[0] if state.changes else None
            current = {
                "title": shown.new_title if shown else state.amendment.draft.title,
                "text": shown.new_text if shown else state.amendment.draft.text,
                "rationale": state.amendment.draft.rationale,
            }
            fields = {
                "title": title.strip() if title is not None else None,
                "text": _clean(text).strip() if text is not None else None,
                "rationale": _clean(rationale).strip() if rationale is not None else None,
            }
            changed = {k: v for k, v in fields.items() if v is not None and v != current[k]}
            return store.edit(
                amendment_id,
                me.user.actor,
                seen_edit=seen_edit,
                title=changed.get("title"),
                text=changed.get("text"),
                rationale=changed.get("rationale"),
            )

        return act(request, amendment_id, csrf_token, "edited", run)

    @router.post("/amendments/{amendment_id}/rebase")
    def rebase(request: Request, amendment_id: int, csrf_token: Csrf = "") -> Response:
        return act(
            request,
            amendment_id,
            csrf_token,
            "rebased",
            lambda me: store.rebase(amendment_id, me.user.actor),
        )

    @router.post("/amendments/{amendment_id}/apply")
    def apply(request: Request, amendment_id: int, csrf_token: Csrf = "") -> Response:
        def run(me: Principal) -> ReviewOutcome:
            revision = store.apply(amendment_id, me.user.actor)
            return ReviewOutcome(amendment=store.amendment(amendment_id), revision=revision)

        return act(request, amendment_id, csrf_token, "applied", run)
