"""Charter's agent: answers tasks under its constitution, critiques the answers against every
principle, proposes amendments, and tests them on held-out tasks before anyone sees them.

The model layer is `agent.models`. The loop talks to the database only through `Store`.
"""

from agent._backends import StoreCallCache, open_backend
from agent._export import training_records
from agent._loop import AGENT, continue_run, start_run
from agent._presets import PRESETS, preset
from agent._progress import NoProgress, Progress
from agent._scripted_loop import loop_backend
from agent._summary import IterationSummary, RunSummary, summarize
from agent._tasks import BUILTIN, load_tasks, parse_tasks

__all__ = [
    "AGENT",
    "BUILTIN",
    "PRESETS",
    "IterationSummary",
    "NoProgress",
    "Progress",
    "RunSummary",
    "StoreCallCache",
    "continue_run",
    "load_tasks",
    "loop_backend",
    "open_backend",
    "parse_tasks",
    "preset",
    "start_run",
    "summarize",
    "training_records",
]
