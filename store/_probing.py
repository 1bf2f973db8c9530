"""Bias probe runs (mixed into Store): append-only reports, each written with its audit event
(`probe.run`) in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, select

from principles import Actor, NewProbeRun, NotFound, ProbeRun
from store import _audit, _ids
from store._base import StoreBase
from store._judging import _finite_json, created_records, insert_created
from store._schema import probe_runs


def _runs(conn: Connection, query: Select[Any]) -> list[ProbeRun]:
    return created_records(conn, query, ProbeRun)


def record_probe_run(conn: Connection, new: NewProbeRun, actor: Actor) -> ProbeRun:
    _finite_json(new.report, "the probe report")
    pid = insert_created(conn, probe_runs, new, actor)
    _audit.append(
        conn,
        actor.ref,
        "probe.run",
        f"constitution:{new.constitution}",
        {
            "probe_run": pid,
            "revision": new.revision,
            "model": new.model,
            "suite": new.suite,
            "variants": new.variants,
            "flagged": new.flagged,
        },
    )
    return _runs(conn, select(probe_runs).where(probe_runs.c.id == pid))[0]


class ProbingAPI(StoreBase):
    def record_probe_run(self, new: NewProbeRun, actor: Actor) -> ProbeRun:
        """Store a bias probe's report; audited `probe.run`."""
        result: ProbeRun = self._write(lambda c: record_probe_run(c, new, actor))
        return result

    def probe_runs(self, constitution: str, revision: int | None = None) -> list[ProbeRun]:
        """The constitution's probe runs oldest first (only those under `revision`)."""

        def run(conn: Connection) -> list[ProbeRun]:
            query = select(probe_runs).where(probe_runs.c.constitution == constitution)
            if revision is not None:
                query = query.where(probe_runs.c.revision == revision)
            return _runs(conn, query.order_by(probe_runs.c.id))

        result: list[ProbeRun] = self._read(run)
        return result

    def probe_run(self, run_id: int) -> ProbeRun:
        def run(conn: Connection) -> ProbeRun:
            _ids.require(conn, "probe run", run_id)
            found = _runs(conn, select(probe_runs).where(probe_runs.c.id == run_id))
            if not found:
                raise NotFound("probe run", run_id)
            return found[0]

        result: ProbeRun = self._read(run)
        return result
