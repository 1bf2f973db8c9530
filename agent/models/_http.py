"""A small JSON-over-HTTP client with timeouts and bounded retries with backoff.

Retried: connection failures, timeouts, 429 and 5xx, with exponential backoff (doubling
from `backoff` up to `max_backoff` seconds, or the server's `Retry-After` when it gives
one). Not retried: other 4xx, which are the caller's mistake. After the last try the
caller gets `BackendUnavailable` naming the server and the last reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from agent.models._errors import BackendUnavailable
from principles import ModelError

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class JsonClient:
    """POST/GET JSON to one base URL, retrying what is worth retrying."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.attempts = 0
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, payload)

    def get(self, path: str) -> dict[str, Any]:
        return self._request("GET", path, None)

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        reason = "no attempt made"
        retry_after: float | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.sleep(self._delay(attempt, retry_after))
            retry_after = None
            self.attempts += 1
            try:
                response = self._client.request(method, path, json=payload)
            except httpx.TimeoutException as error:
                reason = f"timed out ({type(error).__name__})"
                continue
            except httpx.TransportError as error:
                reason = f"cannot connect ({error or type(error).__name__})"
                continue
            if response.status_code in RETRY_STATUS:
                reason = f"HTTP {response.status_code}: {_message(response)}"
                retry_after = _retry_after(response)
                continue
            if response.is_error:
                raise ModelError(
                    f"model server {url} refused the request: HTTP {response.status_code}: "
                    f"{_message(response)}"
                )
            try:
                body = response.json()
            except ValueError as error:
                raise ModelError(f"model server {url} did not reply with JSON") from error
            if not isinstance(body, dict):
                raise ModelError(f"model server {url} replied with a JSON {type(body).__name__}")
            return body
        raise BackendUnavailable(url, f"{reason} after {self.max_retries + 1} tries")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    """The server's error message, on one line and short."""
    try:
        body = response.json()
        error = body.get("error", body) if isinstance(body, dict) else body
        text = error.get("message", error) if isinstance(error, dict) else error
    except ValueError:
        text = response.text
    return " ".join(str(text).split())[:300] or response.reason_phrase
