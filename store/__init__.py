"""Charter's persistence: the `Store` API over SQLite or PostgreSQL.

Guarantees: migrations are applied on open; versions, revisions, reviews and audit events are
append-only in the database itself; every state change and its audit event commit together.
"""

from store._engine import DatabaseError, redact_credentials
from store._hooks import NewHook
from store._leases import this_process
from store._outbox import Claimed as ClaimedDelivery
from store._reviewing import ReviewOutcome
from store._runs import StepDecision, StepRecord
from store._seed_files import read_seed
from store._sessions import NewSession
from store._store import DEFAULT, Store
from store._users import RevokedAccess, TokenAccess

__all__ = [
    "DEFAULT",
    "ClaimedDelivery",
    "DatabaseError",
    "NewHook",
    "NewSession",
    "ReviewOutcome",
    "RevokedAccess",
    "StepDecision",
    "StepRecord",
    "Store",
    "TokenAccess",
    "read_seed",
    "redact_credentials",
    "this_process",
]
