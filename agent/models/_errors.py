"""Errors of the model layer, all below `principles.ModelError`.

Each carries its facts as attributes so a caller can act on them without parsing text.
"""

from __future__ import annotations

from principles import ModelError


class UnknownBackend(ModelError):
    """A backend URI names a scheme that no backend registered."""

    code = "unknown-backend"

    def __init__(self, uri: str, known: list[str]) -> None:
        super().__init__(f"unknown model URI {uri!r}: expected one of {', '.join(known)}")
        self.uri = uri
        self.known = known


class ModelNotInstalled(ModelError):
    """The weights a URI names are not on this machine; `install` is the command that fixes it."""

    code = "model-not-installed"

    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} is not installed; install it with: {install}")
        self.what = what
        self.install = install


class BackendUnavailable(ModelError):
    """A model server could not be reached or kept failing after the allowed retries."""

    code = "backend-unavailable"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"model server {url} unavailable: {reason}")
        self.url = url
        self.reason = reason
