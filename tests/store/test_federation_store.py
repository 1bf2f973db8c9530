"""The federation's records on both databases: the node registry, the append-only round log,
and a node's adoption of a global revision."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from principles import Conflict, NotFound, Principle, default_seed, new_key, public_hex
from store import Store
from tests.conftest import CAROL


def test_nodes_are_admitted_by_key_and_revoking_is_audited(store: Store) -> None:
    key = public_hex(new_key())
    node = store.register_node("org-a", key, CAROL)
    assert node.status == "active" and node.public_key == key
    assert store.register_node("org-a", key, CAROL) == node  # the same key again: a no-op
    with pytest.raises(Conflict):
        store.register_node("org-a", public_hex(new_key()), CAROL)
    assert store.revoke_node("org-a", CAROL).status == "revoked"
    with pytest.raises(Conflict):
        store.register_node("org-a", key, CAROL)  # a revoked node stays revoked
    with pytest.raises(NotFound):
        store.revoke_node("org-b", CAROL)
    actions = [e.action for e in store.audit_log() if e.action.startswith("federation.")]
    assert actions == ["federation.node.register", "federation.node.revoke"]
    assert store.verify().status == "intact"


@pytest.mark.parametrize(
    "statement", ["UPDATE federation_log SET kind = 'end'", "DELETE FROM federation_log"]
)
def test_the_round_log_is_append_only_and_its_milestones_are_audited(
    store: Store, statement: str
) -> None:
    store.log_federation(1, "start", "coordinator", {"revision": 1, "nodes": ["a"]}, "00", CAROL)
    store.log_federation(1, "drafts", "a", {"head": 1}, "11", CAROL)
    store.log_federation(1, "end", "coordinator", {"status": "completed"}, "22", CAROL)
    assert [e.kind for e in store.federation_log(1)] == ["start", "drafts", "end"]
    audited = [e.action for e in store.audit_log() if e.action.startswith("federation.")]
    assert audited == ["federation.start", "federation.end"]
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert [e.kind for e in store.federation_log()] == ["start", "drafts", "end"]


def test_a_node_adopts_a_global_revision_with_its_provenance(store: Store) -> None:
    seed = list(default_seed().principles)
    provenance = {"round": 1, "revision": 4, "hash": "h", "coordinator_signature": "s"}
    first = store.adopt("global", seed, provenance)
    assert first is not None and first.number == 1
    assert store.adopt("global", seed, provenance) is None  # already the head
    changed = [
        Principle(id=p.id, title=p.title, text=p.text + " Say so.", entrenched=p.entrenched)
        if p.id == "clarity"
        else p
        for p in seed[1:]
    ]
    second = store.adopt("global", changed, {**provenance, "round": 2, "revision": 6})
    assert second is not None and second.number == 2
    head = store.constitution("global")
    assert [p.as_principle() for p in head.principles] == sorted(changed, key=lambda p: p.id)
    events = [e for e in store.audit_log() if "federation" in e.payload]
    assert [e.payload["federation"]["revision"] for e in events] == [4, 6]
    assert store.verify().status == "intact"
