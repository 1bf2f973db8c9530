"""Output: data on stdout (JSON with --json), messages on stderr, no colour off a TTY.

Whatever reaches a terminal through these helpers is safe to read: a control character
(a terminal escape, a carriage return, a bidirectional override) stored in a text prints as
a visible escape such as `\\x1b` (JSON escapes it as `\\u001b`), user text is never read
as Rich markup, and messages never show a database URL's password.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from principles import PROSE_CONTROL_CHARS, visible
from store import redact_credentials


class _Console(Console):
    """A Rich console whose `print` escapes control characters in every string it is given."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(visible(o) if isinstance(o, str) else o for o in objects), **kwargs)


# Off a terminal, tables are as wide as their content needs (no wrapping at 80 columns).
out = _Console(highlight=False, width=None if sys.stdout.isatty() else 240)
err = _Console(stderr=True, highlight=False, soft_wrap=True)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a named tuple row
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _json_escape(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group()):04x}"


def emit_json(value: Any) -> None:
    """`value` as JSON; control characters that JSON leaves raw (DEL, C1, bidirectional
    overrides) are written as `\\uXXXX` escapes too, which decode to the same value."""
    text = json.dumps(_plain(value), indent=2, ensure_ascii=False)
    sys.stdout.write(PROSE_CONTROL_CHARS.sub(_json_escape, text) + "\n")


def _cell(value: object) -> Text:
    """A table cell or title: plain text (never markup), control characters escaped."""
    return Text(visible("" if value is None else str(value)))


def moment(value: datetime | None) -> str:
    """A UTC time as a table shows it (to the second); empty for none."""
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def with_ci(value: float | None, ci: Any = None, *, signed: bool = False) -> str:
    """A figure to three places, with its 95% CI to two when it has one (with signs for an
    effect); `-` for none."""
    if value is None:
        return "-"
    sign = "+" if signed else ""
    return f"{value:{sign}.3f}" + (f" [{ci[0]:{sign}.2f}, {ci[1]:{sign}.2f}]" if ci else "")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=_cell(title) if title else None, show_lines=False, header_style="bold")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(_cell(v) for v in r))
    out.print(t)


def say(message: str) -> None:
    """A message for a person, on stderr (never markup; no URL password)."""
    err.print(redact_credentials(message), markup=False)


def diff_text(text: str) -> None:
    """A unified diff, coloured on a terminal."""
    for line in text.splitlines():
        style = None
        if line.startswith("+") and not line.startswith("+++"):
            style = "green"
        elif line.startswith("-") and not line.startswith("---"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        out.print(line, style=style, markup=False)


def fail(message: str) -> None:
    """One error line on stderr (the text is never parsed as markup)."""
    err.print("error: ", style="red", end="")
    err.print(redact_credentials(message), markup=False)


class SaidProgress:
    """Progress (`agent._progress.Progress`) for a one-shot command: its messages, a line
    each on stderr; steps and counts are not shown."""

    def step(self, iteration: int, iterations: int, step: str, total: int) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None

    def message(self, text: str) -> None:
        say(text)
