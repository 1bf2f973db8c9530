"""Named run configurations: `charter run --preset NAME` and the benchmarks use the same."""

from __future__ import annotations

from principles import InvalidInput, RunConfig

PRESETS: dict[str, RunConfig] = {
    # `make demo`: two review-mode iterations with the embedded model on part of the
    # built-in suite, sized to finish in a few minutes on a 2-core CPU.
    "demo": RunConfig(
        mode="review",
        iterations=2,
        model="default",
        tasks="builtin",
        tasks_limit=24,
        train_per_iteration=3,
        heldout_size=2,
        max_new_tokens=64,
        judge_paraphrases=2,
        max_rationales=4,
        max_revisions=2,
        max_proposals=2,
    ),
}


def preset(name: str) -> RunConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidInput(f"unknown preset {name!r}: use {', '.join(sorted(PRESETS))}") from None
