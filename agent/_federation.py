"""Federated refinement: a coordinator and its nodes refine one constitution, and each node's
tasks, answers and critiques stay in its own database (`principles._federation` has the wire
format and the rules).

`Node.handle` and `Coordinator.run_round` exchange signed messages as bytes through a
`Transport` (one batch per step of the round, a message per node; a node that fails or does
not answer gives None), so the same round runs in one process (`LocalTransport`, tests) or
across machines (Flower, charter/_federation_run.py).

A node, on a `round` message, adopts the coordinator's head into its own store, answers a
sample of its private training tasks, critiques the answers and drafts amendments exactly as
the loop does (`agent._steps`), then sends the drafts (without evidence) and per-principle
aggregates. A draft that shares an 8-word sequence with a task's prompt or reference, an
answer or a critique's rationale is held back and noted in the node's audit log. On a
`candidates` message it runs the gate (`agent._gate.evaluate`) on its private held-out
tasks and sends the figures. With a privacy budget (`FederationRule.epsilon`) every number
it sends carries Laplace noise (OpenDP) and its CIs come from public bounds only.

The coordinator records every message it sends or accepts, and every decision, in its round
log before it acts on it, so a coordinator killed mid-round resumes where it stopped, and a
key is accepted at most once. Accepted drafts become amendments of the coordinator's
constitution; in review mode a person approves them there, in autonomous mode they apply
(drafts that touch an entrenched principle always wait for a person).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import _actor, _critic
from agent._aggregate import aggregate
from agent._calibration import Calibrator
from agent._gate import candidate_principles, evaluate
from agent._progress import NoProgress, Progress
from agent._proposer import propose
from agent.models import Backend, GenerationParams
from principles import (
    COORDINATOR,
    OPEN_STATUSES,
    STEPS,
    Actor,
    Amendment,
    Candidate,
    CandidateFigure,
    CandidatesBody,
    CharterError,
    Critique,
    DraftsBody,
    Envelope,
    Evaluation,
    FederationLogEntry,
    FederationRule,
    FiguresBody,
    InvalidInput,
    PolicyViolation,
    PrincipleFigure,
    Privacy,
    PrivateText,
    RevisionBody,
    RoundBody,
    Ruling,
    RunConfig,
    RunMode,
    SharedDraft,
    Task,
    canonical_json,
    check_signature,
    decide,
    federation_body,
    laplace_scale,
    merge,
    private_interval,
    private_se,
    public_hex,
    seal,
    utcnow,
    verdict,
)
from store import Store

FEDERATION = Actor(kind="agent", name="federation")
"""The coordinator's actor: it proposes accepted drafts and applies them autonomously."""


class Transport(Protocol):
    def exchange(self, messages: Mapping[str, bytes]) -> dict[str, bytes | None]:
        """Deliver each node its message, together, and return the replies (None: the node
        did not answer, or failed)."""


@dataclass
class LocalTransport:
    """Nodes in this process, one after another. `captured` keeps every message, both ways,
    as bytes; a node in `down` does not answer (a node killed mid-round)."""

    nodes: Mapping[str, Node]
    captured: list[bytes] = field(default_factory=list)
    down: set[str] = field(default_factory=set)

    def exchange(self, messages: Mapping[str, bytes]) -> dict[str, bytes | None]:
        replies: dict[str, bytes | None] = {}
        for node, message in messages.items():
            self.captured.append(message)
            replies[node] = None
            if node in self.down:
                continue
            try:
                replies[node] = self.nodes[node].handle(message)
            except CharterError:
                continue
            if replies[node] is not None:
                self.captured.append(replies[node] or b"")
        return replies


# -- a node ------------------------------------------------------------------------------


@dataclass
class Node:
    """One organisation: its store, model, private tasks and key. `config` sizes its work
    (tasks per iteration, held-out size, gate rule, proposals) as a run's config does."""

    name: str
    store: Store
    backend: Backend
    key: Ed25519PrivateKey
    coordinator_key: str
    tasks: Sequence[Task]
    config: RunConfig = field(default_factory=RunConfig)
    constitution: str = "default"
    calibrator: Calibrator | None = None
    progress: Progress = field(default_factory=NoProgress)
    say: Callable[[str], None] = lambda _m: None

    @property
    def actor(self) -> Actor:
        return Actor(kind="node", name=self.name)

    def split(self) -> tuple[list[Task], list[Task]]:
        """Exactly `heldout_size` held-out tasks (by a seeded hash of their ids, so the same
        tasks every round), the rest to train on."""
        ranked = sorted(
            self.tasks,
            key=lambda t: hashlib.sha256(f"{self.config.seed}:{t.id}".encode()).hexdigest(),
        )
        size = min(self.config.heldout_size, len(ranked) - 1)
        return sorted(ranked[size:], key=lambda t: t.id), sorted(ranked[:size], key=lambda t: t.id)

    def params(self, round_: int, step: str, max_new_tokens: int | None = None) -> GenerationParams:
        return GenerationParams(
            max_new_tokens=max_new_tokens or self.config.max_new_tokens,
            temperature=0.0,
            seed=self.config.seed * 1000 + round_ * 10 + STEPS.index(step),
        )

    def handle(self, message: bytes) -> bytes | None:
        """Check the coordinator's signature and answer the message (None for a revision)."""
        envelope = Envelope.from_bytes(message)
        if envelope.sender != COORDINATOR:
            raise PolicyViolation(f"node {self.name} takes messages from the coordinator only")
        check_signature(envelope, self.coordinator_key)
        started = time.monotonic()
        if envelope.kind == "round":
            head = federation_body(envelope, RoundBody)
            self.adopt(head, envelope)
            drafts = self.drafts(envelope.round, head)
            self.say(
                f"round {envelope.round}: {len(drafts.drafts)} drafts ({drafts.withheld} held "
                f"back) in {time.monotonic() - started:.1f} s"
            )
            return self._send(envelope.round, "drafts", drafts)
        if envelope.kind == "candidates":
            found = federation_body(envelope, CandidatesBody)
            figures = self.figures(envelope.round, found)
            self.say(
                f"round {envelope.round}: {len(figures.figures)} of {len(found.candidates)} "
                f"candidates measured in {time.monotonic() - started:.1f} s"
            )
            return self._send(envelope.round, "figures", figures)
        if envelope.kind == "revision":
            revision = federation_body(envelope, RevisionBody)
            self.adopt(revision, envelope)
            self.say(f"round {envelope.round}: adopted global revision {revision.revision}")
            return None
        raise InvalidInput(f"node {self.name} does not take {envelope.kind} messages")

    def _send(self, round_: int, kind: Any, body: Any) -> bytes:
        envelope = seal(self.key, self.name, kind, round_, body)
        self.store.note(
            "federation.send",
            f"round:{round_}",
            {"kind": kind, "digest": envelope.digest, "bytes": len(envelope.to_bytes())},
            self.actor,
        )
        return envelope.to_bytes()

    def adopt(self, head: RoundBody, envelope: Envelope) -> None:
        self.store.adopt(
            self.constitution,
            list(head.principles),
            {
                "round": envelope.round,
                "revision": head.revision,
                "hash": head.hash,
                "coordinator_signature": envelope.signature,
            },
        )

    def drafts(self, round_: int, head: RoundBody) -> DraftsBody:
        """Answer, critique and propose on a sample of the private training tasks."""
        local = self.store.constitution(self.constitution)
        principles = [p.as_principle() for p in local.principles]
        train, _ = self.split()
        rng = random.Random(f"{self.config.seed}:{self.name}:{round_}")
        tasks = sorted(
            rng.sample(train, min(self.config.train_per_iteration, len(train))), key=lambda t: t.id
        )
        answers = _actor.answer(
            self.backend, principles, tasks, self.params(round_, "answer"), self.progress
        )
        pairs = [
            _critic.Pair(t, a, p) for t, a in zip(tasks, answers, strict=True) for p in principles
        ]
        judgments = _critic.judge(
            self.backend,
            principles,
            pairs,
            self.config.judge_paraphrases,
            self.progress,
            self.calibrator,
        )
        low = _critic.lowest(judgments, self.config.threshold, self.config.max_rationales)
        notes = _critic.rationales(
            self.backend,
            principles,
            [pairs[i] for i in low],
            self.params(round_, "critique", 64),
            self.progress,
        )
        rationale = dict(zip(low, notes, strict=True))
        now = utcnow()
        critiques = [
            Critique(
                id=i + 1,
                run_id=0,
                output_id=i // len(principles) + 1,
                principle_id=pair.principle.id,
                version=local.entries[pair.principle.id],
                score=j.score,
                relevance=j.relevance,
                spread=j.spread,
                verdict=verdict(j.score, self.config.threshold),
                rationale=rationale.get(i, ""),
                created_at=now,
            )
            for i, (pair, j) in enumerate(zip(pairs, judgments, strict=True))
        ]
        agg = aggregate(critiques, list(local.entries), self.config.threshold)
        pending = [a for a in self.store.amendments(self.constitution) if a.status in OPEN_STATUSES]
        found = propose(
            self.backend,
            local,
            agg,
            critiques,
            pending,
            budget=self.config.max_proposals,
            run_id=0,
            policy=self.store.policy,
            params=self.params(round_, "propose", 256),
            progress=self.progress,
        )
        private = PrivateText(
            [t.prompt for t in self.tasks]
            + [t.reference for t in self.tasks if t.reference]
            + list(answers)
            + notes
        )
        shared: list[SharedDraft] = []
        withheld = 0
        for d in found.drafts:
            draft = SharedDraft.of(d)
            overlap = private.overlap(draft.words())
            if overlap is None:
                shared.append(draft)
                continue
            withheld += 1
            self.store.note(
                "federation.withheld",
                f"round:{round_}",
                {"draft": draft.model_dump(mode="json"), "overlap": " ".join(overlap)},
                self.actor,
            )
        shared_stats = [
            (pid, s) for pid, s in sorted(agg.per_principle.items()) if s.judged >= head.min_count
        ]
        privacy = None
        if head.epsilon is not None:
            # each principle's mean and violation rate, half the round's budget
            privacy = Privacy(epsilon=head.epsilon / 2, statistics=2 * len(shared_stats))
        figures = tuple(
            PrincipleFigure(
                principle_id=pid,
                mean=round(self._release(s.mean, s.judged, privacy), 6),
                violation_rate=round(self._release(s.violation_rate, s.judged, privacy), 6),
                count=s.judged,
            )
            for pid, s in shared_stats
        )
        return DraftsBody(
            head=head.revision,
            drafts=tuple(shared),
            aggregates=figures,
            withheld=withheld,
            privacy=privacy,
        )

    @staticmethod
    def _release(value: float, n: int, privacy: Privacy | None) -> float:
        """A mean over `n` values in [0, 1] as it may leave: exact, or with Laplace noise."""
        if privacy is None:
            return value
        scale = laplace_scale(n, privacy.epsilon, privacy.statistics)
        return min(1.0, max(0.0, laplace(scale)(value)))

    def figures(self, round_: int, found: CandidatesBody) -> FiguresBody:
        """The gate on the private held-out tasks, for each candidate that applies here."""
        head = self.store.constitution(self.constitution)
        _, heldout = self.split()
        drafts: list[tuple[int, Any]] = []
        unmeasured: list[str] = []
        for i, c in enumerate(found.candidates):
            try:
                candidate_principles(head, c.draft.draft())  # it applies to this head
                drafts.append((i, c.draft.draft()))
            except (CharterError, ValueError):
                unmeasured.append(c.key)
        if len(heldout) < found.min_count or not drafts:
            return FiguresBody(
                head=found.head,
                figures=(),
                unmeasured=tuple(c.key for c in found.candidates),
                privacy=None
                if found.epsilon is None
                else Privacy(epsilon=found.epsilon / 2, statistics=0),
            )
        result = evaluate(
            self.backend,
            head,
            drafts,
            heldout,
            rule=self.config.gate,
            threshold=self.config.threshold,
            paraphrases=self.config.judge_paraphrases,
            params=self.params(round_, "evaluate"),
            progress=self.progress,
            calibrator=self.calibrator,
        )
        epsilon = found.epsilon
        entrenched = sorted(p.principle_id for p in head.principles if p.entrenched)
        # per candidate: before, after and each entrenched principle's effect
        statistics = len(drafts) * (2 + len(entrenched))
        out = []
        for i, _ in drafts:
            e = result.evaluations[i]
            d = e.details
            n = int(d["n"])
            if epsilon is None:
                out.append(
                    CandidateFigure(
                        key=found.candidates[i].key,
                        count=n,
                        before=min(1.0, max(0.0, e.before)),
                        after=min(1.0, max(0.0, e.after)),
                        effect=_unit_clip(d["effect"]),
                        ci=(_unit_clip(d["ci"][0]), _unit_clip(d["ci"][1])),
                        p_value=min(1.0, max(0.0, float(d["p_value"]))),
                        entrenched_regressions=tuple(d.get("entrenched_regressions") or ()),
                    )
                )
                continue
            out.append(
                _private_figure(
                    found.candidates[i].key,
                    n,
                    e.before,
                    e.after,
                    d,
                    entrenched,
                    laplace_scale(n, epsilon / 2, statistics),
                    laplace_scale(n, epsilon / 2, statistics, width=2.0),
                )
            )
        privacy = None if epsilon is None else Privacy(epsilon=epsilon / 2, statistics=statistics)
        return FiguresBody(
            head=found.head, figures=tuple(out), unmeasured=tuple(unmeasured), privacy=privacy
        )


def laplace(scale: float) -> Callable[[float], float]:
    """OpenDP's Laplace mechanism with `scale` (an optional dependency: charter[dp])."""
    try:
        import opendp.prelude as dp
    except ImportError as exc:
        raise InvalidInput("differential privacy needs OpenDP: pip install 'charter[dp]'") from exc
    dp.enable_features("contrib")
    measurement = dp.m.make_laplace(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale=scale
    )
    return lambda value: float(measurement(float(value)))


def _private_figure(
    key: str,
    n: int,
    before: float,
    after: float,
    details: Mapping[str, Any],
    entrenched: Sequence[str],
    scale: float,
    effect_scale: float,
) -> CandidateFigure:
    """A candidate's figures from noisy means only: before and after with Laplace noise, the
    effect their difference, its CI and p-value from public bounds (`private_interval`), and
    an entrenched principle counted as regressed when its noisy effect lies below zero by
    more than the data's margin and the noise's tail."""
    noisy = laplace(scale)
    b = min(1.0, max(0.0, noisy(before)))
    a = min(1.0, max(0.0, noisy(after)))
    effect = _unit_clip(a - b)
    lo, hi = private_interval(effect, n, scale)
    se = private_se(n, scale)
    p_value = math.erfc(abs(effect) / se / math.sqrt(2)) if se > 0 else 1.0
    regressed = []
    per = details.get("per_principle", {})
    noisy_effect = laplace(effect_scale)
    # below zero beyond the data's worst-case 95% margin and the Laplace tail that a draw
    # passes with probability 5% / (entrenched principles): a union bound over them
    margin = 1.96 / math.sqrt(n) + effect_scale * math.log(max(1, len(entrenched)) / 0.1)
    for pid in entrenched:
        if pid in per and noisy_effect(float(per[pid]["effect"])) < -margin:
            regressed.append(pid)
    return CandidateFigure(
        key=key,
        count=n,
        before=round(b, 6),
        after=round(a, 6),
        effect=effect,
        ci=(_unit_clip(lo), _unit_clip(hi)),
        p_value=min(1.0, max(0.0, p_value)),
        se=round(se, 6),
        entrenched_regressions=tuple(regressed),
    )


def _unit_clip(x: float) -> float:
    return round(min(1.0, max(-1.0, float(x))), 6)


# -- the coordinator ----------------------------------------------------------------------


@dataclass(frozen=True)
class RoundSummary:
    round: int
    status: str
    revision: int
    nodes: list[str]
    answered: list[str]
    candidates: int
    verdicts: list[Ruling]
    amendments: list[int]
    applied: list[int]
    refused: list[str]
    seconds: float = 0.0
    """Wall time from the round's start (or resumption) to its end."""

    def as_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "status": self.status,
            "revision": self.revision,
            "nodes": self.nodes,
            "answered": self.answered,
            "candidates": self.candidates,
            "verdicts": [v.model_dump(mode="json") for v in self.verdicts],
            "amendments": self.amendments,
            "applied": self.applied,
            "refused": self.refused,
            "seconds": self.seconds,
        }


@dataclass
class Coordinator:
    """The global constitution's keeper: it runs rounds and decides by `rule`."""

    store: Store
    key: Ed25519PrivateKey
    rule: FederationRule = field(default_factory=FederationRule)
    constitution: str = "default"
    mode: RunMode = "review"
    say: Callable[[str], None] = lambda _m: None
    _started: float = 0.0

    @property
    def public_key(self) -> str:
        return public_hex(self.key)

    def _record(self, round_: int, kind: str, body: dict[str, Any]) -> FederationLogEntry:
        """A coordinator-only log entry (start, refused, decision, end), signed by it."""
        signature = self.key.sign(
            canonical_json({"round": round_, "kind": kind, "body": body}).encode()
        ).hex()
        return self.store.log_federation(round_, kind, COORDINATOR, body, signature, FEDERATION)

    def _log(self, envelope: Envelope) -> None:
        self.store.log_federation(
            envelope.round,
            envelope.kind,
            envelope.sender,
            envelope.body,
            envelope.signature,
            FEDERATION,
        )

    def _once(
        self, entries: Sequence[FederationLogEntry], round_: int, kind: Any, body: Callable[[], Any]
    ) -> Envelope:
        """The round's `kind` message as first sent (from the log on resume), else `body()`
        sealed and logged now: a resumed round resends exactly what it sent."""
        sent = next((e for e in entries if e.kind == kind), None)
        if sent is not None:
            return Envelope(
                sender=COORDINATOR,
                kind=kind,
                round=round_,
                body=sent.body,
                signature=sent.signature,
            )
        envelope = seal(self.key, COORDINATOR, kind, round_, body())
        self._log(envelope)
        return envelope

    def _head_body(self, revision: int, model: type[Any], **extra: Any) -> Any:
        """Revision `revision` as a RoundBody (or RevisionBody) with the rule's settings."""
        at = self.store.constitution(self.constitution, at=revision)
        return model(
            constitution=self.constitution,
            revision=revision,
            hash=self.store.revision(revision, self.constitution).hash,
            principles=tuple(p.as_principle() for p in at.principles),
            min_count=self.rule.min_count,
            epsilon=self.rule.epsilon,
            **extra,
        )

    def accepted_keys(self) -> dict[str, int]:
        """Every key accepted so far, with its round."""
        return {
            e.body["key"]: e.round
            for e in self.store.federation_log()
            if e.kind == "decision" and e.body.get("decision") == "accepted"
        }

    def _open_round(self) -> tuple[int, list[FederationLogEntry]]:
        log = self.store.federation_log()
        if not log:
            return 1, []
        last = log[-1].round
        entries = [e for e in log if e.round == last]
        if any(e.kind == "end" for e in entries):
            return last + 1, []
        return last, entries

    def _receive(
        self,
        node: str,
        reply: bytes | None,
        round_: int,
        kind: str,
        model: type[Any],
        refused: list[str],
    ) -> Any:
        """Check a reply (a registered, active node's signature, the round, the kind, the
        body's ranges) and log it; None, with the reason logged, when it is refused."""
        if reply is None:
            self._record(round_, "refused", {"node": node, "reason": "no reply"})
            refused.append(f"{node}: no reply")
            return None
        try:
            envelope = Envelope.from_bytes(reply)
            registered = self.store.federation_node(envelope.sender)
            if registered.status != "active":
                raise PolicyViolation(f"node {envelope.sender!r} is revoked")
            check_signature(envelope, registered.public_key)
            if envelope.sender != node or envelope.round != round_ or envelope.kind != kind:
                raise InvalidInput(
                    f"expected {kind} for round {round_} from {node!r}, got {envelope.kind} "
                    f"for round {envelope.round} from {envelope.sender!r}"
                )
            found = federation_body(envelope, model)
            wanted = self.rule.epsilon
            if wanted is not None and (found.privacy is None or found.privacy.epsilon > wanted):
                raise PolicyViolation(
                    f"the round requires differential privacy within epsilon {wanted}"
                )
            if isinstance(found, DraftsBody):
                small = [a.principle_id for a in found.aggregates if a.count < self.rule.min_count]
                if small:
                    least = self.rule.min_count
                    raise InvalidInput(f"aggregates over fewer than {least}: {', '.join(small)}")
        except CharterError as exc:
            self._record(round_, "refused", {"node": node, "reason": str(exc)})
            refused.append(f"{node}: {exc}")
            self.say(f"round {round_}: refused {kind} from {node}: {exc}")
            return None
        self._log(envelope)
        return found

    def run_round(self, transport: Transport) -> RoundSummary:
        """Run (or resume) one round to its end, under the rule it started with."""
        configured = self.rule
        try:
            return self._run_round(transport)
        finally:
            self.rule = configured

    def _run_round(self, transport: Transport) -> RoundSummary:
        round_, entries = self._open_round()
        self._started = time.monotonic()
        refused: list[str] = []
        start = next((e for e in entries if e.kind == "start"), None)
        if start is None:
            head = self.store.constitution(self.constitution)
            nodes = [n.name for n in self.store.federation_nodes() if n.status == "active"]
            if not nodes:
                raise InvalidInput("the coordinator has no active nodes")
            start = self._record(
                round_,
                "start",
                {"revision": head.revision, "nodes": nodes, "rule": self.rule.model_dump()},
            )
        self.rule = FederationRule.model_validate(start.body["rule"])
        nodes = list(start.body["nodes"])
        revision = int(start.body["revision"])
        self.say(f"round {round_}: {len(nodes)} nodes, head revision {revision}")
        needed = decide("", nodes, {}, self.rule).needed

        envelope = self._once(
            entries, round_, "round", lambda: self._head_body(revision, RoundBody)
        )
        drafts: dict[str, DraftsBody] = {
            e.sender: DraftsBody.model_validate(e.body) for e in entries if e.kind == "drafts"
        }
        asked = _exchange(transport, [n for n in nodes if n not in drafts], envelope)
        for node, reply in asked.items():
            got = self._receive(node, reply, round_, "drafts", DraftsBody, refused)
            if got is not None:
                drafts[node] = got
                self.say(f"round {round_}: {node} sent {len(got.drafts)} drafts")
        if len(drafts) < needed:
            reason = f"only {len(drafts)} of {len(nodes)} nodes answered; the quorum needs {needed}"
            return self._end(round_, "inconclusive", reason, revision, nodes, drafts, refused)

        def merged() -> CandidatesBody:
            done = self.accepted_keys()
            return CandidatesBody(
                head=revision,
                candidates=tuple(
                    c for c in merge({n: d.drafts for n, d in drafts.items()}) if c.key not in done
                ),
                min_count=self.rule.min_count,
                epsilon=self.rule.epsilon,
            )

        c_env = self._once(entries, round_, "candidates", merged)
        candidates = list(CandidatesBody.model_validate(c_env.body).candidates)
        self.say(f"round {round_}: {len(candidates)} candidates")
        if not candidates:
            return self._end(round_, "completed", "no drafts", revision, nodes, drafts, refused)

        figures: dict[str, FiguresBody] = {
            e.sender: FiguresBody.model_validate(e.body) for e in entries if e.kind == "figures"
        }
        asked = _exchange(transport, [n for n in nodes if n in drafts and n not in figures], c_env)
        for node, reply in asked.items():
            got = self._receive(node, reply, round_, "figures", FiguresBody, refused)
            if got is not None:
                figures[node] = got

        decided = {e.body["key"]: e for e in entries if e.kind == "decision"}
        verdicts: list[Ruling] = []
        amendments: list[int] = []
        applied: list[int] = []
        for c in candidates:
            if c.key in decided:
                verdicts.append(Ruling.model_validate(decided[c.key].body["verdict"]))
                if (aid := decided[c.key].body.get("amendment")) is not None:
                    amendments.append(aid)
                continue
            by_node = {
                n: f for n, body_f in figures.items() for f in body_f.figures if f.key == c.key
            }
            v = decide(c.key, nodes, by_node, self.rule)
            body_d: dict[str, Any] = {
                "key": c.key,
                "decision": v.decision,
                "verdict": v.model_dump(mode="json"),
                "figures": {n: f.model_dump(mode="json") for n, f in sorted(by_node.items())},
            }
            amendment = None
            if v.decision == "accepted":
                try:
                    amendment = self._amend(round_, c, v, by_node)
                except CharterError as exc:  # it no longer applies to the head, or the policy
                    body_d["not_proposed"] = str(exc)
                    self.say(f"round {round_}: {c.key} accepted but not proposed: {exc}")
            body_d["amendment"] = amendment.id if amendment is not None else None
            if amendment is not None and amendment.status == "applied":
                applied.append(amendment.id)
                body_d["applied"] = True
            elif amendment is not None and self.mode == "autonomous":
                try:
                    self.store.apply(amendment.id, FEDERATION, autonomous=True)
                    applied.append(amendment.id)
                    body_d["applied"] = True
                except PolicyViolation as exc:
                    body_d["applied"] = False
                    body_d["waiting"] = str(exc)
            self._record(round_, "decision", body_d)
            verdicts.append(v)
            if amendment is not None:
                amendments.append(amendment.id)
            self.say(f"round {round_}: {c.key} {v.decision}: {v.reason}")
        status = (
            "completed" if any(v.decision != "inconclusive" for v in verdicts) else "inconclusive"
        )
        return self._end(
            round_,
            status,
            f"{sum(v.decision == 'accepted' for v in verdicts)} of {len(verdicts)} accepted",
            revision,
            nodes,
            drafts,
            refused,
            candidates=candidates,
            verdicts=verdicts,
            amendments=amendments,
            applied=applied,
            transport=transport,
        )

    def _amend(
        self, round_: int, c: Candidate, v: Ruling, figures: Mapping[str, CandidateFigure]
    ) -> Amendment:
        """The accepted draft as an amendment (found again, not proposed twice, on resume)."""
        evidence = f"federation:round:{round_}:{c.key}"
        for a in self.store.amendments(self.constitution):
            if evidence in a.draft.evidence:
                return a
        amendment = self.store.propose(c.draft.draft([evidence]), FEDERATION, self.constitution)
        assert v.pooled_ci is not None
        total = sum(f.count for f in figures.values())
        evaluation = Evaluation(
            before=round(sum(f.before * f.count for f in figures.values()) / total, 6),
            after=round(sum(f.after * f.count for f in figures.values()) / total, 6),
            passed=True,
            outcome="passed",
            details={
                "federation": {
                    "round": round_,
                    "authors": list(c.authors),
                    "verdict": v.model_dump(mode="json"),
                },
                "effect": v.pooled_effect,
                "ci": list(v.pooled_ci),
                "p_value": v.pooled_p,
                "n": total,
                "nodes": {n: f.model_dump(mode="json") for n, f in sorted(figures.items())},
                "reason": v.reason,
            },
        )
        return self.store.record_evaluation(amendment.id, evaluation, FEDERATION)

    def _end(
        self,
        round_: int,
        status: str,
        reason: str,
        revision: int,
        nodes: list[str],
        drafts: Mapping[str, DraftsBody],
        refused: list[str],
        *,
        candidates: Sequence[Candidate] = (),
        verdicts: Sequence[Ruling] = (),
        amendments: Sequence[int] = (),
        applied: Sequence[int] = (),
        transport: Transport | None = None,
    ) -> RoundSummary:
        """Record the round's end; with a `transport`, send a new head to the nodes first."""
        head = self.store.constitution(self.constitution)
        if transport is not None and head.revision != revision:
            body = self._head_body(
                head.revision,
                RevisionBody,
                accepted=tuple(v.key for v in verdicts if v.decision == "accepted"),
            )
            envelope = seal(self.key, COORDINATOR, "revision", round_, body)
            self._log(envelope)
            _exchange(transport, nodes, envelope)
        self._record(round_, "end", {"status": status, "reason": reason, "revision": head.revision})
        self.say(f"round {round_}: {status} ({reason})")
        return RoundSummary(
            round=round_,
            status=status,
            revision=head.revision,
            nodes=nodes,
            answered=sorted(drafts),
            candidates=len(candidates),
            verdicts=list(verdicts),
            amendments=list(amendments),
            applied=list(applied),
            refused=refused,
            seconds=round(time.monotonic() - self._started, 2),
        )


def _exchange(
    transport: Transport, nodes: Sequence[str], envelope: Envelope
) -> dict[str, bytes | None]:
    """Send `envelope` to `nodes` at once; a failure of the wire is no reply from any."""
    if not nodes:
        return {}
    data = envelope.to_bytes()
    try:
        replies = transport.exchange({n: data for n in nodes})
    except (OSError, CharterError):
        replies = {}
    return {n: replies.get(n) for n in nodes}
