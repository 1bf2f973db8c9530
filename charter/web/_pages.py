"""Read-only pages: dashboard, amendment queue and page, principles, constitution, audit log.

Every page needs a signed-in user. A script with an API token (or `Accept: application/json`)
gets the same data as JSON from the amendment queue and amendment pages.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from charter._refs import parse_time
from charter.web._auth import Principal
from charter.web._charts import gap_chart
from charter.web._web import Web, is_htmx, status_for, wants_json
from principles import (
    AWAITING_STATUSES,
    OPEN_STATUSES,
    STATUS_GROUPS,
    CharterError,
    InvalidInput,
    NotFound,
    PrincipleVersion,
    ReviewState,
    side_by_side,
)


def amendment_context(web: Web, me: Principal, amendment_id: int) -> dict[str, Any]:
    """Everything the amendment page shows; also used to re-render it after a refusal."""
    state = web.store.review_state(amendment_id)
    a = state.amendment
    own = me.user.actor.ref == a.proposer or me.user.actor.ref in a.editors
    return {
        "state": state,
        "a": a,
        "diffs": [
            (change, side_by_side(change.old_text, change.new_text or ""))
            for change in state.changes
        ],
        "evidence": web.evidence(web.store, a),
        "events": web.store.audit_log(subject=f"amendment:{amendment_id}"),
        "own": own,
        "can_review": me.user.kind == "human" and a.status == "proposed",
        "can_edit": me.user.kind == "human" and a.status in OPEN_STATUSES,
        "title": f"Amendment {a.id}",
    }


def amendment_refusal(
    web: Web, request: Request, me: Principal, amendment_id: int, exc: CharterError
) -> Response:
    """An action on an amendment refused: JSON to a script, a flash message to HTMX, else the
    amendment page re-rendered with the error, each with the error's HTTP status."""
    status = status_for(exc)
    if wants_json(request, me):
        return JSONResponse({"error": str(exc), "code": exc.code}, status)
    if is_htmx(request):
        response = web.render(request, "_flash.html", status, me=me, error=str(exc))
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    context = amendment_context(web, me, amendment_id)
    return web.render(request, "amendment.html", status, me=me, error=str(exc), **context)


def state_json(state: ReviewState) -> dict[str, Any]:
    return {
        **state.model_dump(mode="json"),
        "requirements": state.requirements(),
        "missing_approvals": state.missing_approvals,
    }


def _pick(versions: list[PrincipleVersion], number: int | None, default: int) -> PrincipleVersion:
    wanted = default if number is None else number
    for v in versions:
        if v.number == wanted:
            return v
    raise NotFound("principle version", f"{versions[0].principle_id}@{wanted}")


def register(router: APIRouter, web: Web) -> None:
    store = web.store

    @router.get("/")
    def dashboard(request: Request) -> Response:
        me = web.signed_in(request)
        states = store.review_states(web.constitution, AWAITING_STATUSES)
        series = web.scores(store, web.constitution)
        return web.render(
            request,
            "dashboard.html",
            me=me,
            title="Dashboard",
            pending=[s for s in states if s.amendment.status in OPEN_STATUSES],
            stale=[s for s in states if s.amendment.status == "stale"],
            revisions=store.revisions(web.constitution, 10),
            head=store.constitution(web.constitution),
            report=store.verify(),
            series=series,
        )

    @router.get("/amendments")
    def queue(request: Request, status: str = "open") -> Response:
        me = web.signed_in(request)
        if status not in STATUS_GROUPS:
            raise InvalidInput(f"unknown filter {status!r}: use {', '.join(STATUS_GROUPS)}")
        states = store.review_states(web.constitution, STATUS_GROUPS[status])
        if wants_json(request, me):
            return JSONResponse([state_json(s) for s in states])
        return web.render(
            request,
            "queue.html",
            me=me,
            title="Amendment queue",
            states=states,
            status=status,
            filters=list(STATUS_GROUPS),
        )

    @router.get("/amendments/{amendment_id}")
    def amendment(request: Request, amendment_id: int) -> Response:
        me = web.signed_in(request)
        context = amendment_context(web, me, amendment_id)
        if wants_json(request, me):
            return JSONResponse(
                {
                    **state_json(context["state"]),
                    "evidence": [e.model_dump(mode="json") for e in context["evidence"]],
                }
            )
        done = request.query_params.get("done", "")
        return web.render(request, "amendment.html", me=me, done=done, **context)

    @router.get("/principles")
    def principles(request: Request) -> Response:
        me = web.signed_in(request)
        return web.render(
            request,
            "principles.html",
            me=me,
            title="Principles",
            head=store.constitution(web.constitution),
        )

    def diff_context(pid: str, a: int | None, b: int | None) -> dict[str, Any]:
        versions = store.history(pid, web.constitution)
        latest = versions[-1].number
        new = _pick(versions, b, latest)
        old = _pick(versions, a, max(1, new.number - 1))
        return {
            "pid": pid,
            "versions": versions,
            "old": old,
            "new": new,
            "rows": side_by_side(old.text, new.text),
        }

    @router.get("/principles/{pid}")
    def principle(
        request: Request,
        pid: str,
        a: Annotated[int | None, Query()] = None,
        b: Annotated[int | None, Query()] = None,
    ) -> Response:
        me = web.signed_in(request)
        context = diff_context(pid, a, b)
        head = store.constitution(web.constitution)
        return web.render(
            request,
            "principle.html",
            me=me,
            title=f"Principle {pid}",
            current=head.get(pid),
            head=head,
            blame=store.blame(pid, None, web.constitution),
            **context,
        )

    @router.get("/principles/{pid}/diff")
    def principle_diff(
        request: Request,
        pid: str,
        a: Annotated[int | None, Query()] = None,
        b: Annotated[int | None, Query()] = None,
    ) -> Response:
        me = web.signed_in(request)
        context = diff_context(pid, a, b)
        if is_htmx(request):
            return web.render(request, "_version_diff.html", me=me, **context)
        return principle(request, pid, a, b)

    @router.get("/constitution")
    def constitution(
        request: Request,
        at: Annotated[str, Query()] = "",
        as_of: Annotated[str, Query()] = "",
    ) -> Response:
        me = web.signed_in(request)
        at, as_of = at.strip(), as_of.strip()
        if at and as_of:
            raise InvalidInput("give a revision or a time, not both")
        c = store.constitution(
            web.constitution, at=at or None, as_of=parse_time(as_of) if as_of else None
        )
        return web.render(
            request,
            "constitution.html",
            me=me,
            title=f"Constitution at revision {c.revision}",
            c=c,
            at=at,
            as_of=as_of,
            revision=store.revision(c.revision, web.constitution),
            revisions=store.revisions(web.constitution, 50),
            labels=store.labels(web.constitution),
        )

    @router.get("/probes")
    def probes(request: Request, run: Annotated[int | None, Query(ge=1)] = None) -> Response:
        me = web.signed_in(request)
        runs = store.probe_runs(web.constitution)
        shown = runs[-1] if runs else None
        if run is not None:
            shown = next((r for r in runs if r.id == run), None)
            if shown is None:
                raise NotFound("probe run", run)
        charts = []
        if shown is not None:
            by: dict[str, list[tuple[str, float, float, float, bool]]] = {}
            for g in shown.report.get("gaps", []):
                if g["metric"] != "length":
                    by.setdefault(g["attribute"], []).append(
                        (
                            f"{g['source']} {g['metric']}",
                            g["gap"],
                            *g["gap_ci"],
                            g["significant"],
                        )
                    )
            charts = [
                (a, gap_chart(f"{a}: gaps between groups", bars, f"probe-{n}"))
                for n, (a, bars) in enumerate(by.items())
            ]
        return web.render(
            request,
            "probes.html",
            me=me,
            title="Bias probes",
            runs=list(reversed(runs)),
            shown=shown,
            charts=charts,
        )

    @router.get("/audit")
    def audit(request: Request, limit: Annotated[int, Query(ge=1, le=5000)] = 100) -> Response:
        me = web.signed_in(request)
        events = store.audit_log(limit=limit)
        return web.render(
            request,
            "audit.html",
            me=me,
            title="Audit log",
            report=store.verify(),
            events=list(reversed(events)),
            limit=limit,
        )
