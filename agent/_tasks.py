"""Task suites: JSONL files of prompts, and the built-in suite shipped with Charter."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from agent._jsonl import objects
from principles import InvalidInput, Task, validation_message

BUILTIN = "builtin"


def derived_id(prompt: str) -> str:
    """The id of a task given without one: stable across files, machines and releases
    (`t-` and the first 10 hex digits of the prompt's SHA-256), so a plain JSONL of prompts
    splits into train and held-out the same way every time."""
    return "t-" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:10]


def parse_tasks(text: str, source: str) -> list[Task]:
    """One JSON object per line: {prompt, id?, category?, tags?, reference?}; blank lines and
    lines starting with # are skipped. A line without an id gets `derived_id(prompt)`, so two
    identical prompts are still reported as duplicates. The first bad line is reported with
    its number."""
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for n, where, data in objects(text, source, comments=True):
        derived = "id" not in data and isinstance(data.get("prompt"), str)
        if derived:
            data = {**data, "id": derived_id(data["prompt"])}
        try:
            task = Task.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"{where}: {validation_message(exc)}") from exc
        if task.id in seen:
            if derived:
                raise InvalidInput(
                    f"{where}: the same prompt as line {seen[task.id]} "
                    f"(derived task id {task.id!r} appears twice)"
                )
            raise InvalidInput(f"{where}: task id {task.id!r} appears twice")
        seen[task.id] = n
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
