"""Principles drafted from preference data, after Inverse Constitutional AI (ICAI).

Given `{"prompt", "chosen", "rejected"}` pairs:
1. split them, by a hash of each pair (so the split never depends on file order), into
   training pairs and held-out pairs (`HELDOUT_SHARE`);
2. for a sample of the training pairs, the model proposes one principle that would explain
   why `chosen` won (`agent._prompts.preference_request`, structured output, several
   sampled variants, degenerate drafts rejected by the proposer's filter);
3. near-duplicate candidates are merged (`agent._drafting.merge_new`: same id, or alike
   texts), each keeping how many pairs proposed it; a candidate that reuses an id of the
   constitution or of a worked example is set aside with the reason;
4. each candidate, added alone to the existing constitution, is tested on the training pairs
   (`agent._preferences.reconstruct`); those that reconstruct more pairs than the existing
   constitution does, by a margin whose paired bootstrap 95% CI lies above zero (a gain
   inside the noise is no gain), are kept, best first, at most `max_principles`. With no existing
   constitution the bar is an unrelated principle (`PLACEBO`), not the absence of one: with
   the default model, any constitution at all changes which response the judge prefers,
   through the question's wording alone (bench/drafting.py measures it), and a candidate must
   beat that to count;
5. the kept principles together are measured on the held-out pairs, against the existing
   constitution: the figure a reviewer should believe, since no choice was made on them.
Nothing is applied: the caller proposes the kept principles as `add` amendments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent._drafting import DraftRequest, RejectedDraft, draft_texts, id_problem, merge_new
from agent._preferences import (
    Preference,
    Reconstruction,
    bootstrap_mean_ci,
    paired_credits,
    reconstruct,
)
from agent._prompts import VARIANTS, NewPrinciple, preference_request, worked_examples
from agent.models import Backend, GenerationParams
from principles import InvalidInput, Principle

HELDOUT_SHARE = 0.3
SAMPLES = 8
PLACEBO = Principle(id="kind", title="Be kind", text="The response is kind to the user.")


@dataclass(frozen=True)
class Candidate:
    """A drafted principle, how many training pairs proposed it (near-duplicates merged),
    and the training pairs it reconstructs with the existing constitution."""

    principle: Principle
    support: int
    train: Reconstruction


@dataclass
class Drafted:
    """What drafting from preferences found; see the module docstring."""

    train_n: int
    heldout_n: int
    baseline_train: Reconstruction  # the existing constitution, or PLACEBO when empty
    candidates: list[Candidate] = field(default_factory=list)
    kept: list[Candidate] = field(default_factory=list)
    heldout_before: Reconstruction | None = None
    heldout_after: Reconstruction | None = None
    rejected: list[RejectedDraft] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def split(
    pairs: Sequence[Preference], share: float = HELDOUT_SHARE
) -> tuple[list[Preference], list[Preference]]:
    """(training, held-out): a pair is held out when its hash falls in the first `share`
    of the range; with two pairs or more, each side gets at least one."""

    def point(p: Preference) -> float:
        digest = hashlib.sha256(f"{p.prompt}\x1f{p.chosen}\x1f{p.rejected}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    ordered = sorted(pairs, key=point)
    held = sum(point(p) < share for p in ordered)
    if len(ordered) >= 2:
        held = min(max(held, 1), len(ordered) - 1)
    return ordered[held:], ordered[:held]


def gain(after: Reconstruction, before: Reconstruction) -> tuple[float, float]:
    """The paired bootstrap 95% CI of the share of pairs gained from `before` to `after`
    (each pair's credit in one minus the other)."""
    diffs = paired_credits(after, before)
    digest = hashlib.sha256(repr(diffs).encode()).hexdigest()[:16]
    return bootstrap_mean_ci(diffs, digest, bounds=(-1.0, 1.0))


def draft_from_preferences(
    backend: Backend,
    pairs: Sequence[Preference],
    existing: Sequence[Principle],
    *,
    max_principles: int = 3,
    samples: int = SAMPLES,
    params: GenerationParams | None = None,
) -> Drafted:
    """Candidate principles for `pairs`, tested and kept as the module docstring says."""
    if len(pairs) < 4:
        raise InvalidInput(f"drafting from preferences needs at least 4 pairs, got {len(pairs)}")
    train, heldout = split(pairs)
    taken = {p.id for p in existing}
    requests = [
        DraftRequest(
            key,
            "add",
            "",
            [
                preference_request(existing, pair.prompt, pair.chosen, pair.rejected, v)
                for v in range(VARIANTS)
            ],
            others=(*worked_examples(), *(p.text for p in existing)),
        )
        for key, pair in enumerate(train[:samples])
    ]
    drafted = draft_texts(backend, requests, params or GenerationParams(max_new_tokens=160))
    replies = [r for _, r in sorted(drafted.replies.items()) if isinstance(r, NewPrinciple)]
    result = Drafted(
        train_n=len(train),
        heldout_n=len(heldout),
        baseline_train=reconstruct(backend, list(existing) or [PLACEBO], train),
        rejected=drafted.rejected,
        failed=[f"pair {key + 1}: {why}" for key, why in sorted(drafted.failed.items())],
    )
    for principle, members in merge_new(replies):
        if (why := id_problem(principle.id, taken)) is not None:
            result.failed.append(f"{principle.id}: {why}")
            continue
        tested = reconstruct(backend, [*existing, principle], train)
        result.candidates.append(Candidate(principle, len(members), tested))
    better = [c for c in result.candidates if gain(c.train, result.baseline_train)[0] > 0]
    better.sort(key=lambda c: (-c.train.accuracy, -c.train.mean_p_chosen, -c.support))
    result.kept = better[:max_principles]
    if result.kept:
        result.heldout_before = reconstruct(backend, existing, heldout)
        kept = [c.principle for c in result.kept]
        result.heldout_after = reconstruct(backend, [*existing, *kept], heldout)
    return result
