"""Charter's review web UI: FastAPI, server-rendered Jinja2 templates, HTMX served locally.

`create_app(store, secret=...)` builds the app with its dependencies passed in; `serve`
runs it with uvicorn. Importing this package imports FastAPI, so the CLI imports it only
inside the `serve` command.
"""

from charter.web._app import create_app
from charter.web._auth import LoginLimiter
from charter.web._charts import line_chart
from charter.web._server import resolve_secret, serve
from charter.web._sources import (
    EvidenceItem,
    EvidenceSource,
    ScorePoint,
    ScoreSeries,
    ScoreSource,
    evidence_from_ids,
    evidence_from_runs,
    no_scores,
    run_scores,
)

__all__ = [
    "EvidenceItem",
    "EvidenceSource",
    "LoginLimiter",
    "ScorePoint",
    "ScoreSeries",
    "ScoreSource",
    "create_app",
    "evidence_from_ids",
    "evidence_from_runs",
    "line_chart",
    "no_scores",
    "resolve_secret",
    "run_scores",
    "serve",
]
