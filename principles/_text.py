"""Text that people read: no control characters.

A terminal escape (`ESC [ 8 m` hides what follows), a carriage return or a backspace (which
overwrite what came before) and the bidirectional overrides (which reorder it, "Trojan
Source") let a stored text show a reviewer something other than what it says. Such
characters are refused when a text enters the domain; multi-line texts keep newline and tab.

Rows the store wrote before this check may hold them: validating with the `STORED` context
loads them as they are (the shell escapes them when it prints).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import AfterValidator, ValidationInfo

from principles._errors import InvalidInput

# C0 controls, DEL, C1 controls (CSI is U+009B), and the bidirectional embeddings, overrides
# and isolates (U+202A-U+202E, U+2066-U+2069).
CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
PROSE_CONTROL_CHARS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""The control characters outside newline (U+000A) and tab (U+0009)."""
STORED: Final[dict[str, Any]] = {"stored": True}
"""Validation context for rows the store itself wrote (see the module docstring)."""


def _stored(info: ValidationInfo | None) -> bool:
    context = info.context if info is not None else None
    return isinstance(context, dict) and bool(context.get("stored"))


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def check_line(value: str, what: str = "a name or title") -> str:
    """`value` if it holds no control character at all (no newline, no tab either)."""
    found = CONTROL_CHARS.search(value)
    if found:
        raise InvalidInput(
            f"{what} may not hold control characters ({_describe(found.group())} at "
            f"position {found.start() + 1})"
        )
    return value


def check_prose(value: str, what: str = "a text") -> str:
    """`value` with CRLF line ends made LF, if it holds no control character other than
    newline and tab."""
    value = value.replace("\r\n", "\n")
    found = PROSE_CONTROL_CHARS.search(value)
    if found:
        raise InvalidInput(
            f"{what} may not hold control characters other than newline and tab "
            f"({_describe(found.group())} at position {found.start() + 1})"
        )
    return value


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every control character but newline and tab written as a visible escape
    (`\\x1b`, `\\u202e`): what a terminal or a page shows a reviewer instead of obeying it."""
    return PROSE_CONTROL_CHARS.sub(_escape, text)


def _line(value: str, info: ValidationInfo) -> str:
    try:
        return value if _stored(info) else check_line(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from exc


def _prose(value: str, info: ValidationInfo) -> str:
    try:
        return value if _stored(info) else check_prose(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from exc


Line = Annotated[str, AfterValidator(_line)]
"""A single line people read (a title, a name): no control characters at all."""
Prose = Annotated[str, AfterValidator(_prose)]
"""Text people read (a principle, a rationale, a comment): newline and tab only."""
