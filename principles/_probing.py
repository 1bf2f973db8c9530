"""Bias probe runs as stored: one report per run of `charter probe bias`, append-only, so
that the gaps under one revision can be compared with those under another."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from principles._models import Actor, UTCDateTime, _Frozen


class NewProbeRun(_Frozen):
    """A bias probe's report (`agent._bias.BiasReport.as_json()`) under one revision."""

    constitution: str = Field(min_length=1, max_length=64)
    revision: int = Field(ge=1)
    model: str = Field(min_length=1, max_length=300)
    suite: str = Field(min_length=1, max_length=300)
    templates: int = Field(ge=1)
    variants: int = Field(ge=1)
    flagged: int = Field(ge=0)
    report: dict[str, Any] = Field(default_factory=dict)


class ProbeRun(NewProbeRun):
    id: int
    created_by: Actor
    created_at: UTCDateTime
