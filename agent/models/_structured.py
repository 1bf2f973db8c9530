"""Turning model text into validated pydantic instances, and asking again when it fails.

A reply is accepted only if it parses and validates against the schema in full; nothing
from a failed reply is returned. The re-ask message carries the validation error so that
the model can correct itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.models._types import ChatMessage, SchemaT

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def schema_json(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a pydantic model, as sent to servers and grammar compilers."""
    return schema.model_json_schema()


def schema_name(schema: type[BaseModel]) -> str:
    """A name servers accept for a `json_schema` response format (letters, digits, _ and -)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64] or "reply"


def parse_reply(text: str, schema: type[SchemaT]) -> SchemaT:
    """Validate `text` (bare JSON, or JSON in one markdown fence) against `schema`.

    Raises `pydantic.ValidationError` when the text is not a valid instance.
    """
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text.strip()
    return schema.model_validate_json(body)


def describe_error(text: str, error: ValidationError) -> str:
    """A short, model-readable account of why `text` was rejected."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}"
        for e in error.errors(include_url=False)[:5]
    )
    return f"Your reply was not valid: {problems}."


def schema_instruction(schema: type[BaseModel]) -> ChatMessage:
    """A turn telling a model which JSON object to answer with: an example of its form.

    Small models copy a concrete example far more reliably than they follow a JSON
    schema (shown the schema, SmolLM2-135M tends to echo it), so the instruction is the
    example plus the allowed values of fields that have a fixed set of them.
    """
    spec = schema_json(schema)
    example = json.dumps(example_value(spec, spec), ensure_ascii=False)
    choices = [
        f"{name}: one of {', '.join(json.dumps(v) for v in values)}"
        for name, values in _choices(spec).items()
    ]
    rules = f" ({'; '.join(choices)})" if choices else ""
    return ChatMessage(
        role="user",
        content=f"Reply with only a JSON object of this form{rules}: {example}",
    )


def _choices(spec: dict[str, Any]) -> dict[str, list[Any]]:
    found = {}
    for name, node in spec.get("properties", {}).items():
        if "$ref" in node:
            node = spec.get("$defs", {}).get(str(node["$ref"]).rsplit("/", 1)[-1], {})
        if node.get("enum"):
            found[name] = list(node["enum"])
    return found


def example_value(node: dict[str, Any], root: dict[str, Any], depth: int = 0) -> Any:
    """An example value for a JSON-schema node (first enum value, "...", 0, []): the form
    shown to servers that ignore `response_format`."""
    if depth > 8:
        return None
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        return example_value(root.get("$defs", {}).get(name, {}), root, depth + 1)
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if node.get(key):
            return example_value(node[key][0], root, depth + 1)
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        return {
            name: example_value(sub, root, depth + 1)
            for name, sub in node.get("properties", {}).items()
        }
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return node.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "..."


def reask_turns(text: str, error: ValidationError) -> list[ChatMessage]:
    """The turns appended to a conversation after a reply that failed validation."""
    return [
        ChatMessage(role="assistant", content=text),
        ChatMessage(
            role="user",
            content=f"{describe_error(text, error)} Answer again with only the corrected JSON.",
        ),
    ]
