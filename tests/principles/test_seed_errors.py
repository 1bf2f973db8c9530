"""Whatever a constitution file holds, parsing it gives a seed or one one-line InvalidPrinciple."""

from __future__ import annotations

import pytest

from principles import InvalidPrinciple, parse_seed


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "json", "nested too deeply"),
        ('{"principles": ' + "[" * 5_000, "json", "nested too deeply"),
        ("a: " + "[" * 5_000, "yaml", "nested too deeply"),
        ("---\na: " + "{a: " * 5_000 + "\n---\n# a: T\nx\n", "md", "nested too deeply"),
        (
            '{"principles": [{"id": "a", "title": "T", "text": "x\\u0000"}]}',
            "json",
            "principles[0].text holds a NUL",
        ),
        ('{"description": "\\u0000", "principles": []}', "json", "description"),
        ('{"a\\u0000": 1, "principles": []}', "json", "a key in the file"),
        ('principles:\n- {id: a, title: "T\\0", text: x}\n', "yaml", "principles[0].title"),
        ("# a: T\nsome\0text\n", "md", "principles[0].text"),
        ("name: x\nprinciples:\n- {id: a, title: T, text: x\0y}\n", "yaml", "line 3: unaccept"),
        ("name: x\nprinciples:\n  - id: a\n   title: b\n", "yaml", "line 4, column 4: expected"),
        ("---\nname: [x\n---\n# a: b\ntext\n", "md", "line 2, column 9: expected"),
    ],
)
def test_bad_files_are_one_line_errors(text: str, fmt: str, message: str) -> None:
    with pytest.raises(InvalidPrinciple) as caught:
        parse_seed(text, fmt)  # type: ignore[arg-type]
    assert message in str(caught.value) and "\n" not in str(caught.value)
