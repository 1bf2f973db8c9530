"""Canonical content hashing. The same logical content always hashes to the same digest.

Canonical JSON: sorted keys, no insignificant whitespace, UTF-8, datetimes as ISO 8601 in UTC.
A hash covers the content plus its parent's hash, so a chain breaks if any link changes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def canonical_time(value: datetime) -> str:
    """A datetime as hashed: ISO 8601 in UTC, to the microsecond."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in hashed content")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return canonical_time(value)
    raise TypeError(f"cannot hash {type(value).__name__}")


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
)


def canonical_json(content: Any) -> str:
    return _ENCODER.encode(content)


def content_hash(content: Any, parent_hash: str | None) -> str:
    """sha256 over the parent's hash and the canonical JSON of `content`."""
    digest = hashlib.sha256()
    digest.update((parent_hash or GENESIS).encode())
    digest.update(b"\n")
    digest.update(canonical_json(content).encode())
    return digest.hexdigest()


def version_hash(
    *,
    principle_id: str,
    number: int,
    title: str,
    text: str,
    entrenched: bool,
    author: str,
    rationale: str,
    created_at: datetime,
    parent_hash: str | None,
) -> str:
    return content_hash(
        {
            "principle_id": principle_id,
            "number": number,
            "title": title,
            "text": text,
            "entrenched": entrenched,
            "author": author,
            "rationale": rationale,
            "created_at": created_at,
        },
        parent_hash,
    )


def revision_hash(
    *,
    constitution: str,
    number: int,
    entries: dict[str, str],
    author: str,
    message: str,
    created_at: datetime,
    parent_hash: str | None,
) -> str:
    """`entries` maps principle ids to their version hashes, so content is covered too."""
    return content_hash(
        {
            "constitution": constitution,
            "number": number,
            "entries": entries,
            "author": author,
            "message": message,
            "created_at": created_at,
        },
        parent_hash,
    )


def event_hash(
    *,
    seq: int,
    at: datetime | str,
    actor: str,
    action: str,
    subject: str,
    payload: dict[str, Any],
    prev_hash: str,
) -> str:
    """`at` is a datetime or its `canonical_time` text (which a verifier reading stored
    text can build without parsing it: same digest)."""
    return content_hash(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "payload": payload,
        },
        prev_hash,
    )
