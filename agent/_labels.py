"""Labels files: human verdicts on (exchange, principle) pairs, one JSON object a line.

    {"prompt": "...", "response": "...", "principle": "harm-avoidance", "label": 1}
    {"prompt": "...", "response": "...", "principle": "harm-avoidance", "score": 0.25}

`label` 1 (or `score` above one half) means the response follows the principle. Other keys
(an exported label's `critique_id`, `labeller`, ...) are allowed and ignored. A bad line is
refused with its line number; nothing is read from a file that has one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent._jsonl import objects
from principles import InvalidInput, JudgeLabel


@dataclass(frozen=True)
class LabelledPair:
    """One labelled pair: `label` in [0, 1]; `graded` when it came as a score."""

    prompt: str
    response: str
    principle: str
    label: float
    graded: bool = False

    @property
    def binary(self) -> int:
        return int(self.label > 0.5)


def _line_pair(obj: dict[str, Any], where: str) -> LabelledPair:
    for key in ("prompt", "response", "principle"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise InvalidInput(f"{where}: {key!r} must be a non-empty string")
    has_label, has_score = "label" in obj, "score" in obj
    if has_label == has_score:
        raise InvalidInput(f"{where}: give exactly one of 'label' (0 or 1) and 'score' (0..1)")
    value = obj["label"] if has_label else obj["score"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: {'label' if has_label else 'score'} must be a number")
    if has_label and value not in (0, 1):
        raise InvalidInput(f"{where}: label must be 0 or 1, not {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise InvalidInput(f"{where}: score must be in [0, 1], not {value!r}")
    return LabelledPair(obj["prompt"], obj["response"], obj["principle"], float(value), has_score)


def parse_labels(text: str, source: str = "labels") -> list[LabelledPair]:
    """Every labelled pair of a JSONL text, or `InvalidInput` naming the first bad line."""
    pairs = [_line_pair(obj, where) for _, where, obj in objects(text, source)]
    if not pairs:
        raise InvalidInput(f"{source}: no labels in the file")
    return pairs


def load_labels(path: str | Path) -> list[LabelledPair]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read labels file {str(path)!r}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise InvalidInput(f"labels file {str(path)!r} is not UTF-8") from error
    return parse_labels(text, Path(path).name)


def from_store(labels: Iterable[JudgeLabel]) -> list[LabelledPair]:
    """Reviewer labels kept in the database, as labelled pairs."""
    return [LabelledPair(x.prompt, x.response, x.principle_id, x.label) for x in labels]


def label_set_hash(pairs: Sequence[LabelledPair]) -> str:
    """A content hash of a label set, independent of its order."""
    lines = sorted(
        json.dumps([p.prompt, p.response, p.principle, p.label], ensure_ascii=False) for p in pairs
    )
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()
