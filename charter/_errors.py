"""Errors become one line on stderr and a distinct exit code here, at the edge, and nowhere else."""

from __future__ import annotations

from principles import (
    CharterError,
    Conflict,
    IntegrityError,
    InvalidInput,
    ModelError,
    NotFound,
    PolicyViolation,
)
from store import DatabaseError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INVALID = 4
EXIT_POLICY = 5
EXIT_CONFLICT = 6
EXIT_INTEGRITY = 7
EXIT_DATABASE = 8
EXIT_MODEL = 9

_CODES: tuple[tuple[type[CharterError], int], ...] = (
    (NotFound, EXIT_NOT_FOUND),
    (InvalidInput, EXIT_INVALID),
    (PolicyViolation, EXIT_POLICY),
    (Conflict, EXIT_CONFLICT),
    (IntegrityError, EXIT_INTEGRITY),
    (DatabaseError, EXIT_DATABASE),
    (ModelError, EXIT_MODEL),
)


def exit_code(error: CharterError) -> int:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return EXIT_INTERNAL
