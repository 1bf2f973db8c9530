"""Federation (mixed into Store). A coordinator's database holds the node registry and the
append-only round log; a node's database holds the global revisions it adopted, each a
commit whose audit event names the round and the coordinator's signature, and audit events
for what it sent (`federation.send`, a digest, never the content's private inputs) and what
it held back (`federation.withheld`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from principles import (
    SYSTEM,
    Actor,
    Change,
    Conflict,
    FederationLogEntry,
    FederationNode,
    InvalidInput,
    NotFound,
    Principle,
    Revision,
    utcnow,
)
from store import _audit, _queries, _writes
from store._amend import cid, head
from store._base import StoreBase
from store._schema import federation_log, federation_nodes

AUDITED_KINDS = frozenset({"start", "decision", "end"})
"""Log entries that also make an audit event: a round's start, each decision, its end."""


def _node(conn: Connection, name: str) -> FederationNode:
    row = conn.execute(select(federation_nodes).where(federation_nodes.c.name == name)).first()
    if row is None:
        raise NotFound("federation node", name)
    return FederationNode.model_validate(row._asdict())


class FederationAPI(StoreBase):
    # -- the coordinator's registry and log ----------------------------------------------

    def register_node(self, name: str, public_key: str, actor: Actor) -> FederationNode:
        """Admit a node by its Ed25519 public key (hex). Registering the same key again is a
        no-op; another key under a known name is refused (revoke, then use a new name)."""
        node = FederationNode(
            name=name,
            public_key=public_key,
            status="active",
            created_by=actor.ref,
            created_at=utcnow(),
        )

        def run(conn: Connection) -> FederationNode:
            row = conn.execute(
                select(federation_nodes).where(federation_nodes.c.name == name)
            ).first()
            if row is not None:
                if row.public_key == public_key and row.status == "active":
                    return FederationNode.model_validate(row._asdict())
                raise Conflict(f"node {name!r} is already registered with another key or revoked")
            _writes.ensure_actor(conn, actor)
            conn.execute(insert(federation_nodes).values(**node.model_dump()))
            _audit.append(
                conn,
                actor.ref,
                "federation.node.register",
                f"node:{name}",
                {"public_key": public_key},
            )
            return node

        result: FederationNode = self._write(run)
        return result

    def revoke_node(self, name: str, actor: Actor) -> FederationNode:
        """Refuse the node's messages from now on; audited."""

        def run(conn: Connection) -> FederationNode:
            _node(conn, name)
            conn.execute(
                update(federation_nodes)
                .where(federation_nodes.c.name == name)
                .values(status="revoked")
            )
            _writes.ensure_actor(conn, actor)
            _audit.append(conn, actor.ref, "federation.node.revoke", f"node:{name}", {})
            return _node(conn, name)

        result: FederationNode = self._write(run)
        return result

    def federation_nodes(self) -> list[FederationNode]:
        def run(conn: Connection) -> list[FederationNode]:
            rows = conn.execute(select(federation_nodes).order_by(federation_nodes.c.name))
            return [FederationNode.model_validate(r._asdict()) for r in rows]

        result: list[FederationNode] = self._read(run)
        return result

    def federation_node(self, name: str) -> FederationNode:
        result: FederationNode = self._read(lambda c: _node(c, name))
        return result

    def log_federation(
        self,
        round_: int,
        kind: str,
        sender: str,
        body: dict[str, Any],
        signature: str,
        actor: Actor,
    ) -> FederationLogEntry:
        """Append one entry to the round log (with an audit event for a round's start, a
        decision and a round's end)."""

        def run(conn: Connection) -> FederationLogEntry:
            at = utcnow()
            values = {
                "round": round_,
                "kind": kind,
                "sender": sender,
                "body": body,
                "signature": signature,
                "created_at": at,
            }
            pk = conn.execute(insert(federation_log).values(**values)).inserted_primary_key
            assert pk is not None
            if kind in AUDITED_KINDS:
                _writes.ensure_actor(conn, actor)
                summary = {
                    k: v
                    for k, v in body.items()
                    if k in ("revision", "nodes", "key", "decision", "amendment", "status")
                }
                _audit.append(
                    conn,
                    actor.ref,
                    f"federation.{kind}",
                    f"round:{round_}",
                    {"entry": int(pk[0]), **summary},
                )
            return FederationLogEntry(id=int(pk[0]), **values)

        result: FederationLogEntry = self._write(run)
        return result

    def federation_log(self, round_: int | None = None) -> list[FederationLogEntry]:
        """The round log in order (one round's entries, or all)."""

        def run(conn: Connection) -> list[FederationLogEntry]:
            query = select(federation_log).order_by(federation_log.c.id)
            if round_ is not None:
                query = query.where(federation_log.c.round == round_)
            return [FederationLogEntry.model_validate(r._asdict()) for r in conn.execute(query)]

        result: list[FederationLogEntry] = self._read(run)
        return result

    # -- a node's side -------------------------------------------------------------------

    def adopt(
        self,
        name: str,
        principles: list[Principle],
        provenance: dict[str, Any],
        *,
        actor: Actor = SYSTEM,
    ) -> Revision | None:
        """Make the local head equal `principles` (a global revision), as a commit whose
        audit event carries `provenance` (round, coordinator revision, signature). None when
        the head already equals it; the constitution is created on first adoption."""

        def run(conn: Connection) -> Revision | None:
            _writes.ensure_actor(conn, actor)
            message = (
                f"adopt global revision {provenance.get('revision')} "
                f"(round {provenance.get('round')})"
            )
            payload = {"federation": provenance}
            if name not in _queries.constitution_names(conn):
                constitution = _writes.create_constitution(conn, name, "", actor)
                changes = [Change(principle_id=p.id, principle=p) for p in principles]
                return _writes.commit(
                    conn, constitution, name, changes, actor, message, audit_payload=payload
                )
            current = head(conn, name)
            wanted = {p.id: p for p in principles}
            changes = [
                Change(principle_id=p.id, principle=p)
                for p in principles
                if (h := current.get(p.id)) is None or h.as_principle() != p
            ] + [
                Change(principle_id=p.principle_id, principle=None)
                for p in current.principles
                if p.principle_id not in wanted
            ]
            if not changes:
                return None
            return _writes.commit(
                conn, cid(conn, name), name, changes, actor, message, audit_payload=payload
            )

        result: Revision | None = self._write(run)
        return result

    def note(self, action: str, subject: str, payload: dict[str, Any], actor: Actor) -> None:
        """An audit event of its own (a node's `federation.send` or `federation.withheld`)."""
        if not action.startswith("federation."):
            raise InvalidInput("only federation events are noted directly")

        def run(conn: Connection) -> None:
            _writes.ensure_actor(conn, actor)
            _audit.append(conn, actor.ref, action, subject, payload)

        self._write(run)
