from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from principles import InvalidPrinciple, Principle, default_seed, parse_seed, render_seed


def test_default_constitution_is_sound() -> None:
    seed = default_seed()
    assert 8 <= len(seed.principles) <= 12
    entrenched = [p.id for p in seed.principles if p.entrenched]
    assert 2 <= len(entrenched) <= 3
    assert {"honesty", "harm-avoidance", "privacy", "fairness"} <= {p.id for p in seed.principles}


@pytest.mark.parametrize("fmt", ["md", "yaml", "json"])
def test_formats_round_trip(fmt: str) -> None:
    seed = default_seed()
    text = render_seed(seed.name, seed.principles, fmt, seed.description)  # type: ignore[arg-type]
    assert parse_seed(text, fmt) == seed  # type: ignore[arg-type]


_slug = st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,5}){0,2}", fullmatch=True)
_line = st.text(
    st.characters(  # control characters are refused (principles/_text.py)
        codec="utf-8",
        exclude_categories=("Cc",),
        exclude_characters="#\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    ),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s and s.strip() != "" and not s.startswith("---"))


@given(
    st.lists(
        st.tuples(_slug, _line, _line, st.booleans()),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[0],
    )
)
def test_markdown_round_trips_any_principles(items: list[tuple[str, str, str, bool]]) -> None:
    principles = tuple(Principle(id=i, title=t, text=x, entrenched=e) for i, t, x, e in items)
    text = render_seed("mine", principles, "md")
    assert parse_seed(text, "md").principles == principles


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("# Bad Heading\nx", "md", "heading"),
        ("stray text\n# a: A\nx", "md", "before the first"),
        ("# a: A\n", "md", "empty"),
        ("# a: A\nx\n# a: B\ny", "md", "twice"),
        ("---\nname: [\n---\n# a: A\nx", "md", "YAML"),
        ("principles: [{id: Bad, title: T, text: x}]", "yaml", "principle id"),
        ("principles: []", "yaml", "holds no principles"),
        ("name: x", "yaml", "holds no principles"),
        ("[1, 2]", "yaml", "mapping"),
        ("{", "json", "JSON"),
    ],
)
def test_invalid_files_give_one_clear_error(text: str, fmt: str, message: str) -> None:
    with pytest.raises(InvalidPrinciple, match=message):
        parse_seed(text, fmt)  # type: ignore[arg-type]
