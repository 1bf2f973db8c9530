"""Counterfactual bias probe suites: templated requests about a person, and their variants.

A suite has attributes (gender, ethnicity, religion, ...), each with two groups or more, each
group with one filler or more (a name, a clause such as ", who is Muslim,", and pronouns),
and templates whose `{person}` slot is always the subject of a verb. A template's variants
for an attribute fill the slot with every filler of every group and leave everything else
as the neutral filler (`Filler()`: Taylor, they/them/their): variants of one template differ
only in the person. Generation is deterministic: suite order, then attribute, group and
filler order.

Suites are YAML (`attributes` and `templates`; `attributes` may be left out to use the
built-in ones) or JSONL (one template per line, with the built-in attributes). The built-in
suite is `agent/data/bias_probes.yaml`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from principles import InvalidInput, validation_message

BUILTIN = "builtin"
Kind = Literal["decision", "advice", "description", "joke"]
GENERATED: tuple[Kind, ...] = ("advice", "description", "joke")
SLOTS = {"person", "they", "them", "their"}
_SLOT = re.compile(r"\{([^{}]*)\}")


class Filler(BaseModel):
    """Who the person is in one variant."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(default="Taylor", min_length=1, max_length=60)
    desc: str = Field(default="", max_length=80)
    they: str = Field(default="they", min_length=1, max_length=12)
    them: str = Field(default="them", min_length=1, max_length=12)
    their: str = Field(default="their", min_length=1, max_length=12)

    @property
    def person(self) -> str:
        return self.name + self.desc

    @property
    def core(self) -> str:
        """The clause without its commas ("who is Muslim"), or empty."""
        return self.desc.strip(" ,")


class Template(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    kind: Kind
    text: str = Field(min_length=10, max_length=1000)

    @field_validator("text")
    @classmethod
    def _slots(cls, text: str) -> str:
        used = set(_SLOT.findall(text))
        if "person" not in used:
            raise ValueError("a template needs a {person} slot")
        if unknown := sorted(used - SLOTS):
            raise ValueError(f"unknown slot(s) {', '.join('{' + u + '}' for u in unknown)}")
        return text


Groups = dict[str, tuple[Filler, ...]]


class Suite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = "suite"
    attributes: dict[str, Groups]
    templates: tuple[Template, ...] = Field(min_length=1)

    @field_validator("attributes")
    @classmethod
    def _groups(cls, attributes: dict[str, Groups]) -> dict[str, Groups]:
        if not attributes:
            raise ValueError("a suite needs at least one attribute")
        for attribute, groups in attributes.items():
            if len(groups) < 2:
                raise ValueError(f"attribute {attribute!r} needs at least two groups")
            if empty := [g for g, fillers in groups.items() if not fillers]:
                raise ValueError(f"attribute {attribute!r}: group {empty[0]!r} has no filler")
        return attributes

    @field_validator("templates")
    @classmethod
    def _unique(cls, templates: tuple[Template, ...]) -> tuple[Template, ...]:
        seen: set[str] = set()
        for t in templates:
            if t.id in seen:
                raise ValueError(f"template id {t.id!r} appears twice")
            seen.add(t.id)
        return templates


@dataclass(frozen=True)
class Variant:
    """One request: a template with the person of one group filled in."""

    template: Template
    attribute: str
    group: str
    filler: Filler

    @property
    def prompt(self) -> str:
        return fill(self.template.text, self.filler)

    @property
    def key(self) -> str:
        return f"{self.template.id}/{self.attribute}/{self.group}/{self.filler.name}"


def fill(text: str, filler: Filler) -> str:
    values = {
        "person": filler.person,
        "they": filler.they,
        "them": filler.them,
        "their": filler.their,
    }
    return _SLOT.sub(lambda m: values[m.group(1)], text)


def variants(suite: Suite, limit: int | None = None) -> list[Variant]:
    """Every variant of the first `limit` templates (all without one), in a fixed order."""
    return [
        Variant(t, attribute, group, f)
        for t in suite.templates[:limit]
        for attribute, groups in suite.attributes.items()
        for group, fillers in groups.items()
        for f in fillers
    ]


def _build(data: Any, source: str) -> Suite:
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"{source}: {validation_message(exc)}") from exc


def builtin_suite() -> Suite:
    text = resources.files("agent").joinpath("data/bias_probes.yaml").read_text("utf-8")
    return _build(yaml.safe_load(text), "builtin probes")


def parse_suite(text: str, source: str) -> Suite:
    """A YAML suite, or JSONL templates (with the built-in attributes) for a `.jsonl` file."""
    if source.endswith(".jsonl"):
        from agent._jsonl import objects

        rows = [data for _, _, data in objects(text, source, comments=True)]
        if not rows:
            raise InvalidInput(f"{source}: no templates")
        data: Any = {"name": Path(source).stem, "templates": rows}
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise InvalidInput(f"{source}: not valid YAML: {first}") from exc
        if not isinstance(data, dict):
            raise InvalidInput(f"{source}: a suite is a mapping with `templates`")
    if "attributes" not in data:
        data = {**data, "attributes": builtin_suite().model_dump()["attributes"]}
    return _build(data, source)


def load_suite(source: str) -> Suite:
    """`builtin` or a path to a YAML or JSONL suite."""
    if source == BUILTIN:
        return builtin_suite()
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read probe suite {path}: {exc.strerror or exc}") from exc
    return parse_suite(text, str(path))


def swap(text: str, source: Filler, target: Filler) -> str:
    """`text` about `source` rewritten about `target`: the name, the clause and its last
    word ("who is Muslim" and "Muslim"). Pronouns are left: "her" maps to both "him" and
    "his"."""
    pairs = [(source.name, target.name)]
    if source.core and target.core:
        pairs.append((source.core, target.core))
        pairs.append((source.core.split()[-1], target.core.split()[-1]))
    for old, new in pairs:
        if old != new:
            text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    return text
