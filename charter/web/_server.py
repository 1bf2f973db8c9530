"""Running the review UI: where its session secret comes from, uvicorn, and the webhook
dispatcher that runs beside it."""

from __future__ import annotations

import os

from store import Store

SECRET_ENV = "CHARTER_SECRET"
SECRET_NAME = "web-session"


def resolve_secret(store: Store) -> str:
    """`CHARTER_SECRET` when set; otherwise a random secret generated once and kept in the
    database, so that every server on the same database accepts the same sign-in forms.
    It signs only the sign-in form's CSRF cookie: sessions are rows, and no secret makes one."""
    return os.environ.get(SECRET_ENV) or store.secret(SECRET_NAME)


def serve(
    store: Store,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    constitution: str = "default",
    secure_cookies: bool = False,
) -> None:
    """Serve the review UI until interrupted."""
    import uvicorn

    from charter._hooks import Dispatcher
    from charter.web._app import create_app

    app = create_app(
        store,
        secret=resolve_secret(store),
        constitution=constitution,
        secure_cookies=secure_cookies,
    )
    with Dispatcher(store):  # webhook deliveries, beside the requests, never in their way
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
