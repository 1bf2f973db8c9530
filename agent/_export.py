"""Training data from a run, as Constitutional AI's supervised stage produces it.

Each record is (prompt, original answer, critique, revised answer). Formats are the ones
TRL's trainers read: `sft` -> {"messages": [user, assistant(revised)]} (conversational
language modelling), `dpo` -> {"prompt": [user], "chosen": [assistant(revised)],
"rejected": [assistant(original)]} (conversational preference). Both keep the critique and
provenance under "metadata".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from principles import InvalidInput
from store import Store

Format = Literal["sft", "dpo"]


def training_records(store: Store, run_id: int, fmt: Format) -> Iterator[dict[str, Any]]:
    if fmt not in ("sft", "dpo"):
        raise InvalidInput(f"unknown format {fmt!r}: use sft or dpo")
    run = store.run(run_id)
    tasks = {t.id: t for t, _ in store.run_tasks(run.id)}
    revisions = store.outputs(run_id, purpose="revision")
    originals = {o.id: o for o in store.outputs(run_id, purpose="answer")}
    critiques = {c.id: c for c in store.critiques(run_id, output_ids=list(originals))}
    by_output: dict[int, list[str]] = {}
    for c in critiques.values():
        if c.rationale:
            by_output.setdefault(c.output_id, []).append(f"{c.principle_id}: {c.rationale}")
    for r in revisions:
        if r.parent_id is None or r.parent_id not in originals:
            continue
        original = originals[r.parent_id]
        prompt = tasks[r.task_id].prompt
        meta = {
            "run": run_id,
            "task": r.task_id,
            "iteration": r.iteration,
            "revision": r.revision,
            "original_output": original.id,
            "revised_output": r.id,
            "critique": " | ".join(by_output.get(original.id, [])),
        }
        user = {"role": "user", "content": prompt}
        if fmt == "sft":
            yield {"messages": [user, {"role": "assistant", "content": r.text}], "metadata": meta}
        else:
            yield {
                "prompt": [user],
                "chosen": [{"role": "assistant", "content": r.text}],
                "rejected": [{"role": "assistant", "content": original.text}],
                "metadata": meta,
            }
