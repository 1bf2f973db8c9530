"""Progress reporting, decoupled from any terminal library: the shell supplies a reporter."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def step(self, iteration: int, iterations: int, step: str, total: int) -> None:
        """A step starts; `total` items will be reported through `advance`."""
        ...

    def advance(self, n: int = 1) -> None: ...

    def message(self, text: str) -> None: ...


class NoProgress:
    """Reports nothing (tests, library use)."""

    def step(self, iteration: int, iterations: int, step: str, total: int) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None

    def message(self, text: str) -> None:
        return None
