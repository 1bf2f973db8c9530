"""Run leases: at most one process executes a run at a time.

A process claims a run's lease inside a write transaction (SQLite's `BEGIN IMMEDIATE`,
PostgreSQL's advisory write lock), so two claims never both succeed. A live lease is
refused with `Conflict` and nothing changes; a stale one (its process gone, or on another
machine its heartbeat quiet for longer than `LEASE_TTL`) is taken over, so a run whose
process was killed stays resumable. Finishing a run releases its lease.

The run's `updated_at` is the heartbeat: recording a step bumps it, and so does `renew`,
which the holder calls while a long step runs. Only the holder writes: a step, a finish or
a renewal under a lease that is no longer the run's raises `LeaseLost` and writes nothing,
so a process whose run was taken over stops instead of writing beside the new holder.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from principles import Conflict, LeaseLost, NotFound, RunLease, lease_is_stale, utcnow
from store._schema import runs

_LEASE_COLS = (runs.c.lease_token, runs.c.lease_host, runs.c.lease_pid, runs.c.lease_since)


def this_process() -> RunLease:
    """A new lease for the calling process (a fresh token for every claim)."""
    return RunLease(
        token=uuid.uuid4().hex, host=socket.gethostname(), pid=os.getpid(), since=utcnow()
    )


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (a zombie, killed but not reaped, is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def lease_of(row: Any) -> RunLease | None:
    """The lease recorded on a `runs` row, if any."""
    if row.lease_token is None:
        return None
    return RunLease(
        token=row.lease_token, host=row.lease_host, pid=row.lease_pid, since=row.lease_since
    )


def claim(conn: Connection, run_id: int, lease: RunLease, now: datetime | None = None) -> None:
    """Make `lease` the run's lease, unless a live one is held by another claim."""
    now = now or utcnow()
    row = conn.execute(select(*_LEASE_COLS, runs.c.updated_at).where(runs.c.id == run_id)).one()
    held = lease_of(row)
    if held is not None and held.token != lease.token:
        alive = pid_alive(held.pid) if held.host == lease.host else True
        if not lease_is_stale(held, row.updated_at, now, host=lease.host, holder_alive=alive):
            raise Conflict(f"run {run_id} is already being resumed (by {held.describe()})")
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(
            lease_token=lease.token,
            lease_host=lease.host,
            lease_pid=lease.pid,
            lease_since=lease.since,
            updated_at=now,
        )
    )


def release(conn: Connection, run_id: int, token: str | None = None) -> None:
    """Clear the run's lease (only if it is still `token`'s, when one is given)."""
    query = update(runs).where(runs.c.id == run_id)
    if token is not None:
        query = query.where(runs.c.lease_token == token)
    conn.execute(query.values(lease_token=None, lease_host=None, lease_pid=None, lease_since=None))


def hold(conn: Connection, run_id: int, lease: RunLease | None) -> None:
    """Refuse unless `lease` is the run's lease now (`None`: unless the run has no lease).

    Call it inside the write transaction that it guards: claims serialise with it there.
    """
    row = conn.execute(select(*_LEASE_COLS).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFound("run", run_id)
    held = lease_of(row)
    if lease is None:
        if held is not None:
            raise Conflict(
                f"run {run_id} is being executed by {held.describe()}: only that process "
                "may write to it"
            )
    elif held is None or held.token != lease.token:
        raise LeaseLost(run_id, held.describe() if held is not None else None)


def renew(conn: Connection, run_id: int, lease: RunLease, now: datetime | None = None) -> datetime:
    """Bump the run's heartbeat for `lease`, which must still be the run's lease."""
    hold(conn, run_id, lease)
    now = now or utcnow()
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.lease_token == lease.token)
        .values(updated_at=now)
    )
    return now
