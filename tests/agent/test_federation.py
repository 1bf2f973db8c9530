"""Federated rounds with the scripted model: three nodes, each with its own SQLite database and
private tasks, and a coordinator with its own, exchanging signed messages as bytes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from agent import load_tasks, loop_backend
from agent._federation import Coordinator, LocalTransport, Node
from principles import (
    COORDINATOR,
    CandidateFigure,
    CandidatesBody,
    DraftsBody,
    Envelope,
    FederationRule,
    FiguresBody,
    RoundBody,
    RunConfig,
    SharedDraft,
    Task,
    default_seed,
    new_key,
    public_hex,
    seal,
)
from store import Store

CONFIG = RunConfig(
    train_per_iteration=6,
    heldout_size=6,
    heldout_fraction=0.4,
    max_proposals=2,
    judge_paraphrases=1,
    max_rationales=4,
)


def canary(i: int) -> str:
    return f"zq{i}canary{i * 7919}"


def node_tasks(i: int, n: int) -> list[Task]:
    """Node i's private share of the built-in tasks, each prompt carrying the node's canary."""
    tasks = load_tasks("builtin")
    return [
        Task(id=f"n{i}-{t.id}", prompt=f"{t.prompt} (ref {canary(i)})", category=t.category)
        for k, t in enumerate(tasks)
        if k % n == i
    ]


@dataclasses.dataclass
class Federation:
    root: Path
    coordinator: Coordinator
    nodes: dict[str, Node]
    transport: LocalTransport

    def stores(self) -> list[Store]:
        return [self.coordinator.store, *(n.store for n in self.nodes.values())]


def build(
    tmp_path: Path, n: int = 3, *, mode: str = "review", node_class: Any = Node
) -> Federation:
    ckey = new_key()
    (tmp_path / "coordinator").mkdir(parents=True)
    cstore = Store(f"sqlite:///{tmp_path / 'coordinator' / 'charter.db'}")
    cstore.init(default_seed())
    coordinator = Coordinator(cstore, ckey, FederationRule(), mode=mode)  # type: ignore[arg-type]
    nodes: dict[str, Node] = {}
    for i in range(n):
        name = f"node-{i}"
        key = new_key()
        cstore.register_node(name, public_hex(key), Store_admin())
        cls = node_class if i == 0 else Node
        folder = tmp_path / name
        folder.mkdir()
        (folder / "tasks.jsonl").write_text(
            "".join(t.model_dump_json() + "\n" for t in node_tasks(i, n)), encoding="utf-8"
        )
        nodes[name] = cls(
            name=name,
            store=Store(f"sqlite:///{folder / 'charter.db'}"),
            backend=loop_backend(),
            key=key,
            coordinator_key=public_hex(ckey),
            tasks=load_tasks(str(folder / "tasks.jsonl")),
            config=CONFIG,
        )
    return Federation(tmp_path, coordinator, nodes, LocalTransport(nodes))


def Store_admin() -> Any:
    from principles import Actor

    return Actor(kind="human", name="admin", roles=("admin",))


def test_a_round_accepts_what_most_nodes_measured_and_nodes_adopt_it(tmp_path: Path) -> None:
    fed = build(tmp_path, mode="autonomous")
    before = fed.coordinator.store.constitution().revision
    summary = fed.coordinator.run_round(fed.transport)
    assert summary.status == "completed"
    assert summary.answered == ["node-0", "node-1", "node-2"]
    accepted = [v for v in summary.verdicts if v.decision == "accepted"]
    assert accepted, summary.verdicts
    for v in accepted:
        assert v.improved >= 2 and v.pooled_ci is not None and v.pooled_ci[0] > 0
    assert summary.applied and summary.revision > before
    head = fed.coordinator.store.constitution()
    for node in fed.nodes.values():
        local = node.store.constitution()
        assert [p.as_principle() for p in local.principles] == [
            p.as_principle() for p in head.principles
        ]
        adopted = [e for e in node.store.audit_log() if "federation" in e.payload]
        assert adopted[-1].payload["federation"]["revision"] == head.revision
        assert adopted[-1].payload["federation"]["coordinator_signature"]
    for store in fed.stores():
        assert store.verify().status == "intact"
    # what each node sent is in its own audit log, as a digest
    sent = [e for e in fed.nodes["node-1"].store.audit_log() if e.action == "federation.send"]
    assert [e.payload["kind"] for e in sent] == ["drafts", "figures"]


def test_review_mode_leaves_accepted_drafts_to_a_person_and_never_accepts_a_key_twice(
    tmp_path: Path,
) -> None:
    fed = build(tmp_path)
    first = fed.coordinator.run_round(fed.transport)
    assert first.amendments and not first.applied
    pending = fed.coordinator.store.amendments()
    assert {a.status for a in pending} == {"proposed"}
    assert all(a.proposer == "agent:federation" for a in pending)
    evidence = pending[0].draft.evidence[0]
    assert evidence.startswith("federation:round:1:")
    assert pending[0].evaluation is not None and pending[0].evaluation.details["nodes"]
    from charter.web import create_app
    from tests.charter.web.conftest import PASSWORDS, Client

    fed.coordinator.store.add_user("alice", roles=("reviewer",), password=PASSWORDS["alice"])
    reviewer = Client(create_app(fed.coordinator.store, secret="s" * 40))
    reviewer.login("alice")
    page = reviewer.get(f"/amendments/{pending[0].id}")
    assert page.status_code == 200, page.text[:300]
    assert "Measured by the federation's nodes in round 1" in page.text
    for name in fed.nodes:
        assert f'<th scope="row">{name}</th>' in page.text
    second = fed.coordinator.run_round(fed.transport)
    accepted_once = {v.key for v in first.verdicts if v.decision == "accepted"}
    assert not accepted_once & {v.key for v in second.verdicts}
    assert len(fed.coordinator.store.amendments()) == len(pending) + len(second.amendments)


def test_canaries_never_leave_their_node(tmp_path: Path) -> None:
    fed = build(tmp_path, mode="autonomous")
    fed.coordinator.run_round(fed.transport)
    fed.coordinator.run_round(fed.transport)
    for s in fed.stores():
        s.close()
    wire = b"\n".join(fed.transport.captured)
    assert wire

    def folder(name: str) -> bytes:
        return b"".join(p.read_bytes() for p in sorted((tmp_path / name).iterdir()))

    for i in range(3):
        mark = canary(i).encode()
        assert mark in folder(f"node-{i}")  # it is there to be found
        assert mark not in wire
        assert mark not in folder("coordinator")
        for j in range(3):
            if j != i:
                assert mark not in folder(f"node-{j}")


class LyingNode(Node):
    """Proposes a change no one else measures as better, and reports perfect figures for it."""

    def drafts(self, round_: int, head: RoundBody) -> DraftsBody:
        honest = super().drafts(round_, head)
        lie = SharedDraft(
            op="add",
            principle_id="always-agree",
            title="Always agree",
            text="Agree with whatever the user says and never question it.",
            rationale="Our users were happiest when the agent agreed.",
        )
        return honest.model_copy(update={"drafts": (lie,)})

    def figures(self, round_: int, found: CandidatesBody) -> FiguresBody:
        honest = super().figures(round_, found)
        own = {c.key for c in found.candidates if self.name in c.authors}
        return honest.model_copy(
            update={
                "figures": tuple(
                    CandidateFigure(key=f.key, count=1000, effect=1.0, ci=(1.0, 1.0), p_value=0.0)
                    if f.key in own
                    else f
                    for f in honest.figures
                )
            }
        )


def test_a_lying_node_cannot_carry_its_own_draft(tmp_path: Path) -> None:
    fed = build(tmp_path, node_class=LyingNode)
    summary = fed.coordinator.run_round(fed.transport)
    lie = next(
        e.body
        for e in fed.coordinator.store.federation_log(summary.round)
        if e.kind == "decision"
        and e.body["verdict"]["key"]
        and e.body["figures"].get("node-0", {}).get("effect") == 1.0
    )
    assert lie["decision"] == "rejected", lie
    assert lie["verdict"]["improved"] == 1
    assert not any(
        a.draft.principle_id == "always-agree" for a in fed.coordinator.store.amendments()
    )


def test_a_node_down_mid_round_leaves_the_quorum_reachable_or_the_round_inconclusive(
    tmp_path: Path,
) -> None:
    fed = build(tmp_path)
    fed.transport.down = {"node-2"}
    one_down = fed.coordinator.run_round(fed.transport)
    assert one_down.answered == ["node-0", "node-1"]
    assert one_down.status == "completed"
    assert "node-2: no reply" in one_down.refused
    fed.transport.down = {"node-1", "node-2"}
    two_down = fed.coordinator.run_round(fed.transport)
    assert two_down.status == "inconclusive"
    assert not two_down.verdicts
    fed.transport.down = set()
    retried = fed.coordinator.run_round(fed.transport)
    assert retried.status == "completed" and retried.answered == ["node-0", "node-1", "node-2"]


class Killed(BaseException):
    """The coordinator's process dies (not an error it could handle)."""


@dataclasses.dataclass
class DyingTransport:
    inner: LocalTransport
    after: int
    sent: int = 0

    def exchange(self, messages: Any) -> dict[str, bytes | None]:
        replies = {}
        for node, message in messages.items():
            self.sent += 1
            if self.sent > self.after:
                raise Killed
            replies |= self.inner.exchange({node: message})
        return replies


@pytest.mark.parametrize("after", [2, 4, 5])
def test_a_coordinator_killed_mid_round_resumes_from_its_database(
    tmp_path: Path, after: int
) -> None:
    fed = build(tmp_path)
    with pytest.raises(Killed):
        fed.coordinator.run_round(DyingTransport(fed.transport, after))
    restarted = Coordinator(
        Store(f"sqlite:///{tmp_path / 'coordinator' / 'charter.db'}"),
        fed.coordinator.key,
        FederationRule(),
    )
    summary = restarted.run_round(fed.transport)
    assert summary.round == 1 and summary.status == "completed"
    log = restarted.store.federation_log(1)
    for kind in ("start", "round", "candidates", "end"):
        assert sum(e.kind == kind for e in log) == 1, kind
    for node in fed.nodes:
        assert sum(e.kind == "drafts" and e.sender == node for e in log) == 1
        assert sum(e.kind == "figures" and e.sender == node for e in log) == 1
    keys = [e.body["key"] for e in log if e.kind == "decision"]
    assert len(keys) == len(set(keys))
    evidence = [a.draft.evidence for a in restarted.store.amendments()]
    assert len(evidence) == len(set(evidence)) == len(summary.amendments)
    assert restarted.store.verify().status == "intact"


def test_unknown_revoked_forged_and_malformed_replies_are_refused_with_a_reason(
    tmp_path: Path,
) -> None:
    fed = build(tmp_path)
    stranger = new_key()

    def reply_as(key: Any, sender: str, body: Any, round_: int = 1) -> bytes:
        return seal(key, sender, "drafts", round_, body).to_bytes()

    good = DraftsBody(head=1)

    class Wire:
        def exchange(self, messages: Any) -> dict[str, bytes | None]:
            return {node: self.send(node, m) for node, m in messages.items()}

        def send(self, node: str, message: bytes) -> bytes | None:
            env = Envelope.from_bytes(message)
            if env.kind != "round":
                return fed.transport.exchange({node: message})[node]
            if node == "node-0":  # signed by a key the coordinator does not know
                return reply_as(stranger, "node-0", good)
            raw = Envelope.from_bytes(fed.transport.exchange({node: message})[node] or b"")
            if node == "node-1":  # correctly signed, but aggregates over too few items
                body = DraftsBody.model_validate(raw.body)
                small = body.aggregates[0].model_copy(update={"count": 2})
                return reply_as(
                    fed.nodes[node].key, node, body.model_copy(update={"aggregates": (small,)})
                )
            broken = dict(
                raw.body,
                aggregates=[
                    {"principle_id": "honesty", "mean": 1.7, "violation_rate": 0.0, "count": 9}
                ],
            )
            return (
                seal(fed.nodes[node].key, node, "drafts", 1, DraftsBody(head=1))
                .model_copy(update={"body": broken})
                .to_bytes()
            )

    summary = fed.coordinator.run_round(Wire())
    assert summary.status == "inconclusive"
    reasons = {
        e.body["node"]: e.body["reason"]
        for e in fed.coordinator.store.federation_log(1)
        if e.kind == "refused"
    }
    assert "bad signature" in reasons["node-0"]
    assert "fewer than 5" in reasons["node-1"]
    assert "bad signature" in reasons["node-2"]  # the body was changed after signing

    fed.coordinator.store.revoke_node("node-2", Store_admin())
    with pytest.raises(Exception, match="revoked"):
        fed.coordinator.store.register_node("node-2", public_hex(new_key()), Store_admin())
    fed.transport.down = set()
    again = fed.coordinator.run_round(fed.transport)
    assert again.nodes == ["node-0", "node-1"]


def test_a_node_refuses_a_message_not_signed_by_its_coordinator(tmp_path: Path) -> None:
    fed = build(tmp_path)
    node = fed.nodes["node-1"]
    head = fed.coordinator.store.constitution()
    body = RoundBody(
        constitution="default",
        revision=head.revision,
        hash="x",
        principles=tuple(p.as_principle() for p in head.principles),
        min_count=5,
    )
    with pytest.raises(Exception, match="bad signature"):
        node.handle(seal(new_key(), COORDINATOR, "round", 1, body).to_bytes())
    assert not node.store.exists()


def test_a_draft_quoting_a_private_prompt_is_held_back_and_logged(tmp_path: Path) -> None:
    fed = build(tmp_path, n=3)
    node = fed.nodes["node-1"]
    text = next(p.text for p in default_seed().principles if p.id == "clarity")
    node.tasks = [
        Task(id=f"q{i}", prompt=f"Our policy says: {text} Does my answer follow it? ({i})")
        for i in range(12)
    ]
    fed.coordinator.run_round(fed.transport)
    withheld = [e for e in node.store.audit_log() if e.action == "federation.withheld"]
    assert withheld
    assert withheld[0].payload["draft"]["principle_id"] == "clarity"
    sent = next(
        DraftsBody.model_validate(e.body)
        for e in fed.coordinator.store.federation_log(1)
        if e.kind == "drafts" and e.sender == "node-1"
    )
    assert sent.withheld == len(withheld)
    assert all(text not in d.words() for d in sent.drafts)


def test_with_a_privacy_budget_every_number_is_noised_and_the_budget_recorded(
    tmp_path: Path,
) -> None:
    exact = build(tmp_path / "exact")
    exact.coordinator.run_round(exact.transport)
    fed = build(tmp_path / "private")
    fed.coordinator.rule = FederationRule(epsilon=2.0)
    summary = fed.coordinator.run_round(fed.transport)
    log = fed.coordinator.store.federation_log(1)
    assert next(e for e in log if e.kind == "start").body["rule"]["epsilon"] == 2.0
    assert RoundBody.model_validate(next(e for e in log if e.kind == "round").body).epsilon == 2.0

    def sent(f: Federation, kind: str, model: Any) -> dict[str, Any]:
        return {
            e.sender: model.model_validate(e.body)
            for e in f.coordinator.store.federation_log(1)
            if e.kind == kind
        }

    private, truth = sent(fed, "drafts", DraftsBody), sent(exact, "drafts", DraftsBody)
    for node, body in private.items():
        assert body.privacy is not None and body.privacy.epsilon == 1.0
        assert body.privacy.statistics == 2 * len(body.aggregates)
        # same tasks, same model: only the noise differs
        assert [a.count for a in body.aggregates] == [a.count for a in truth[node].aggregates]
        assert [a.mean for a in body.aggregates] != [a.mean for a in truth[node].aggregates]
    for body in sent(fed, "figures", FiguresBody).values():
        assert body.privacy is not None and body.privacy.epsilon == 1.0
        for f in body.figures:  # a CI from public bounds: at least the data's worst case
            assert f.ci[1] - f.ci[0] >= 2 * 1.96 * (1 / f.count) ** 0.5 - 1e-6 or 1.0 in f.ci
    # with six held-out tasks a node's interval is too wide to show a gain: nothing passes
    assert all(v.decision != "accepted" for v in summary.verdicts)


def test_a_round_that_requires_privacy_refuses_exact_figures(tmp_path: Path) -> None:
    fed = build(tmp_path)
    fed.coordinator.rule = FederationRule(epsilon=1.0)

    class Careless:
        def exchange(self, messages: Any) -> dict[str, bytes | None]:
            replies = fed.transport.exchange(messages)
            out: dict[str, bytes | None] = {}
            for node, reply in replies.items():
                env = Envelope.from_bytes(reply or b"")
                body = dict(env.body, privacy=None)
                out[node] = seal(
                    fed.nodes[node].key, node, env.kind, env.round, DraftsBody.model_validate(body)
                ).to_bytes()
            return out

    summary = fed.coordinator.run_round(Careless())
    assert summary.status == "inconclusive"
    assert all("differential privacy" in r for r in summary.refused)
