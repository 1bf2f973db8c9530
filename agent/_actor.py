"""The actor: answers tasks in batches under a constitution rendered into its system prompt."""

from __future__ import annotations

from collections.abc import Sequence

from agent._progress import Progress
from agent._prompts import actor_system, actor_turn
from agent.models import Backend, GenerationParams
from principles import Principle, Task

BATCH = 8


def answer(
    backend: Backend,
    principles: Sequence[Principle],
    tasks: Sequence[Task],
    params: GenerationParams,
    progress: Progress,
) -> list[str]:
    """One answer per task, in order; the system prompt is the shared prefix of the batch."""
    prefix = actor_system(principles)
    replies: list[str] = []
    for start in range(0, len(tasks), BATCH):
        chunk = tasks[start : start + BATCH]
        replies += backend.generate([actor_turn(t) for t in chunk], params, shared_prefix=prefix)
        progress.advance(len(chunk))
    return [r.strip() or "(no answer)" for r in replies]
