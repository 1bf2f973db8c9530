"""Charter's domain: principles, versions, revisions, amendments and the rules that govern them.

Plain pydantic models and pure functions only: no database, no model, no I/O.
"""

from principles._errors import (
    CharterError,
    Conflict,
    EntrenchedPrinciple,
    IntegrityError,
    InvalidAmendment,
    InvalidInput,
    InvalidPrinciple,
    MalformedReply,
    ModelError,
    NotFound,
    PolicyViolation,
    SelfApproval,
    StaleAmendment,
)

__all__ = [
    "CharterError",
    "Conflict",
    "EntrenchedPrinciple",
    "IntegrityError",
    "InvalidAmendment",
    "InvalidInput",
    "InvalidPrinciple",
    "MalformedReply",
    "ModelError",
    "NotFound",
    "PolicyViolation",
    "SelfApproval",
    "StaleAmendment",
]
