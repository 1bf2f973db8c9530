"""The default constitution shipped with Charter (the package's only read: its own data)."""

from __future__ import annotations

from importlib import resources

from principles._seed import Seed, parse_markdown


def default_seed() -> Seed:
    return parse_markdown(resources.files("principles").joinpath("data/default.md").read_text())
