"""A run's heartbeat: while this process executes a run, its lease stays alive.

Another machine may take a run over once its heartbeat (the run's `updated_at`) is older
than `LEASE_TTL`; recording a step beats it, but one step can outlast the TTL. `Heartbeat`
renews the lease from a daemon thread every `every` (default `LEASE_HEARTBEAT`, a sixth of
the TTL) until its block ends. A renewal refused because the run was taken over stops the
thread and is kept in `lost`; the loop learns it for sure from its next write, which the
store refuses (`LeaseLost`). A failed renewal (the database briefly away) is retried at the
next beat.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from types import TracebackType

from principles import LEASE_HEARTBEAT, CharterError, LeaseLost, RunLease
from store import Store


class Heartbeat:
    """Renews `lease` on run `run_id` every `every` while the `with` block runs."""

    def __init__(
        self, store: Store, run_id: int, lease: RunLease, every: timedelta = LEASE_HEARTBEAT
    ) -> None:
        self.store, self.run_id, self.lease = store, run_id, lease
        self.every = every.total_seconds()
        self.beats = 0
        self.lost: LeaseLost | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"charter-run-{run_id}-heartbeat", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.store.renew_lease(self.run_id, self.lease)
            except LeaseLost as lost:
                self.lost = lost
                return
            except CharterError:
                continue
            self.beats += 1
