from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from principles import PrincipleVersion, blame, side_by_side, unified_diff, word_diff


def test_unified_diff_marks_changed_lines() -> None:
    text = unified_diff("a\nb\nc", "a\nB\nc", "p@1", "p@2")
    assert "--- p@1" in text and "+++ p@2" in text
    assert "-b" in text.splitlines() and "+B" in text.splitlines()
    assert unified_diff("same", "same") == ""


def test_word_diff_highlights_only_changed_words() -> None:
    segs = word_diff("be brief and clear", "be short and clear")
    assert [(s.tag, s.text) for s in segs if s.tag != "equal"] == [
        ("delete", "brief"),
        ("insert", "short"),
    ]


@given(st.text(max_size=80), st.text(max_size=80))
def test_word_diff_reconstructs_both_sides(old: str, new: str) -> None:
    segs = word_diff(old, new)
    assert "".join(s.text for s in segs if s.tag != "insert") == old
    assert "".join(s.text for s in segs if s.tag != "delete") == new


def test_side_by_side_pairs_lines() -> None:
    rows = side_by_side("a\nb\nc", "a\nb2\nc\nd")
    assert [r.tag for r in rows] == ["equal", "replace", "equal", "insert"]
    replaced = rows[1]
    assert replaced.left == "b" and replaced.right == "b2"
    assert replaced.left_segments and replaced.right_segments
    assert rows[3].left is None and rows[3].right == "d"


def _v(n: int, text: str) -> PrincipleVersion:
    return PrincipleVersion(
        principle_id="p",
        number=n,
        title="T",
        text=text,
        entrenched=False,
        author=f"human:u{n}",
        amendment_id=n * 10,
        revision=n + 1,
        created_at=datetime.now(UTC),
        parent_hash=None,
        hash=str(n),
    )


def test_blame_attributes_each_line_to_the_version_that_wrote_it() -> None:
    lines = blame([_v(1, "one\ntwo\nthree"), _v(2, "one\n2\nthree"), _v(3, "zero\none\n2\nthree")])
    assert [(b.text, b.version) for b in lines] == [("zero", 3), ("one", 1), ("2", 2), ("three", 1)]
    assert lines[2].amendment_id == 20 and lines[2].revision == 3 and lines[2].author == "human:u2"
    assert blame([]) == []
