"""The judge's record (mixed into Store): reviewers' labels on critiques, calibrations and
judge evaluations.

Guarantees:
- All three are append-only in the database; each write and its audit event (`judge.label`,
  `judge.calibrate`, `judge.eval`) commit together.
- Only a person labels a critique. A refused attempt raises `PolicyViolation` and leaves a
  `judge.refused` audit event, so refused attempts are on the record too.
- A label copies what it judged (the task's prompt, the output's text, the principle) from
  the critique, so it stays meaningful as a labelled exchange on its own.
- De-duplication: of one labeller's labels on one critique only the newest counts;
  `judge_labels` and `critique_labels` return only those unless asked for `superseded` ones.
  Labels by different people on one critique each count; imported labels are never merged.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Connection, Row, Select, Table, and_, func, insert, or_, select

from principles import (
    JUDGMENTS,
    MAX_LABEL_NOTE,
    Actor,
    Calibration,
    Critique,
    InvalidInput,
    JudgeEvaluation,
    JudgeLabel,
    Judgment,
    LabelSource,
    NewCalibration,
    NewJudgeEvaluation,
    NotFound,
    PolicyViolation,
    canonical_json,
    check_labeller,
    label_for,
    utcnow,
)
from store import _amend, _audit, _ids, _writes
from store._base import StoreBase
from store._schema import (
    actors,
    critiques,
    judge_calibrations,
    judge_evaluations,
    judge_labels,
    outputs,
    run_tasks,
)

RecordT = TypeVar("RecordT", bound=BaseModel)


def _finite_json(value: dict[str, Any], what: str) -> None:
    """PostgreSQL's JSON has no NaN or infinity: refuse them here with a clear line."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError as exc:
        raise InvalidInput(
            f"{what} must be finite JSON: write null for an undefined figure"
        ) from exc


def _labelled_exchange(conn: Connection, critique_id: int) -> Row[Any, Any, Any, Any, Any]:
    """The critique with the prompt and the response it judged."""
    _ids.require(conn, "critique", critique_id)
    row = conn.execute(
        select(
            critiques.c.id,
            critiques.c.principle_id,
            critiques.c.verdict,
            outputs.c.text.label("response"),
            run_tasks.c.prompt,
        )
        .join(outputs, outputs.c.id == critiques.c.output_id)
        .join(
            run_tasks,
            and_(run_tasks.c.run_id == outputs.c.run_id, run_tasks.c.task_id == outputs.c.task_id),
        )
        .where(critiques.c.id == critique_id)
    ).first()
    if row is None:
        raise NotFound("critique", critique_id)
    return row


def _actors(conn: Connection, refs: Iterable[str]) -> dict[str, Actor]:
    """Actors by ref, with the kind and roles recorded when each first acted."""
    wanted = sorted(set(refs))
    found = {ref: Actor.parse(ref) for ref in wanted}
    if wanted:
        rows = conn.execute(
            select(actors.c.ref, actors.c.kind, actors.c.name, actors.c.roles).where(
                actors.c.ref.in_(wanted)
            )
        )
        for ref, kind, name, roles in rows:
            found[ref] = Actor(kind=kind, name=name, roles=tuple(r for r in roles.split(",") if r))
    return found


def _labels(conn: Connection, query: Select[Any]) -> list[JudgeLabel]:
    rows = conn.execute(query).all()
    who = _actors(conn, (r.labeller for r in rows))
    return [JudgeLabel.model_validate({**r._asdict(), "labeller": who[r.labeller]}) for r in rows]


def _current(query: Select[Any]) -> Select[Any]:
    """Only labels no later label by the same labeller on the same critique supersedes."""
    newest = (
        select(func.max(judge_labels.c.id))
        .where(judge_labels.c.critique_id.is_not(None))
        .group_by(judge_labels.c.critique_id, judge_labels.c.labeller)
    )
    return query.where(or_(judge_labels.c.critique_id.is_(None), judge_labels.c.id.in_(newest)))


def label_critique(
    conn: Connection,
    critique_id: int,
    given: int | Judgment,
    actor: Actor,
    note: str,
    amendment_id: int | None,
) -> JudgeLabel:
    """Store a person's label on a critique (and, with `amendment_id`, check that the
    critique is evidence of that amendment), with its `judge.label` event."""
    if amendment_id is not None:
        amendment = _amend.amendment(conn, amendment_id)
        if f"critique:{critique_id}" not in amendment.draft.evidence:
            raise InvalidInput(
                f"critique {critique_id} is not evidence of amendment {amendment_id}"
            )
    exchange = _labelled_exchange(conn, critique_id)
    label = label_for(exchange.verdict, given) if isinstance(given, str) else given
    _writes.ensure_actor(conn, actor)
    values = {
        "critique_id": critique_id,
        "principle_id": exchange.principle_id,
        "prompt": exchange.prompt,
        "response": exchange.response,
        "label": float(label),
        "source": "reviewer",
        "labeller": actor.ref,
        "note": note,
        "created_at": utcnow(),
    }
    pk = conn.execute(insert(judge_labels).values(**values)).inserted_primary_key
    assert pk is not None
    _audit.append(
        conn,
        actor.ref,
        "judge.label",
        f"critique:{critique_id}",
        {
            "label_id": int(pk[0]),
            "principle": exchange.principle_id,
            "label": label,
            "judgment": given if isinstance(given, str) else None,
            "verdict": exchange.verdict,
            "amendment": amendment_id,
            "note": note,
        },
    )
    return _labels(conn, select(judge_labels).where(judge_labels.c.id == pk[0]))[0]


def created_records(conn: Connection, query: Select[Any], model: type[RecordT]) -> list[RecordT]:
    """The rows of `query` as `model`s, each with its `created_by` actor resolved."""
    rows = conn.execute(query).all()
    who = _actors(conn, (r.created_by for r in rows))
    return [model.model_validate({**r._asdict(), "created_by": who[r.created_by]}) for r in rows]


def insert_created(conn: Connection, table: Table, new: BaseModel, actor: Actor) -> int:
    """Insert `new` into an append-only record table, created by `actor` now; its id."""
    _writes.ensure_actor(conn, actor)
    pk = conn.execute(
        insert(table).values(
            **new.model_dump(mode="json"), created_by=actor.ref, created_at=utcnow()
        )
    ).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def _calibrations(conn: Connection, query: Select[Any]) -> list[Calibration]:
    return created_records(conn, query, Calibration)


def _evaluations(conn: Connection, query: Select[Any]) -> list[JudgeEvaluation]:
    return created_records(conn, query, JudgeEvaluation)


def calibration(conn: Connection, calibration_id: int) -> Calibration:
    _ids.require(conn, "calibration", calibration_id)
    found = _calibrations(
        conn, select(judge_calibrations).where(judge_calibrations.c.id == calibration_id)
    )
    if not found:
        raise NotFound("calibration", calibration_id)
    return found[0]


def add_calibration(conn: Connection, new: NewCalibration, actor: Actor) -> Calibration:
    _finite_json(new.params, "calibration params")
    _finite_json(new.metrics, "calibration metrics")
    cid = insert_created(conn, judge_calibrations, new, actor)
    _audit.append(
        conn,
        actor.ref,
        "judge.calibrate",
        f"calibration:{cid}",
        {
            "model": new.model,
            "method": new.method,
            "label_set": new.label_set,
            "n_labels": new.n_labels,
            "metrics": new.metrics,
            "params_sha256": hashlib.sha256(canonical_json(new.params).encode()).hexdigest(),
        },
    )
    return calibration(conn, cid)


def record_judge_evaluation(
    conn: Connection, new: NewJudgeEvaluation, actor: Actor
) -> JudgeEvaluation:
    _finite_json(new.report, "the evaluation report")
    if new.calibration_id is not None:
        used = calibration(conn, new.calibration_id)
        if used.model != new.model:
            raise InvalidInput(
                f"calibration {used.id} was fitted for {used.model}, not for {new.model}"
            )
    eid = insert_created(conn, judge_evaluations, new, actor)
    _audit.append(
        conn,
        actor.ref,
        "judge.eval",
        f"judge-eval:{eid}",
        {
            "model": new.model,
            "calibration": new.calibration_id,
            "label_set": new.label_set,
            "n": new.n,
            "auc": new.auc,
        },
    )
    return _evaluations(conn, select(judge_evaluations).where(judge_evaluations.c.id == eid))[0]


class JudgingAPI(StoreBase):
    """The judge half of `Store` (a `Store` mixin)."""

    # -- labels --------------------------------------------------------------------------

    def label_critique(
        self,
        critique_id: int,
        label: int | Judgment,
        actor: Actor,
        note: str = "",
        *,
        amendment_id: int | None = None,
    ) -> JudgeLabel:
        """A person gives the right verdict for a stored critique: 1 = the response follows
        the principle, 0 = it does not; or a judgment of the critic's verdict (`right`,
        `wrong`), resolved against that verdict in the same transaction (see `label_for`).
        `amendment_id`, when given, must list the critique in its evidence. Audited as
        `judge.label` (a refused actor as `judge.refused`)."""
        if isinstance(label, str):
            if label not in JUDGMENTS:
                raise InvalidInput(f"unknown judgment {label!r}: use {', '.join(JUDGMENTS)}")
        elif label not in (0, 1):
            raise InvalidInput(f"a label is 0 (violates) or 1 (follows), not {label!r}")
        if len(note) > MAX_LABEL_NOTE:
            raise InvalidInput(f"the note is {len(note)} characters; the limit is {MAX_LABEL_NOTE}")
        try:
            check_labeller(actor)
        except PolicyViolation as exc:
            refusal = {"action": "label", "code": exc.code, "reason": str(exc)}
            self._write(
                lambda c: _audit.append(
                    c, actor.ref, "judge.refused", f"critique:{critique_id}", refusal
                )
            )
            raise
        result: JudgeLabel = self._write(
            lambda c: label_critique(
                c,
                critique_id,
                label if isinstance(label, str) else int(label),
                actor,
                note,
                amendment_id,
            )
        )
        return result

    def judge_labels(
        self,
        *,
        principle_id: str | None = None,
        source: LabelSource | None = None,
        superseded: bool = False,
    ) -> list[JudgeLabel]:
        """Labels oldest first: the ones that count (see the module's de-duplication rule),
        or with `superseded` every label ever given."""

        def run(conn: Connection) -> list[JudgeLabel]:
            query = select(judge_labels)
            if principle_id is not None:
                query = query.where(judge_labels.c.principle_id == principle_id)
            if source is not None:
                query = query.where(judge_labels.c.source == source)
            if not superseded:
                query = _current(query)
            return _labels(conn, query.order_by(judge_labels.c.id))

        result: list[JudgeLabel] = self._read(run)
        return result

    def critique_labels(
        self, critique_ids: Iterable[int], *, superseded: bool = False
    ) -> dict[int, list[JudgeLabel]]:
        """Labels on each of these critiques, oldest first; critiques without any are absent."""
        wanted = sorted(set(critique_ids))

        def run(conn: Connection) -> dict[int, list[JudgeLabel]]:
            if not wanted:
                return {}
            query = select(judge_labels).where(judge_labels.c.critique_id.in_(wanted))
            if not superseded:
                query = _current(query)
            found: dict[int, list[JudgeLabel]] = defaultdict(list)
            for label in _labels(conn, query.order_by(judge_labels.c.id)):
                assert label.critique_id is not None
                found[label.critique_id].append(label)
            return dict(found)

        result: dict[int, list[JudgeLabel]] = self._read(run)
        return result

    def critiques_by_id(self, critique_ids: Iterable[int]) -> dict[int, Critique]:
        """Stored critiques by id, from any run; unknown ids are absent."""
        wanted = sorted(set(critique_ids))

        def run(conn: Connection) -> dict[int, Critique]:
            held = _ids.holdable_only(conn, wanted)
            if not held:
                return {}
            rows = conn.execute(select(critiques).where(critiques.c.id.in_(held)))
            return {r.id: Critique.model_validate(r._asdict()) for r in rows}

        result: dict[int, Critique] = self._read(run)
        return result

    # -- calibrations --------------------------------------------------------------------

    def add_calibration(self, new: NewCalibration, actor: Actor) -> Calibration:
        """Store a fitted calibration (a new row, never an edit); audited `judge.calibrate`."""
        result: Calibration = self._write(lambda c: add_calibration(c, new, actor))
        return result

    def calibration(self, calibration_id: int) -> Calibration:
        result: Calibration = self._read(lambda c: calibration(c, calibration_id))
        return result

    def latest_calibration(self, model: str) -> Calibration | None:
        """The newest calibration fitted for `model`, if any."""

        def run(conn: Connection) -> Calibration | None:
            found = _calibrations(
                conn,
                select(judge_calibrations)
                .where(judge_calibrations.c.model == model)
                .order_by(judge_calibrations.c.id.desc())
                .limit(1),
            )
            return found[0] if found else None

        result: Calibration | None = self._read(run)
        return result

    def calibrations(self, model: str | None = None) -> list[Calibration]:
        """Calibrations oldest first (only `model`'s when given)."""

        def run(conn: Connection) -> list[Calibration]:
            query = select(judge_calibrations)
            if model is not None:
                query = query.where(judge_calibrations.c.model == model)
            return _calibrations(conn, query.order_by(judge_calibrations.c.id))

        result: list[Calibration] = self._read(run)
        return result

    # -- evaluations ---------------------------------------------------------------------

    def record_judge_evaluation(self, new: NewJudgeEvaluation, actor: Actor) -> JudgeEvaluation:
        """Store a measurement of a judge; its calibration must exist and be for its model.
        Audited `judge.eval`."""
        result: JudgeEvaluation = self._write(lambda c: record_judge_evaluation(c, new, actor))
        return result

    def latest_judge_evaluation(
        self, model: str, calibration_id: int | None
    ) -> JudgeEvaluation | None:
        """The newest measurement of exactly this judge: `model` with this calibration
        (None: the uncalibrated model)."""

        def run(conn: Connection) -> JudgeEvaluation | None:
            cal = judge_evaluations.c.calibration_id
            found = _evaluations(
                conn,
                select(judge_evaluations)
                .where(
                    judge_evaluations.c.model == model,
                    cal.is_(None) if calibration_id is None else cal == calibration_id,
                )
                .order_by(judge_evaluations.c.id.desc())
                .limit(1),
            )
            return found[0] if found else None

        result: JudgeEvaluation | None = self._read(run)
        return result

    def judge_evaluations(self, model: str | None = None) -> list[JudgeEvaluation]:
        """Measurements oldest first (only `model`'s when given)."""

        def run(conn: Connection) -> list[JudgeEvaluation]:
            query = select(judge_evaluations)
            if model is not None:
                query = query.where(judge_evaluations.c.model == model)
            return _evaluations(conn, query.order_by(judge_evaluations.c.id))

        result: list[JudgeEvaluation] = self._read(run)
        return result
