"""The one exception root of Charter and its typed descendants.

Every error a user could cause derives from `CharterError`. Each carries its facts as
attributes (not only in the message) and a stable `code`; the shell turns an error into one
line and an exit code at the edge (see `charter/_errors.py`), never a traceback.
"""

from __future__ import annotations

from typing import ClassVar


class CharterError(Exception):
    """Root of every error Charter raises on purpose."""

    code: ClassVar[str] = "error"


class InvalidInput(CharterError):
    """Input that can never be valid: a bad slug, empty or oversized text, an unknown op."""

    code = "invalid"


class InvalidPrinciple(InvalidInput):
    code = "invalid-principle"


class InvalidAmendment(InvalidInput):
    code = "invalid-amendment"


class NotFound(CharterError):
    """A named thing (principle, version, revision, amendment, label, run) does not exist."""

    code = "not-found"

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} not found: {key}")
        self.kind = kind
        self.key = key


class PolicyViolation(CharterError):
    """The governance policy forbids the action for this actor or this amendment."""

    code = "policy"


class SelfApproval(PolicyViolation):
    code = "self-approval"

    def __init__(self, amendment_id: int, actor: str) -> None:
        super().__init__(
            f"{actor} may not approve amendment {amendment_id}: they proposed or edited it"
        )
        self.amendment_id = amendment_id
        self.actor = actor


class EntrenchedPrinciple(PolicyViolation):
    code = "entrenched"

    def __init__(self, principle_id: str, detail: str = "changes only with human approval") -> None:
        super().__init__(f"principle {principle_id!r} is entrenched: it {detail}")
        self.principle_id = principle_id


class Conflict(CharterError):
    """The state changed under the caller (another reviewer decided first, a status moved)."""

    code = "conflict"


class StaleAmendment(Conflict):
    code = "stale"

    def __init__(self, amendment_id: int, base: int, head: int, principles: list[str]) -> None:
        touched = ", ".join(principles) or "none"
        super().__init__(
            f"amendment {amendment_id} is stale: based on revision {base} but head is {head}, "
            f"which changed {touched}"
        )
        self.amendment_id = amendment_id
        self.base = base
        self.head = head
        self.principles = principles


class LeaseLost(Conflict):
    """A process wrote to a run whose lease it no longer holds: another process took the run
    over (its heartbeat had gone quiet) or it was released. The writer must stop."""

    code = "lease-lost"

    def __init__(self, run_id: int, holder: str | None) -> None:
        by = f"taken over by {holder}" if holder else "released"
        super().__init__(f"run {run_id} was {by}: this process stops")
        self.run_id = run_id
        self.holder = holder


class ModelError(CharterError):
    """A model backend failed: unreachable, misconfigured, or replied with something unusable."""

    code = "model"


class MalformedReply(ModelError):
    """A model reply that did not validate against its schema after the allowed re-asks."""

    code = "malformed-reply"


class IntegrityError(CharterError):
    """The stored history failed verification: the audit chain or an anchor does not match."""

    code = "integrity"


def validation_message(exc: Exception) -> str:
    """One line from a pydantic ValidationError (its first problem), or from any exception."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        msg = str(first.get("msg", exc)).removeprefix("Value error, ")
        return f"{where}: {msg}" if where else msg
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
