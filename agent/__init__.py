"""Charter's agent: answers tasks under its constitution, critiques the answers against every
principle, proposes amendments, and tests them on held-out tasks before anyone sees them.

The model layer is `agent.models`. The loop talks to the database only through `Store`.
"""

from agent._backends import StoreCallCache, open_backend
from agent._export import training_records
from agent._judge import (
    DEFAULT_LAYER,
    JudgeReport,
    calibration_in_force,
    calibrator_for,
    evaluate_judge,
    fit_calibration,
    fitted_summary,
    judge_model_id,
    shipped_calibration,
)
from agent._labels import LabelledPair, from_store, load_labels, parse_labels
from agent._loop import continue_run, start_run
from agent._presets import PRESETS, preset
from agent._progress import NoProgress, Progress
from agent._scripted_loop import loop_backend
from agent._steps import AGENT
from agent._summary import IterationSummary, RunSummary, summarize
from agent._tasks import BUILTIN, load_tasks, parse_tasks
from agent._traced import TracedBackend
from agent._tracing import NoTracer, OtelTracer, Tracer, tracing_from_env

__all__ = [
    "AGENT",
    "BUILTIN",
    "DEFAULT_LAYER",
    "PRESETS",
    "IterationSummary",
    "JudgeReport",
    "LabelledPair",
    "NoProgress",
    "NoTracer",
    "OtelTracer",
    "Progress",
    "RunSummary",
    "StoreCallCache",
    "TracedBackend",
    "Tracer",
    "calibration_in_force",
    "calibrator_for",
    "continue_run",
    "evaluate_judge",
    "fit_calibration",
    "fitted_summary",
    "from_store",
    "judge_model_id",
    "load_labels",
    "load_tasks",
    "loop_backend",
    "open_backend",
    "parse_labels",
    "parse_tasks",
    "preset",
    "shipped_calibration",
    "start_run",
    "summarize",
    "tracing_from_env",
    "training_records",
]
