"""Parsing what people type to name things, shared by the CLI and the web UI.

Each parser either returns a well-formed value or raises `InvalidInput` with a one-line
message saying what to type instead; neither edge imports the other to get them.
"""

from __future__ import annotations

from datetime import datetime

from principles import InvalidInput


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`ID` or `ID@V` -> (id, version or None)."""
    pid, sep, version = ref.partition("@")
    if not sep:
        return pid, None
    if not version.isdigit():
        raise InvalidInput(f"bad version in {ref!r}: use ID@NUMBER")
    return pid, int(version)


def parse_time(value: str) -> datetime:
    """An ISO 8601 time with a timezone (`Z` for UTC); a naive time is refused."""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"bad time {value!r}: use ISO 8601, e.g. 2026-11-26T12:00:00Z") from exc
    if when.tzinfo is None:
        raise InvalidInput(f"time {value!r} needs a timezone, e.g. a trailing Z for UTC")
    return when
