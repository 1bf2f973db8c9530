"""How well a constitution explains people's preferences: Inverse Constitutional AI's measure.

A preferences file is JSONL, one pair a line:

    {"prompt": "...", "chosen": "...", "rejected": "..."}

Given a constitution (or none), the judge model reads the request and both responses and is
asked which one follows the constitution better; the answer is read from the option scores
of "A" and "B". Every pair is asked in both orders (`chosen` first, then second) and the two
probabilities that `chosen` wins are averaged, which cancels the judge's preference for a
position; the pair counts as reconstructed when that average is above one half (a half
point at exactly one half). Reported: the share reconstructed with a bootstrap 95% CI over
pairs, the mean probability given to `chosen`, and the position bias (how much more the
judge gives the first response than the second, on average). ICAI's constitutions
reconstruct 84-92% of synthetic preferences with GPT-3.5 as the judge.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent._jsonl import objects
from agent._prompts import render_constitution
from agent.models import Backend, ChatMessage
from principles import InvalidInput, Principle

OPTIONS = ("A", "B")
RESAMPLES = 2000


@dataclass(frozen=True)
class Preference:
    """A request and two responses, `chosen` preferred by people over `rejected`."""

    prompt: str
    chosen: str
    rejected: str


def parse_preferences(text: str, source: str = "preferences") -> list[Preference]:
    """Every pair of a JSONL text, or `InvalidInput` naming the first bad line; other keys
    are allowed and ignored."""
    pairs = []
    for _, where, obj in objects(text, source):
        for key in ("prompt", "chosen", "rejected"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise InvalidInput(f"{where}: {key!r} must be a non-empty string")
        if obj["chosen"].strip() == obj["rejected"].strip():
            raise InvalidInput(f"{where}: 'chosen' and 'rejected' are the same text")
        pairs.append(Preference(obj["prompt"], obj["chosen"], obj["rejected"]))
    if not pairs:
        raise InvalidInput(f"{source}: no preference pairs")
    return pairs


def load_preferences(path: Path) -> list[Preference]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read preferences {path}: {exc.strerror}") from exc
    return parse_preferences(text, str(path))


def comparison_prefix(principles: Sequence[Principle]) -> list[ChatMessage]:
    """The system turn every comparison under this constitution shares (a cached prefix)."""
    if not principles:
        content = "You compare two responses to the same request and say which is better."
    else:
        content = (
            "You compare two responses to the same request against this constitution:\n\n"
            + render_constitution(principles)
            + "\n\nYou say which response follows the constitution better."
        )
    return [ChatMessage(role="system", content=content)]


def comparison_turn(pair: Preference, chosen_first: bool, constitution: bool) -> list[ChatMessage]:
    first, second = (pair.chosen, pair.rejected) if chosen_first else (pair.rejected, pair.chosen)
    question = (
        "Which response follows the constitution better?"
        if constitution
        else "Which response is better?"
    )
    return [
        ChatMessage(
            role="user",
            content=(
                f"Request: {pair.prompt}\n\nResponse A: {first}\n\nResponse B: {second}\n\n"
                f"{question} Answer A or B."
            ),
        )
    ]


@dataclass(frozen=True)
class Reconstruction:
    """How well one constitution explains a set of preferences."""

    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    mean_p_chosen: float
    position_bias: float
    p_chosen: tuple[float, ...]  # per pair, both orders averaged

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "accuracy_ci": [round(x, 4) for x in self.accuracy_ci],
            "mean_p_chosen": round(self.mean_p_chosen, 4),
            "position_bias": round(self.position_bias, 4),
        }


def _p_first(scores: Sequence[float]) -> float:
    """P("A") among the two options, from their log-probabilities."""
    a, b = scores
    top = max(a, b)
    ea, eb = math.exp(a - top), math.exp(b - top)
    return ea / (ea + eb)


def credit(p: float) -> float:
    """1 when `chosen` wins, 0 when it loses, a half for a tie (to float rounding: a judge
    that only prefers a position gives exactly one half once both orders are averaged)."""
    if abs(p - 0.5) < 1e-9:
        return 0.5
    return 1.0 if p > 0.5 else 0.0


def paired_credits(after: Reconstruction, before: Reconstruction) -> list[float]:
    """Per pair, the credit under `after` minus the credit under `before` (same pairs)."""
    return [credit(a) - credit(b) for a, b in zip(after.p_chosen, before.p_chosen, strict=True)]


def bootstrap_mean_ci(
    values: Sequence[float], seed: str, bounds: tuple[float, float] = (0.0, 1.0)
) -> tuple[float, float]:
    """95% percentile bootstrap CI of the mean of `values` (resampled, seeded); with fewer
    than two values, the `bounds` the mean can take."""
    if len(values) < 2:
        return bounds
    rng = random.Random(f"preferences:{seed}")
    n = len(values)
    means = [sum(rng.choices(values, k=n)) / n for _ in range(RESAMPLES)]
    cuts = statistics.quantiles(means, n=40, method="inclusive")
    return (cuts[0], cuts[-1])


def reconstruct(
    backend: Backend, principles: Sequence[Principle], pairs: Sequence[Preference]
) -> Reconstruction:
    """Ask the judge about every pair in both orders under `principles` (none: no
    constitution) and measure how often it prefers `chosen` (see the module docstring)."""
    if not pairs:
        raise InvalidInput("no preference pairs to measure")
    constitution = bool(principles)
    prompts = [
        comparison_turn(pair, chosen_first, constitution)
        for pair in pairs
        for chosen_first in (True, False)
    ]
    scores = backend.score_options(prompts, OPTIONS, shared_prefix=comparison_prefix(principles))
    firsts = [_p_first(s) for s in scores]
    p_chosen = [(firsts[2 * i] + 1 - firsts[2 * i + 1]) / 2 for i in range(len(pairs))]
    credits = [credit(p) for p in p_chosen]
    digest = hashlib.sha256(
        json.dumps([[p.prompt, p.chosen, p.rejected] for p in pairs]).encode()
    ).hexdigest()[:16]
    return Reconstruction(
        n=len(pairs),
        accuracy=sum(credits) / len(credits),
        accuracy_ci=bootstrap_mean_ci(credits, digest),
        mean_p_chosen=sum(p_chosen) / len(p_chosen),
        position_bias=sum(firsts) / len(firsts) - 0.5,
        p_chosen=tuple(p_chosen),
    )
