"""Task suites: JSONL files of prompts, and the built-in suite shipped with Charter."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from principles import InvalidInput, Task, validation_message

BUILTIN = "builtin"


def parse_tasks(text: str, source: str) -> list[Task]:
    """One JSON object per line: {id, prompt, category?, tags?, reference?}; blank lines and
    lines starting with # are skipped. The first bad line is reported with its number."""
    tasks: list[Task] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{source}:{n}: not valid JSON ({exc.msg})") from exc
        if not isinstance(data, dict):
            raise InvalidInput(f"{source}:{n}: each line must be a JSON object")
        try:
            task = Task.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"{source}:{n}: {validation_message(exc)}") from exc
        if task.id in seen:
            raise InvalidInput(f"{source}:{n}: task id {task.id!r} appears twice")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise InvalidInput(f"{source}: no tasks")
    return tasks


def load_tasks(source: str) -> list[Task]:
    """`builtin` or a path to a JSONL file."""
    if source == BUILTIN:
        text = resources.files("agent").joinpath("data/tasks.jsonl").read_text(encoding="utf-8")
        return parse_tasks(text, "builtin tasks")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read task file {path}: {exc.strerror or exc}") from exc
    return parse_tasks(text, str(path))
