"""Labelling evidence critiques from the amendment page: a person says the critic was right
or wrong (or, on an unclear verdict, gives the verdict). Needs CSRF like every action.

One Store call (`label_critique`, scoped to the amendment's evidence). The agent's identity
is refused with 403 and the refusal audited by the store. Success redirects back to the page,
swaps the evidence section for HTMX, or answers JSON to a script.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from charter.web._auth import CSRF_FIELD
from charter.web._pages import amendment_refusal
from charter.web._web import Web, is_htmx, wants_json
from principles import CharterError, Judgment

Csrf = Annotated[str, Form(alias=CSRF_FIELD)]


def register(router: APIRouter, web: Web) -> None:
    store = web.store

    @router.post("/amendments/{amendment_id}/critiques/{critique_id}/label")
    def label_critique(
        request: Request,
        amendment_id: int,
        critique_id: int,
        csrf_token: Csrf = "",
        judgment: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
    ) -> Response:
        me = web.guard(request, csrf_token)
        try:
            label = store.label_critique(
                critique_id,
                cast(Judgment, judgment),  # the store refuses anything but a judgment
                me.user.actor,
                note.strip(),
                amendment_id=amendment_id,
            )
        except CharterError as exc:
            return amendment_refusal(web, request, me, amendment_id, exc)
        if wants_json(request, me):
            return JSONResponse(
                {
                    "id": label.id,
                    "critique_id": critique_id,
                    "principle": label.principle_id,
                    "label": label.binary,
                    "labeller": label.labeller.ref,
                }
            )
        if is_htmx(request):
            amendment = store.amendment(amendment_id)
            return web.render(
                request,
                "_evidence.html",
                me=me,
                a=amendment,
                evidence=web.evidence(store, amendment),
                labelled=True,
            )
        return RedirectResponse(f"/amendments/{amendment_id}?done=labelled", status_code=303)
