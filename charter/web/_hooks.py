"""The webhooks page (admins only): the hooks and their recent deliveries, read-only.

Shows each delivery's status, attempts and last error, as `charter hooks log` does; a
script with an admin's token gets the same as JSON. Secrets are never shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from charter.web._web import Web, wants_json
from principles import DELIVERY_STATUSES, PolicyViolation


def register(router: APIRouter, web: Web) -> None:
    @router.get("/hooks")
    def hooks(
        request: Request,
        status: Annotated[str | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        me = web.signed_in(request)
        if not me.user.is_admin:
            raise PolicyViolation("only an admin may see the webhooks")
        found = web.store.hooks(removed=True)
        deliveries = web.store.deliveries(status=status or None, limit=limit)
        if wants_json(request, me):
            return JSONResponse(
                {
                    "hooks": [h.model_dump(mode="json") for h in found],
                    "deliveries": [d.model_dump(mode="json") for d in deliveries],
                }
            )
        return web.render(
            request,
            "hooks.html",
            me=me,
            title="Webhooks",
            hooks=found,
            deliveries=deliveries,
            statuses=DELIVERY_STATUSES,
            status=status or "",
            limit=limit,
        )
