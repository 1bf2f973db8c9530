"""Fixtures for the model-layer tests.

Slow tests share one real default model per session (loading it costs seconds) and never
touch the network: the hub is switched offline for the whole test session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def _offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield


@pytest.fixture(scope="session")
def default_backend(_offline: None) -> Any:
    """The real embedded default model, loaded once (converted first if needed)."""
    from agent.models import load_backend

    return load_backend("default", threads=os.cpu_count())


@pytest.fixture(scope="session")
def bf16_scorer_backend(_offline: None) -> Any:
    """The default model with a bfloat16 scorer (`score_dtype`), loaded once."""
    from agent.models import load_backend

    return load_backend("default?score_dtype=bfloat16", threads=os.cpu_count())
