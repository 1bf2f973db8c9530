"""Fetch a constitution from a Charter server: a small client for applications.

    from charter.client import ConstitutionClient

    client = ConstitutionClient("https://charter.example.org", token, cache_dir="/var/cache/app")
    constitution = client.get("default", label="production")
    system_prompt = constitution.markdown()

The token needs only the `read` scope (`charter users token app --scope read`).

Guarantees:
- Within `ttl` seconds of a good answer, `get` answers from memory without a request.
- After that it revalidates with `If-None-Match`; a 304 keeps the copy for another `ttl`.
- When the server cannot be reached, times out, or answers 5xx, `get` returns the last good
  copy (from memory, else from `cache_dir`, so a restarted process survives an outage),
  logs a warning on the `charter.client` logger, and tries the server again after `ttl`.
  With no copy at all it raises `ServerUnavailable`.
- A refusal (401 bad token, 404 unknown name, 400 bad input) raises `ClientError` with the
  server's one-line message; it is never hidden behind a cached copy.
- Disk copies are written atomically (a temporary file, then a rename).
- Imports httpx, pydantic and the pure domain only: never the web app, the store or torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from charter._api_models import PublishedConstitution, PublishedPrinciple
from principles import CharterError

__all__ = [
    "ClientError",
    "ConstitutionClient",
    "PublishedConstitution",
    "PublishedPrinciple",
    "ServerUnavailable",
]

log = logging.getLogger("charter.client")
Key = tuple[str, str | None, int | None, str | None]


class ClientError(CharterError):
    """The server refused the request (`status` is its HTTP status), or there is no copy."""

    code = "client"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerUnavailable(ClientError):
    """The server could not answer and no earlier copy of the constitution is kept."""

    code = "unavailable"


@dataclass
class _Copy:
    etag: str
    body: PublishedConstitution
    fresh_until: float


class ConstitutionClient:
    """Reads constitutions from `base_url` with an API token; see the module's guarantees.
    Safe to share between threads (one request at a time)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ttl: float = 60.0,
        timeout: float = 5.0,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.ttl = ttl
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        self._copies: dict[Key, _Copy] = {}
        self._lock = threading.Lock()

    def get(
        self,
        name: str = "default",
        *,
        label: str | None = None,
        revision: int | None = None,
        as_of: str | None = None,
    ) -> PublishedConstitution:
        """Constitution `name` at its head, or at a label, revision number or ISO 8601 time
        (with a timezone); from the cache while it is fresh."""
        key: Key = (name, label, revision, as_of)
        with self._lock:
            copy = self._copies.get(key) or self._from_disk(key)
            if copy is not None and time.monotonic() < copy.fresh_until:
                return copy.body
            return self._fetch(key, copy)

    def _fetch(self, key: Key, copy: _Copy | None) -> PublishedConstitution:
        name, label, revision, as_of = key
        params = {
            k: str(v)
            for k, v in (("label", label), ("revision", revision), ("as_of", as_of))
            if v is not None
        }
        headers = {"If-None-Match": copy.etag} if copy is not None else {}
        try:
            response = self._http.get(
                f"/api/v1/constitutions/{quote(name, safe='')}", params=params, headers=headers
            )
        except httpx.TransportError as exc:
            return self._fall_back(key, copy, f"{type(exc).__name__}: {exc}")
        if response.status_code == 304 and copy is not None:
            copy.fresh_until = time.monotonic() + self.ttl
            self._copies[key] = copy
            return copy.body
        if response.status_code >= 500:
            return self._fall_back(key, copy, f"the server answered {response.status_code}")
        if response.status_code != 200:
            raise ClientError(_refusal(response), response.status_code)
        try:
            body = PublishedConstitution.model_validate_json(response.content)
        except ValidationError:
            return self._fall_back(key, copy, "the server's answer is not a constitution")
        fresh = _Copy(response.headers.get("etag", ""), body, time.monotonic() + self.ttl)
        self._copies[key] = fresh
        self._to_disk(key, fresh)
        return body

    def _fall_back(self, key: Key, copy: _Copy | None, why: str) -> PublishedConstitution:
        if copy is None:
            raise ServerUnavailable(
                f"no copy of constitution {key[0]} to fall back on: {self._http.base_url} "
                f"could not answer ({why})"
            )
        log.warning(
            "charter server %s could not answer (%s): using the last good copy of %s, revision %d",
            self._http.base_url,
            why,
            key[0],
            copy.body.revision,
        )
        copy.fresh_until = time.monotonic() + self.ttl
        self._copies[key] = copy
        return copy.body

    def _path(self, key: Key) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(json.dumps([str(self._http.base_url), *key]).encode()).hexdigest()
        return self.cache_dir / f"constitution-{digest[:32]}.json"

    def _from_disk(self, key: Key) -> _Copy | None:
        """A copy kept by an earlier process, due for revalidation; None if none or unreadable."""
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            body = PublishedConstitution.model_validate(saved["body"])
            return _Copy(str(saved["etag"]), body, fresh_until=0.0)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the unreadable cached copy %s: %s", path, exc)
            return None

    def _to_disk(self, key: Key, copy: _Copy) -> None:
        path = self._path(key)
        if path is None:
            return
        data = json.dumps({"etag": copy.etag, "body": copy.body.model_dump(mode="json")})
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".constitution-", suffix=".tmp")
        except OSError as exc:
            log.warning("could not keep a copy in %s: %s", path.parent, exc)
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            log.warning("could not keep a copy in %s: %s", path.parent, exc)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConstitutionClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _refusal(response: httpx.Response) -> str:
    """The server's one-line error, prefixed with the status."""
    try:
        message = str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        message = response.reason_phrase or "refused"
    return f"{response.status_code}: {message}"
