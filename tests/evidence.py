"""A shared fixture builder: an amendment whose evidence is real stored critiques."""

from __future__ import annotations

from collections.abc import Sequence

from principles import AmendmentDraft, NewCritique, NewOutput, RunConfig, Task, Verdict
from store import Store
from tests.conftest import AGENT

Verdicts = Sequence[tuple[str, float, Verdict]]
THREE: Verdicts = (("clarity", 0.2, "fail"), ("privacy", 0.5, "unclear"), ("honesty", 0.9, "pass"))


def critiqued_answer(
    store: Store, *, prompt: str, answer: str, verdicts: Verdicts = THREE, rationales: bool = False
) -> tuple[int, list[int]]:
    """A run with one answer judged once per (principle, score, verdict); returns the run id
    and the critique ids in that order."""
    run = store.create_run(RunConfig(), [(Task(id="t1", prompt=prompt), "train")], AGENT)
    store.record_step(
        run.id,
        1,
        "critique",
        AGENT,
        outputs_=[NewOutput(key="o", task_id="t1", purpose="answer", revision=1, text=answer)],
        critiques_=[
            NewCritique(
                output_key="o",
                principle_id=pid,
                version=1,
                score=score,
                relevance=0.9,
                spread=0.1,
                verdict=verdict,
                rationale=f"judged {pid}" if rationales else "",
            )
            for pid, score, verdict in verdicts
        ],
    )
    return run.id, [c.id for c in store.critiques(run.id)]


def amendment_with_evidence(
    store: Store, *, prompt: str, answer: str, text: str, rationales: bool = False
) -> tuple[int, list[int]]:
    """One answer judged on clarity (fail), privacy (unclear) and honesty (pass), and an
    amendment citing the first two; returns its id and the three critique ids."""
    run_id, ids = critiqued_answer(store, prompt=prompt, answer=answer, rationales=rationales)
    draft = AmendmentDraft(
        op="revise",
        principle_id="clarity",
        text=text,
        run_id=run_id,
        evidence=(f"critique:{ids[0]}", f"critique:{ids[1]}", "output:1"),
    )
    return store.propose(draft, AGENT).id, ids
