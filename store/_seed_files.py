"""Reading constitution files from disk (the parsing itself is pure, in `principles`)."""

from __future__ import annotations

from pathlib import Path

from principles import InvalidPrinciple, Seed, default_seed, format_for, parse_seed


def read_seed(path: str | Path | None) -> Seed:
    """The seed in `path` (Markdown, YAML or JSON by extension), or the default constitution."""
    if path is None:
        return default_seed()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidPrinciple(f"no such constitution file: {p}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPrinciple(f"cannot read {p}: {exc}") from exc
    return parse_seed(text, format_for(str(p)))
