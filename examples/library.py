"""Charter as a library: a store, a scripted refinement run, a review, and the history.

Run it with `python examples/library.py [DIR]`; it writes DIR/charter.db (a temporary
folder when DIR is left out) and prints what it did. It needs no model download: the
scripted backend shipped in the package answers, judges and drafts deterministically.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from agent import loop_backend, start_run
from principles import Actor, RunConfig, default_seed, unified_diff
from store import Store

REVIEWER = Actor(kind="human", name="ada", roles=("reviewer",))


def main(folder: Path) -> int:
    with Store(str(folder / "charter.db")) as store:
        # 1. A constitution: the built-in seed becomes revision 1.
        first = store.init(default_seed())
        print(f"revision {first.number}: {len(store.constitution().principles)} principles")

        # 2. An unattended run in review mode: it drafts amendments and gates them on
        #    held-out tasks, but only people apply them.
        config = RunConfig(
            model="scripted:loop",
            mode="review",
            iterations=1,
            tasks_limit=16,
            heldout_size=6,
            seed=7,
            judge_override=True,  # the scripted judge has no human labels to be measured on
        )
        run = start_run(store, loop_backend(), config)
        drafts = store.amendments(run_id=run.id, status="proposed")
        print(f"run {run.id} {run.status}: {len(drafts)} amendment(s) wait for review")

        # 3. A person reviews: approving one applies it as a new head revision.
        if not drafts:
            print("nothing to review")
            return 1
        chosen = drafts[0]
        outcome = store.decide(chosen.id, REVIEWER, "approve", "reads better", apply=True)
        assert outcome.revision is not None
        principle = chosen.draft.principle_id
        print(f"approved amendment {chosen.id}: revision {outcome.revision.number} ({principle})")

        # 4. History: every version of the changed principle, and the diff between them.
        versions = store.history(principle)
        for v in versions:
            print(f"  {v.ref}  by {v.author}  {v.rationale[:60]!r}")
        old, new = versions[0], versions[-1]
        print(unified_diff(old.text, new.text, old.ref, new.ref))

        # 5. The audit chain covers all of it.
        report = store.verify()
        print(f"audit: {'intact' if report.ok else report.reason} ({report.events} events)")
        return 0 if report.ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(main(Path(tmp)))
