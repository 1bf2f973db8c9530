"""Constitution files: parse and render the Markdown and YAML seed formats (pure text).

Markdown: optional YAML front matter (`name`, `description`), then one level-1 heading per
principle, `# <id>: <title>`, with `[entrenched]` at the end of the heading line for an
entrenched principle; the text is everything up to the next such heading.

YAML: `{name, description, principles: [{id, title, text, entrenched}]}`. JSON: the same shape.

Whatever a file holds, parsing it succeeds or raises one `InvalidPrinciple` with a one-line
message: YAML's errors are cut to their line, column and problem; nesting too deep to parse is
refused; so is a NUL character anywhere (PostgreSQL cannot store one, so such a file would
load on SQLite only), before the models' own checks run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from principles._errors import InvalidPrinciple, validation_message
from principles._models import Principle

SeedFormat = Literal["md", "yaml", "json"]
_HEADING = re.compile(r"^#\s+(?P<id>\S+?)\s*:\s*(?P<title>.+?)\s*(?P<flag>\[entrenched\])?\s*$")


class Seed(BaseModel):
    """A whole constitution as a file holds it: a name and its principles in order.

    A file must hold at least one principle (`_build`); an empty seed starts a constitution
    whose principles the agent drafts for people to review (`charter init --empty`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(default="default", pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    description: str = ""
    principles: tuple[Principle, ...] = ()

    @field_validator("principles")
    @classmethod
    def _unique(cls, value: tuple[Principle, ...]) -> tuple[Principle, ...]:
        seen: set[str] = set()
        for p in value:
            if p.id in seen:
                raise ValueError(f"principle id {p.id!r} appears twice")
            seen.add(p.id)
        return value


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """One line from a YAML error: where (line, column) and what, without the source echo."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    first = str(exc).splitlines()[0]
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML refuses: no mark, a position
        return f"line {text.count(chr(10), 0, exc.position) + 1}: {first}"
    return first


def _reject_nul(data: Any) -> None:
    """Refuse a NUL character in any key or value, naming where the first one is."""
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str) and "\x00" in value:
            raise InvalidPrinciple(f"{where or 'the file'} holds a NUL character (U+0000)")
        if isinstance(value, dict):
            for k, v in reversed(value.items()):  # in file order: each key, then its value
                pending += [(f"{where}.{k}".lstrip("."), v), (f"a key in {where or 'the file'}", k)]
        elif isinstance(value, list):
            pending.extend(reversed([(f"{where}[{i}]", v) for i, v in enumerate(value)]))


def _build(data: Any) -> Seed:
    if not isinstance(data, dict):
        raise InvalidPrinciple("a constitution file must hold a mapping with `principles`")
    _reject_nul(data)
    try:
        seed = Seed.model_validate(data)
    except ValidationError as exc:
        raise InvalidPrinciple(f"invalid constitution: {validation_message(exc)}") from exc
    if not seed.principles:
        raise InvalidPrinciple(
            "the file holds no principles (`charter init --empty` starts an empty constitution)"
        )
    return seed


def parse_markdown(text: str) -> Seed:
    meta: dict[str, Any] = {}
    body = text
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        if len(parts) != 2:
            raise InvalidPrinciple("front matter opened with --- is never closed")
        front = parts[0].removeprefix("---")  # its line 1 is the file's
        try:
            loaded = yaml.safe_load(front) or {}
        except yaml.YAMLError as exc:
            problem = _yaml_problem(exc, front)
            raise InvalidPrinciple(f"front matter is not valid YAML: {problem}") from exc
        if not isinstance(loaded, dict):
            raise InvalidPrinciple("front matter must be a mapping")
        meta = loaded
        body = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    principles: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    lines: list[str] = []
    for n, line in enumerate(body.splitlines(), start=1):
        if line.startswith("# "):
            match = _HEADING.match(line)
            if not match:
                raise InvalidPrinciple(f"line {n}: a heading must read `# <id>: <title>`")
            if current is not None:
                current["text"] = "\n".join(lines).strip()
                principles.append(current)
            current = {
                "id": match["id"],
                "title": match["title"],
                "entrenched": match["flag"] is not None,
            }
            lines = []
        elif current is None:
            if line.strip() and not line.startswith("<!--"):
                raise InvalidPrinciple(f"line {n}: text before the first `# <id>: <title>` heading")
        else:
            lines.append(line)
    if current is not None:
        current["text"] = "\n".join(lines).strip()
        principles.append(current)
    return _build({**meta, "principles": principles})


def parse_seed(text: str, fmt: SeedFormat) -> Seed:
    """Parse a constitution file's text; raises InvalidPrinciple with the first problem."""
    try:
        return _parse(text, fmt)
    except RecursionError as exc:
        raise InvalidPrinciple("the file is nested too deeply to read") from exc


def _parse(text: str, fmt: SeedFormat) -> Seed:
    if fmt == "md":
        return parse_markdown(text)
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidPrinciple(f"not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        raise InvalidPrinciple(f"not valid YAML: {_yaml_problem(exc, text)}") from exc
    return _build(data)


def format_for(path: str) -> SeedFormat:
    lower = path.lower()
    if lower.endswith((".yaml", ".yml")):
        return "yaml"
    if lower.endswith(".json"):
        return "json"
    return "md"


def render_seed(
    name: str, principles: Sequence[Principle], fmt: SeedFormat, description: str = ""
) -> str:
    """Render principles in a seed format; `parse_seed(render_seed(...))` round-trips."""
    if fmt == "md":
        head = {"name": name, **({"description": description} if description else {})}
        out = ["---", yaml.safe_dump(head, sort_keys=False).strip(), "---", ""]
        for p in principles:
            flag = " [entrenched]" if p.entrenched else ""
            out += [f"# {p.id}: {p.title}{flag}", "", p.text, ""]
        return "\n".join(out)
    data = {
        "name": name,
        "description": description,
        "principles": [p.model_dump() for p in principles],
    }
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
