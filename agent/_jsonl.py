"""JSONL texts read one object a line, every error naming its line as `source:N`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from principles import InvalidInput


def objects(
    text: str, source: str, *, comments: bool = False
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """`(line number, where, object)` for every line that is not blank (nor, with
    `comments`, starts with `#`); a line that is not a JSON object raises `InvalidInput`
    naming it."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (comments and line.lstrip().startswith("#")):
            continue
        where = f"{source}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise InvalidInput(f"{where}: each line must be a JSON object")
        yield number, where, obj
