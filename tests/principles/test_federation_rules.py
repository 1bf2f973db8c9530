"""The federation's pure rules: signatures, the privacy filter, merging and the decision."""

from __future__ import annotations

import pytest

from principles import (
    CandidateFigure,
    DraftsBody,
    Envelope,
    FederationRule,
    IntegrityError,
    InvalidInput,
    PrivateText,
    SharedDraft,
    check_signature,
    decide,
    federation_body,
    laplace_scale,
    merge,
    new_key,
    private_interval,
    public_hex,
    seal,
)
from principles._federation import capped_weights, weighted_median

RULE = FederationRule()


def fig(
    key: str = "k", effect: float = 0.1, half: float = 0.05, count: int = 10
) -> CandidateFigure:
    return CandidateFigure(
        key=key,
        count=count,
        effect=effect,
        ci=(effect - half, effect + half),
        p_value=0.01 if abs(effect) > half else 0.5,
    )


def test_a_signature_covers_everything_but_itself() -> None:
    key = new_key()
    env = seal(key, "node-1", "drafts", 3, DraftsBody(head=2))
    check_signature(Envelope.from_bytes(env.to_bytes()), public_hex(key))
    for change in ({"round": 4}, {"sender": "node-2"}, {"body": {**env.body, "withheld": 9}}):
        with pytest.raises(IntegrityError, match="bad signature"):
            check_signature(env.model_copy(update=change), public_hex(key))
    with pytest.raises(IntegrityError):
        check_signature(env, public_hex(new_key()))


def test_malformed_messages_and_out_of_range_figures_are_one_clear_error() -> None:
    with pytest.raises(InvalidInput, match="malformed federation message"):
        Envelope.from_bytes(b"{not json")
    env = seal(new_key(), "node-1", "drafts", 1, DraftsBody(head=1))
    bad = env.model_copy(
        update={
            "body": {
                "head": 1,
                "aggregates": [
                    {"principle_id": "honesty", "mean": 1.5, "violation_rate": 0, "count": 9}
                ],
            }
        }
    )
    with pytest.raises(InvalidInput, match=r"aggregates\.0\.mean"):
        federation_body(bad, DraftsBody)
    with pytest.raises(ValueError, match="outside its CI"):
        CandidateFigure(key="k", count=9, effect=0.5, ci=(-0.1, 0.1), p_value=0.2)


def test_the_privacy_filter_finds_an_eight_word_run_and_nothing_shorter() -> None:
    private = PrivateText(
        ["Customer 4471 asked whether the refund for order 99 was approved today"]
    )
    assert private.overlap("whether the refund for order 99 was approved") is not None
    assert private.overlap("Whether THE refund, for order 99 - was approved!") is not None
    assert private.overlap("the refund for order 99 was approved") is None  # seven words
    assert private.overlap("Be clear about refunds and orders.") is None


def test_near_duplicate_drafts_merge_into_one_candidate_naming_every_author() -> None:
    a = SharedDraft(op="revise", principle_id="clarity", text="State the main point first.")
    b = SharedDraft(
        op="revise",
        principle_id="clarity",
        text="State the main point first!",
        rationale="other words",
    )
    c = SharedDraft(op="revise", principle_id="honesty", text="State the main point first.")
    found = merge({"node-1": [b], "node-0": [a, c]})
    assert [(x.draft.principle_id, x.authors) for x in found] == [
        ("clarity", ("node-0", "node-1")),
        ("honesty", ("node-0",)),
    ]
    assert a.key == SharedDraft.of(a.draft(["x"])).key  # evidence never travels


def test_no_node_outweighs_all_the_others() -> None:
    weights = capped_weights({"a": 10_000, "b": 10, "c": 20})
    assert weights == {"a": 20.0, "b": 10.0, "c": 20.0}
    assert weighted_median([1.0, -0.1, -0.2], [20, 10, 20]) == pytest.approx(-0.1)


def test_the_quorum_decides() -> None:
    nodes = ["a", "b", "c"]
    accepted = decide("k", nodes, {"a": fig(), "b": fig(), "c": fig(effect=-0.01)}, RULE)
    assert accepted.decision == "accepted" and accepted.improved == 2 and accepted.needed == 2
    assert accepted.pooled_ci is not None and accepted.pooled_ci[0] > 0

    liar = {
        "a": fig(effect=1.0, half=0.0, count=10_000),
        "b": fig(effect=-0.05),
        "c": fig(effect=0.0),
    }
    rejected = decide("k", nodes, liar, RULE)
    assert rejected.decision == "rejected" and "1 of 3" in rejected.reason

    noisy = decide("k", nodes, {n: fig(effect=0.02, half=0.2) for n in nodes}, RULE)
    assert noisy.decision == "rejected" and "may be zero" in noisy.reason

    entrenched = fig().model_copy(update={"entrenched_regressions": ("harm-avoidance",)})
    vetoed = decide("k", nodes, {"a": fig(), "b": fig(), "c": entrenched}, RULE)
    assert vetoed.decision == "rejected" and "harm-avoidance" in vetoed.reason

    few = decide("k", nodes, {"a": fig(), "b": fig(count=3)}, RULE)  # b's count is too small
    assert few.decision == "inconclusive" and few.measured == 1


def test_the_laplace_scale_and_the_private_interval_follow_from_public_quantities() -> None:
    from agent._federation import laplace

    assert laplace_scale(n=10, epsilon=1.0, statistics=4) == pytest.approx(0.4)
    assert laplace_scale(n=10, epsilon=1.0, statistics=4, width=2.0) == pytest.approx(0.8)
    lo, hi = private_interval(0.1, n=100, scale=0.0)
    assert (lo, hi) == pytest.approx((0.1 - 0.196, 0.1 + 0.196))
    noisy = laplace(0.5)
    draws = [noisy(0.0) for _ in range(4000)]
    # Laplace(b): mean absolute deviation b
    assert sum(abs(x) for x in draws) / len(draws) == pytest.approx(0.5, rel=0.1)


def test_a_key_file_that_is_not_an_ed25519_pem_key_is_one_clear_error() -> None:
    from principles import load_private, private_pem

    key = new_key()
    assert public_hex(load_private(private_pem(key))) == public_hex(key)
    with pytest.raises(InvalidInput, match="not an unencrypted PEM private key"):
        load_private(b"-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
