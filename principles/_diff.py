"""Text diffs of two versions: unified, side by side, word-level, and line blame.

All functions are pure and deterministic; the UI renders their output, the CLI prints it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from principles._models import BlameLine, PrincipleVersion

Tag = Literal["equal", "insert", "delete", "replace"]
_WORD = re.compile(r"\s+|\w+|[^\w\s]")


class Segment(BaseModel):
    """A run of words in a word-level diff; `tag` is equal, insert or delete."""

    model_config = ConfigDict(frozen=True)
    tag: Literal["equal", "insert", "delete"]
    text: str


class SideBySideRow(BaseModel):
    """One row of a side-by-side diff; a missing side is None. Segments mark changed words."""

    model_config = ConfigDict(frozen=True)
    tag: Tag
    left_no: int | None
    left: str | None
    right_no: int | None
    right: str | None
    left_segments: tuple[Segment, ...] = ()
    right_segments: tuple[Segment, ...] = ()


def unified_diff(old: str, new: str, old_label: str = "a", new_label: str = "b") -> str:
    """A unified diff (`diff -u` style); the empty string when the texts are equal."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm=""
    )
    return "\n".join(lines)


def word_diff(old: str, new: str) -> list[Segment]:
    """Word-level segments turning `old` into `new` (whitespace kept as its own tokens)."""
    a, b = _WORD.findall(old), _WORD.findall(new)
    out: list[Segment] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(Segment(tag="equal", text="".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(Segment(tag="delete", text="".join(a[i1:i2])))
        if j2 > j1:
            out.append(Segment(tag="insert", text="".join(b[j1:j2])))
    return out


def _split(segments: Sequence[Segment]) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    left = tuple(s for s in segments if s.tag != "insert")
    right = tuple(s for s in segments if s.tag != "delete")
    return left, right


def side_by_side(old: str, new: str) -> list[SideBySideRow]:
    """Rows pairing old and new lines; replaced lines carry word-level segments on each side."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[SideBySideRow] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows.extend(
                SideBySideRow(tag="equal", left_no=i + 1, left=a[i], right_no=j + 1, right=b[j])
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            left = a[i] if i < i2 else None
            right = b[j] if j < j2 else None
            if left is not None and right is not None:
                ls, rs = _split(word_diff(left, right))
                rows.append(
                    SideBySideRow(
                        tag="replace",
                        left_no=i + 1,
                        left=left,
                        right_no=j + 1,
                        right=right,
                        left_segments=ls,
                        right_segments=rs,
                    )
                )
            elif left is not None:
                rows.append(
                    SideBySideRow(tag="delete", left_no=i + 1, left=left, right_no=None, right=None)
                )
            else:
                rows.append(
                    SideBySideRow(
                        tag="insert", left_no=None, left=None, right_no=j + 1, right=right
                    )
                )
    return rows


def blame(versions: Sequence[PrincipleVersion]) -> list[BlameLine]:
    """Attribute each line of the last version to the version that introduced it.

    `versions` is a principle's history in version order. A line keeps its attribution while
    later versions leave it unchanged; an inserted or rewritten line belongs to the version
    that wrote it.
    """
    if not versions:
        return []
    owners: list[PrincipleVersion] = []
    lines: list[str] = []
    for version in versions:
        new_lines = version.text.splitlines()
        new_owners: list[PrincipleVersion] = []
        matcher = difflib.SequenceMatcher(a=lines, b=new_lines, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                new_owners.extend(owners[i1:i2])
            else:
                new_owners.extend([version] * (j2 - j1))
        lines, owners = new_lines, new_owners
    return [
        BlameLine(
            line_no=n,
            text=text,
            version=owner.number,
            revision=owner.revision,
            amendment_id=owner.amendment_id,
            author=owner.author,
            created_at=owner.created_at,
        )
        for n, (text, owner) in enumerate(zip(lines, owners, strict=True), start=1)
    ]
