"""Control characters never enter the store; rows stored before they were refused still load."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from principles import AmendmentDraft, InvalidInput, utcnow
from store import Store
from tests.conftest import ALICE, BOB

HIDDEN = "\x1b[8m"  # a terminal shows nothing after it


def test_a_comment_or_rejection_that_hides_words_is_refused_and_nothing_is_written(
    store: Store,
) -> None:
    a = store.propose(AmendmentDraft(op="revise", principle_id="clarity", text="x"), ALICE)
    events = len(store.audit_log(limit=None))
    with pytest.raises(InvalidInput, match="control characters"):
        store.decide(a.id, BOB, "comment", f"fine{HIDDEN} except this")
    with pytest.raises(InvalidInput, match="control characters"):
        store.decide(a.id, BOB, "reject", f"no{HIDDEN}")
    assert store.amendment(a.id).reviews == () and store.amendment(a.id).status == "proposed"
    assert len(store.audit_log(limit=None)) == events


def test_a_draft_that_hides_words_is_refused_before_it_reaches_the_store() -> None:
    with pytest.raises(ValidationError, match="control characters"):
        AmendmentDraft(op="revise", principle_id="clarity", text=f"Be clear.{HIDDEN} Or not.")


def test_rows_stored_before_control_characters_were_refused_still_load(store: Store) -> None:
    a = store.propose(AmendmentDraft(op="revise", principle_id="clarity", text="x"), ALICE)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE amendments SET rationale = :r, text = :t WHERE id = :i"),
            {"r": f"why{HIDDEN}", "t": f"Be clear.{HIDDEN} Or not.", "i": a.id},
        )
        conn.execute(
            sa.text(
                "INSERT INTO reviews (amendment_id, reviewer, decision, comment, edit, "
                "created_at) VALUES (:i, :who, 'comment', :c, 0, :at)"
            ),
            {"i": a.id, "who": f"human:b{HIDDEN}ob", "c": f"ok{HIDDEN}", "at": utcnow()},
        )
    loaded = store.amendment(a.id)
    assert (
        loaded.draft.rationale == f"why{HIDDEN}"
        and loaded.draft.text == f"Be clear.{HIDDEN} Or not."
    )
    assert [(r.reviewer, r.comment) for r in loaded.reviews] == [
        (f"human:b{HIDDEN}ob", f"ok{HIDDEN}")
    ]
