"""Federation's wire format and rules: what crosses between a coordinator and its nodes, how
it is signed, what a node may let out, and how the coordinator decides. Pure: no I/O.

A round (agent/_federation.py drives it):

    coordinator --round(head)-------> node     node adopts the head, answers, critiques,
    coordinator <-drafts(aggregates)- node     proposes on its private training tasks
    coordinator --candidates--------> node     near-duplicate drafts merged
    coordinator <-figures------------ node     the gate on the node's private held-out tasks
    coordinator decides by quorum; accepted drafts become amendments under its policy

Every message is an `Envelope` signed with its sender's Ed25519 key over the canonical JSON
of everything but the signature. What a node sends is typed here, and the types hold only
what may leave a node: principle texts and drafts, per-principle aggregates, gate figures.
Prompts, answers, critique rationales and task ids have no field to travel in; a draft whose
text or rationale shares an 8-word sequence with the node's private texts is held back
(`PrivateText`); an aggregate over fewer than `min_count` items is not sent.

The decision (`decide`): a draft is accepted when at least `share` (two thirds) of the
round's nodes measured an improvement, none measured a significant regression of an
entrenched principle, the count-weighted median of the nodes' effects is above zero (each
node's weight capped at the largest other node's, so no node sets the median alone), and the
count-weighted pooled effect's 95% CI lies above zero. When too few nodes answered to reach
the quorum the decision is inconclusive, and the draft can be tried again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from difflib import SequenceMatcher
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, ValidationError, model_validator

from principles._errors import IntegrityError, InvalidInput
from principles._hashing import canonical_json, content_hash
from principles._models import AmendmentDraft, Op, Principle, Slug, Text, Title, _Frozen
from principles._text import Prose

COORDINATOR = "coordinator"
NodeName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
MessageKind = Literal["round", "drafts", "candidates", "figures", "revision"]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Signed = Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
Decision = Literal["accepted", "rejected", "inconclusive"]
SHINGLE = 8
"""A draft sharing this many consecutive words with a private text is held back."""


class FederationRule(_Frozen):
    """What the coordinator requires: `share` of the round's nodes measured an improvement;
    aggregates over fewer than `min_count` items are never sent."""

    share: float = Field(default=2 / 3, gt=0.0, le=1.0)
    min_count: int = Field(default=5, ge=1)
    epsilon: float | None = Field(
        default=None,
        gt=0.0,
        description="each node's differential-privacy budget per round for the numbers it "
        "sends (Laplace, pure epsilon-DP); None sends them exact",
    )


class Privacy(_Frozen):
    """How the numbers of one message were made differentially private: Laplace noise
    (through OpenDP), `epsilon` split evenly over the `statistics` numbers released, each a
    mean over a node's tasks; neighbouring data sets differ in one task (replace-one)."""

    mechanism: Literal["laplace"] = "laplace"
    epsilon: float = Field(gt=0.0)
    statistics: int = Field(ge=0)
    neighbours: Literal["replace-one task"] = "replace-one task"


def laplace_scale(n: int, epsilon: float, statistics: int, width: float = 1.0) -> float:
    """The Laplace scale for one of `statistics` means, each over `n` values in a range of
    `width`: sensitivity `width / n` under replace-one, budget `epsilon / statistics`."""
    return (width / n) / (epsilon / max(1, statistics))


def private_se(n: int, scale: float) -> float:
    """The standard error of a noisy paired effect (after - before, each with Laplace noise
    of `scale`) from public quantities only: the data's at its largest (paired differences
    in [-1, 1], so sd <= 1) and the two draws' variance (2 scale^2 each)."""
    return math.sqrt(1 / n + 4 * scale * scale)


def private_interval(effect: float, n: int, scale: float) -> tuple[float, float]:
    """The 95% CI from `private_se`, clipped to [-1, 1] (the figure also carries the se)."""
    se = private_se(n, scale)
    return max(-1.0, effect - 1.96 * se), min(1.0, effect + 1.96 * se)


class FederationNode(_Frozen):
    """A node admitted by the coordinator, by its Ed25519 public key (hex)."""

    name: NodeName
    public_key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    status: Literal["active", "revoked"]
    created_by: str
    created_at: datetime


class FederationLogEntry(_Frozen):
    """One entry of the coordinator's round log: a signed message it sent or accepted, or
    its own decision (`decision`, `end`)."""

    id: int
    round: int
    kind: str
    sender: str
    body: dict[str, Any]
    signature: str
    created_at: datetime


# -- keys and signatures -----------------------------------------------------------------


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the key file is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput("the key file does not hold an Ed25519 private key")
    return key


def public_hex(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        .hex()
    )


def _public(hexkey: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(hexkey))
    except ValueError as exc:
        raise InvalidInput(f"not an Ed25519 public key: {hexkey[:16]}...") from exc


class Envelope(_Frozen):
    """One signed message. `body` is the kind's model as JSON (`RoundBody`, ...)."""

    sender: Annotated[str, Field(min_length=1, max_length=63)]
    kind: MessageKind
    round: int = Field(ge=1)
    body: dict[str, Any]
    signature: str = ""

    def signed_bytes(self) -> bytes:
        return canonical_json(
            {"sender": self.sender, "kind": self.kind, "round": self.round, "body": self.body}
        ).encode()

    @property
    def digest(self) -> str:
        return content_hash({"signed": self.signed_bytes().decode(), "sig": self.signature}, None)

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        try:
            return cls.model_validate_json(data)
        except ValueError as exc:
            raise InvalidInput(f"malformed federation message: {str(exc).splitlines()[0]}") from exc


def seal(
    key: Ed25519PrivateKey, sender: str, kind: MessageKind, round_: int, body: _Frozen
) -> Envelope:
    unsigned = Envelope(sender=sender, kind=kind, round=round_, body=body.model_dump(mode="json"))
    return unsigned.model_copy(update={"signature": key.sign(unsigned.signed_bytes()).hex()})


def check_signature(envelope: Envelope, public_key: str) -> None:
    """Raise `IntegrityError` unless `envelope` was signed by the holder of `public_key`."""
    try:
        _public(public_key).verify(bytes.fromhex(envelope.signature), envelope.signed_bytes())
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityError(
            f"{envelope.kind} message from {envelope.sender!r} (round {envelope.round}) "
            "has a bad signature"
        ) from exc


# -- bodies ------------------------------------------------------------------------------


class RoundBody(_Frozen):
    """The coordinator's head: the constitution every node adopts before it works."""

    constitution: str
    revision: int = Field(ge=1)
    hash: str
    principles: tuple[Principle, ...]
    min_count: int = Field(ge=1)
    epsilon: float | None = Field(default=None, gt=0.0)


class SharedDraft(_Frozen):
    """A draft as it leaves a node: no evidence (it names private critiques and outputs)."""

    op: Op
    principle_id: Slug
    title: Title | None = None
    text: Text | None = None
    entrenched: bool | None = None
    merge_from: tuple[Slug, ...] = ()
    rationale: Annotated[Prose, Field(max_length=4000)] = ""

    @classmethod
    def of(cls, draft: AmendmentDraft) -> SharedDraft:
        return cls.model_validate(draft.model_dump(exclude={"evidence", "run_id"}))

    def draft(self, evidence: Sequence[str] = ()) -> AmendmentDraft:
        return AmendmentDraft(**self.model_dump(), evidence=tuple(evidence))

    @property
    def key(self) -> str:
        """What identifies the change (not its rationale): two nodes proposing the same
        change propose the same key, and a key is accepted at most once."""
        return content_hash(self.model_dump(mode="json", exclude={"rationale"}), None)[:16]

    def words(self) -> str:
        return " ".join(x for x in (self.title, self.text, self.rationale) if x)


class PrincipleFigure(_Frozen):
    """One principle's aggregate on a node's training answers."""

    principle_id: Slug
    mean: Unit
    violation_rate: Unit
    count: int = Field(ge=0)


class DraftsBody(_Frozen):
    head: int = Field(ge=1)
    drafts: tuple[SharedDraft, ...] = ()
    aggregates: tuple[PrincipleFigure, ...] = ()
    withheld: int = Field(default=0, ge=0, description="drafts held back as private")
    privacy: Privacy | None = None


class Candidate(_Frozen):
    key: str
    draft: SharedDraft
    authors: tuple[str, ...]


class CandidatesBody(_Frozen):
    """The merged drafts each node measures, with the round's rule again (a node restarted
    since the round began still knows it)."""

    head: int = Field(ge=1)
    candidates: tuple[Candidate, ...]
    min_count: int = Field(default=5, ge=1)
    epsilon: float | None = Field(default=None, gt=0.0)


class CandidateFigure(_Frozen):
    """A node's gate figures for one candidate on its held-out tasks: the mean score under
    the head (`before`) and with the candidate (`after`), the paired effect, its 95% CI and
    p-value, over `count` tasks."""

    key: str
    count: int = Field(ge=0)
    before: Unit = 0.0
    after: Unit = 0.0
    effect: Signed
    ci: tuple[Signed, Signed]
    p_value: Unit
    se: float | None = Field(
        default=None,
        ge=0.0,
        allow_inf_nan=False,
        description="the effect's standard error where the CI, clipped to [-1, 1], would "
        "understate it (differentially private figures); else it is read from the CI",
    )
    entrenched_regressions: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> CandidateFigure:
        if not self.ci[0] <= self.effect <= self.ci[1]:
            raise ValueError(f"effect {self.effect} lies outside its CI {list(self.ci)}")
        return self

    @property
    def improved(self) -> bool:
        return self.effect > 0


class FiguresBody(_Frozen):
    head: int = Field(ge=1)
    figures: tuple[CandidateFigure, ...]
    unmeasured: tuple[str, ...] = Field(
        default=(),
        description="candidates not measured (too few held-out tasks, or they "
        "do not apply to the node's head)",
    )
    privacy: Privacy | None = None


class RevisionBody(RoundBody):
    """A new global head after a round, with the keys it accepted."""

    accepted: tuple[str, ...] = ()


BODIES: dict[str, type[_Frozen]] = {
    "round": RoundBody,
    "drafts": DraftsBody,
    "candidates": CandidatesBody,
    "figures": FiguresBody,
    "revision": RevisionBody,
}


def body(envelope: Envelope, model: type[Any]) -> Any:
    """The envelope's body as `model`, or `InvalidInput` naming the sender and the problem."""
    if BODIES[envelope.kind] is not model:
        raise InvalidInput(f"expected a {model.__name__}, got a {envelope.kind} message")
    try:
        return model.model_validate(envelope.body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InvalidInput(
            f"{envelope.kind} message from {envelope.sender!r} rejected: {where}: {first['msg']}"
        ) from exc


# -- privacy ----------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def shingles(text: str, n: int = SHINGLE) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


class PrivateText:
    """A node's private texts (prompts, answers, critique rationales) as 8-word shingles, so
    a draft can be checked for overlap without keeping the texts around."""

    def __init__(self, texts: Iterable[str], n: int = SHINGLE) -> None:
        self.n = n
        self._index: set[tuple[str, ...]] = set()
        for t in texts:
            self._index |= shingles(t, n)

    def overlap(self, text: str) -> tuple[str, ...] | None:
        """The first shared word sequence, or None."""
        return next((s for s in sorted(shingles(text, self.n)) if s in self._index), None)


# -- merging and deciding ---------------------------------------------------------------


def similar(a: SharedDraft, b: SharedDraft, threshold: float = 0.85) -> bool:
    if (a.op, a.principle_id, a.merge_from) != (b.op, b.principle_id, b.merge_from):
        return False

    def change(d: SharedDraft) -> list[str]:
        return _words(" ".join(x for x in (d.title, d.text) if x))

    return SequenceMatcher(None, change(a), change(b)).ratio() >= threshold


def merge(drafts: Mapping[str, Sequence[SharedDraft]]) -> list[Candidate]:
    """One candidate per group of near-duplicate drafts (same operation on the same
    principle, title and text at least 85% alike, whatever the rationale): the first draft
    in node order speaks for the group, and every author is named."""
    groups: list[tuple[SharedDraft, list[str]]] = []
    for node in sorted(drafts):
        for d in drafts[node]:
            for first, authors in groups:
                if similar(first, d):
                    if node not in authors:
                        authors.append(node)
                    break
            else:
                groups.append((d, [node]))
    return [Candidate(key=d.key, draft=d, authors=tuple(a)) for d, a in groups]


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(weights)
    acc = 0.0
    for i, (v, w) in enumerate(pairs):
        acc += w
        if acc > total / 2:
            return v
        if math.isclose(acc, total / 2):
            return (v + pairs[i + 1][0]) / 2
    return pairs[-1][0]


class Ruling(_Frozen):
    key: str
    decision: Decision
    reason: str
    nodes: int
    measured: int
    improved: int
    needed: int
    median_effect: float | None = None
    pooled_effect: float | None = None
    pooled_ci: tuple[float, float] | None = None
    pooled_p: float | None = None
    regressions: dict[str, tuple[str, ...]] = Field(default_factory=dict)


def capped_weights(counts: Mapping[str, int]) -> dict[str, float]:
    """Count weights, each capped at the largest other node's count: no node can outweigh
    all the others together, so none sets a weighted median alone."""
    out: dict[str, float] = {}
    for node, n in counts.items():
        others = [m for k, m in counts.items() if k != node]
        out[node] = float(min(n, max(others))) if others else float(n)
    return out


def standard_error(f: CandidateFigure) -> float:
    return f.se if f.se is not None else (f.ci[1] - f.ci[0]) / (2 * 1.96)


def pooled(
    figures: Mapping[str, CandidateFigure], weights: Mapping[str, float]
) -> tuple[float, tuple[float, float], float]:
    """The weighted mean effect, its 95% CI and two-sided p-value, each node's standard
    error taken from its CI (normal approximation) and combined with the same weights."""
    total = sum(weights[n] for n in figures)
    effect = sum(weights[n] * f.effect for n, f in figures.items()) / total
    var = sum((weights[n] / total) ** 2 * standard_error(f) ** 2 for n, f in figures.items())
    se = math.sqrt(var)
    p = 1.0 if se == 0 and effect == 0 else 0.0 if se == 0 else math.erfc(abs(effect) / se / 2**0.5)
    return effect, (effect - 1.96 * se, effect + 1.96 * se), p


def decide(
    key: str,
    nodes: Sequence[str],
    figures: Mapping[str, CandidateFigure],
    rule: FederationRule,
) -> Ruling:
    """The coordinator's decision on one candidate from the figures of the round's `nodes`
    (those that measured it with at least `rule.min_count` tasks)."""
    measured = {n: f for n, f in figures.items() if n in nodes and f.count >= rule.min_count}
    needed = math.ceil(rule.share * len(nodes) - 1e-9)
    improved = sorted(n for n, f in measured.items() if f.improved)
    regressions = {
        n: f.entrenched_regressions for n, f in measured.items() if f.entrenched_regressions
    }
    weights = capped_weights({n: f.count for n, f in measured.items()})
    median = effect = p_value = None
    ci = None
    if measured:
        median = weighted_median(
            [f.effect for f in measured.values()], [weights[n] for n in measured]
        )
        effect, ci, p_value = pooled(measured, weights)

    def ruled(decision: Decision, reason: str) -> Ruling:
        return Ruling(
            key=key,
            decision=decision,
            reason=reason,
            nodes=len(nodes),
            measured=len(measured),
            improved=len(improved),
            needed=needed,
            median_effect=None if median is None else round(median, 6),
            pooled_effect=None if effect is None else round(effect, 6),
            pooled_ci=None if ci is None else (round(ci[0], 6), round(ci[1], 6)),
            pooled_p=None if p_value is None else round(p_value, 6),
            regressions=regressions,
        )

    counted = f"{len(improved)} of {len(nodes)} nodes measured an improvement"
    if regressions:
        names = ", ".join(sorted({p for r in regressions.values() for p in r}))
        where = ", ".join(sorted(regressions))
        return ruled("rejected", f"an entrenched principle regressed ({names}) at {where}")
    if len(measured) < needed:
        return ruled(
            "inconclusive",
            f"only {len(measured)} of {len(nodes)} nodes measured it; the quorum needs {needed}",
        )
    assert median is not None and effect is not None and ci is not None
    if len(improved) < needed:
        return ruled("rejected", f"{counted}; the quorum needs {needed}")
    if median <= 0:
        return ruled("rejected", f"the weighted median effect is {median:+.3f}")
    interval = f"{effect:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    if ci[0] <= 0:
        return ruled("rejected", f"{counted}, but the pooled effect {interval} may be zero")
    return ruled("accepted", f"{counted}; pooled effect {interval}")
