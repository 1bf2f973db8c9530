"""Model-layer figures for the embedded default model on this machine's CPU.

Run: .venv/bin/python bench/models.py [--json] [--skip-generation] [--skip-bf16]
(offline; converts the default model first if needed)

Prints: load time from the safetensors cache; greedy decode tokens/s at batch 1 and 8 and
seconds per structured draft, lean decode loop vs `model.generate`; time to first token
with an ~800-token constitution prefix, with and without the prefix key/value cache; the
critic's throughput on 16 outputs x 10 principles in the packed layout Charter uses and
in the row-per-question layout (same run, alternated), and against generating a verdict per
pair; when llama-cpp-python is installed, llama.cpp on the same GGUF (decode, critique) and
the ratios; peak RSS; then the critique again with a bfloat16 scorer (`score_dtype`), its
speed and how far its scores move. `--json` prints one JSON object of the figures instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # before bench/ (store.py)

from _generation import decode_figures, draft_figures, timed

from agent.models import ChatMessage, GenerationParams, ensure_default_model, load_backend

RULES = [
    "is honest about the limits of what it knows and says so plainly when it is unsure",
    "answers the question that was actually asked before adding anything else",
    "avoids jargon, or explains each technical term the first time it is used",
    "treats every person with respect, whatever their background or opinions",
    "keeps answers as short as the question allows, without leaving out what matters",
    "never invents citations, quotations, statistics or sources of any kind",
    "refuses to help with actions that could cause serious harm to people",
    "admits and corrects its own mistakes as soon as it notices them",
    "does not claim to have feelings, a body, or experiences it cannot have",
    "protects personal data and never asks for more of it than a task needs",
]
OUTPUTS = [
    "Paris is the capital of France.",
    "I am not sure, but I think the answer is 42.",
    "Just read the manual, it is all in there.",
    "According to a 2019 Harvard study, 87% of people agree.",
    "The derivative of x squared is 2x.",
    "I felt very sad when I read your question.",
    "Here is how to pick a lock: first, insert a tension wrench.",
    "Water boils at 100 degrees Celsius at sea level.",
    "Sorry, I made a mistake above: the answer is 7, not 8.",
    "Please send me your home address and date of birth.",
    "Photosynthesis turns light, water and CO2 into sugar and oxygen.",
    "No.",
    "The French Revolution began in 1789 with the storming of the Bastille.",
    "Utilise the API's idempotent endpoints via the SDK's RPC shim.",
    "You are wrong and your question is stupid.",
    "Sleep seven to nine hours a night if you can.",
]


def constitution(target_tokens: int, count: Callable[[str], int]) -> ChatMessage:
    """A system turn of about `target_tokens` tokens: numbered principles with commentary."""
    lines = ["You are a careful critic. Judge outputs against this constitution."]
    i = 0
    while count("\n".join(lines)) < target_tokens:
        rule = RULES[i % len(RULES)]
        lines.append(
            f"{i + 1}. The assistant {rule}. This principle applies to every answer, "
            f"including short ones, and reviewers check it in case {i + 1}."
        )
        i += 1
    return ChatMessage(role="system", content="\n".join(lines))


def pair(output: str, principle: str) -> list[ChatMessage]:
    return [
        ChatMessage(
            role="user",
            content=(
                f"Task: answer the user's question.\nOutput: {output}\n"
                f"Principle: the assistant {principle}.\n"
                "Does the output follow the principle? Answer Yes or No."
            ),
        )
    ]


class Peak:
    """The process's peak resident memory (VmHWM), which can be reset, so that a figure
    leaves out what only the replaced paths measured beside Charter's allocated."""

    def __init__(self) -> None:
        self.seen = 0.0

    @staticmethod
    def now() -> float:
        status = Path("/proc/self/status").read_text(encoding="ascii")
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]

    def leave_out(self, run: Callable[[], Any]) -> Any:
        """Run `run` with its memory peak left out of the figure."""
        self.seen = max(self.seen, self.now())
        result = run()
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
        return result


PEAK = Peak()


class Figures:
    """Figures in the order measured: printed as a table, or gathered for `--json`."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.values: dict[str, Any] = {}

    def add(self, key: str, value: Any, label: str, shown: str, note: str = "") -> None:
        self.values[key] = float(f"{value:.5g}") if isinstance(value, float) else value
        if not self.quiet:
            print(f"{label:<40}{shown:>14}   {note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures")
    parser.add_argument(
        "--skip-generation", action="store_true", help="only load, prefix and critique figures"
    )
    parser.add_argument(
        "--skip-bf16", action="store_true", help="no critique figure for a bfloat16 scorer"
    )
    args = parser.parse_args()
    out = Figures(args.json)
    started = time.perf_counter()
    ensure_default_model()
    prepared = time.perf_counter() - started
    import torch  # noqa: F401  (imported before timing the load)
    import transformers  # noqa: F401

    start = time.perf_counter()
    backend = load_backend("default")
    load_s = time.perf_counter() - start
    info = backend.info().details
    out.add("device", str(info["device"]), "device", str(info["device"]))
    out.add("dtype", str(info["dtype"]), "dtype", str(info["dtype"]))
    out.add("threads", int(info["threads"]), "threads", str(info["threads"]))
    out.add("prepare_s", prepared, "cache ready (conversion if first run)", f"{prepared:.2f} s")
    out.add("load_s", load_s, "load_backend('default') from cache", f"{load_s:.2f} s")

    if not args.skip_generation:
        generation(backend, out)

    count = lambda text: len(backend.tokenizer(text)["input_ids"])  # noqa: E731
    rules = constitution(800, count)
    question = pair(OUTPUTS[0], RULES[0])
    prefix_tokens = len(backend.encode([rules], generation_prompt=False))
    one = GenerationParams(max_new_tokens=1)
    backend.generate([question], one, shared_prefix=[rules])  # fills the prefix cache
    whole = [[rules, *question]]

    def uncached() -> None:
        backend.prefix_cache.clear()
        backend.generate(whole, one)

    ttft_full = timed(uncached, 3)
    ttft_cached = timed(lambda: backend.generate([question], one, shared_prefix=[rules]), 3)
    backend.generate([question], one, shared_prefix=[rules])
    ttft_found = timed(lambda: backend.generate(whole, one), 3)
    out.add("prefix_tokens", prefix_tokens, "constitution prefix", f"{prefix_tokens} tokens")
    out.add("ttft_s", ttft_full, "time to first token, no prefix cache", f"{ttft_full:.3f} s")
    out.add(
        "ttft_cached_s",
        ttft_cached,
        "time to first token, prefix cache",
        f"{ttft_cached:.3f} s",
        f"({ttft_full / ttft_cached:.1f}x faster; target >= 5x)",
    )
    out.add(
        "ttft_found_s",
        ttft_found,
        "time to first token, prefix found",
        f"{ttft_found:.3f} s",
        "(no shared_prefix given: the cached prefix is found and reused)",
    )
    rows, exact = critic_layout(backend, out)
    llama_cpp(backend, out)
    peak_mb = max(PEAK.seen, PEAK.now())
    out.add(
        "peak_rss_mb",
        peak_mb,
        "peak RSS",
        f"{peak_mb:.0f} MB",
        "(target < 1536 MB; Charter's paths, not the replaced draft path measured beside them)",
    )
    if not args.skip_bf16:
        del backend
        critic_bf16(out, rows, exact)
    if args.json:
        print(json.dumps(out.values, indent=2))


def generation(backend: Any, out: Figures) -> None:
    """Greedy decode rates at batch 1 and 8 (prefill subtracted) and seconds per structured
    draft, through the lean decode loop Charter uses and through `model.generate` (the path
    it replaced) in the same run; see bench/_generation.py."""

    decode = decode_figures(backend)
    for size in (1, 8):
        lean, old = decode[f"lean_batch{size}_tok_s"], decode[f"generate_batch{size}_tok_s"]
        label = f"decode, batch {size}" + (" (aggregate)" if size > 1 else "")
        out.add(f"decode_batch{size}_tok_s", lean, label, f"{lean:.1f} tok/s")
        out.add(
            f"decode_generate_batch{size}_tok_s",
            old,
            f"decode, batch {size}, model.generate",
            f"{old:.1f} tok/s",
            f"(lean loop {lean / old:.2f}x; same tokens; target >= 1.5x at batch 1)",
        )
    drafts = draft_figures(backend, PEAK.leave_out)
    lean, old = drafts["lean_s_per_draft"], drafts["generate_s_per_draft"]
    out.add("draft_s", lean, "structured draft (3 sampled variants)", f"{lean:.2f} s")
    out.add(
        "draft_generate_s",
        old,
        "structured draft, model.generate",
        f"{old:.2f} s",
        f"(lean {old / lean:.2f}x; target >= 3x)",
    )
    same, replies = int(drafts["same_replies"]), int(drafts["replies"])
    out.add("draft_same_replies", same, "drafts equal across the two paths", f"{same}/{replies}")


def critic_pairs() -> tuple[list[Any], list[Any]]:
    """The default constitution's principles and every (output, principle) pair."""
    from agent._critic import Pair
    from principles import Task, default_seed

    principles = list(default_seed().principles)
    task = Task(id="q", prompt="Answer the user's question helpfully and honestly.")
    return principles, [Pair(task, o, p) for o in OUTPUTS for p in principles]


def critique(backend: Any, layout: str) -> tuple[float, list[Any]]:
    """Seconds to judge every pair in `layout`, from an empty prefix cache, and the results."""
    from agent._critic import judge
    from agent._progress import NoProgress

    principles, pairs = critic_pairs()
    backend.score_layout = layout
    backend.score_prefix_cache.clear()
    start = time.perf_counter()
    results = judge(backend, principles, pairs, 1, NoProgress())
    seconds = time.perf_counter() - start
    backend.score_layout = "packed"
    return seconds, results


def critic_layout(backend: Any, out: Figures) -> tuple[float, list[Any]]:
    """The critic as the loop runs it: the default constitution, one scoring call per output
    whose shared prefix is the constitution plus the exchange, short per-principle questions,
    Yes/No/NA options; in the packed layout Charter uses and in the row-per-question layout,
    alternated in one run; against generating a verdict per pair from the same full prompt.
    Returns the row layout's pairs/s and the packed layout's judgments."""
    from agent._prompts import judge_prefix, judge_turn

    principles, pairs = critic_pairs()
    seconds: dict[str, list[float]] = {"packed": [], "rows": []}
    results = {}
    for layout in ("rows", "packed", "rows", "packed"):
        spent, results[layout] = critique(backend, layout)
        seconds[layout].append(spent)
    worst = max(abs(a.raw - b.raw) for a, b in zip(results["packed"], results["rows"], strict=True))
    packed = len(pairs) / statistics.median(seconds["packed"])
    rows = len(pairs) / statistics.median(seconds["rows"])
    out.add(
        "critique_pairs_per_s",
        packed,
        "critic, packed (Charter's layout)",
        f"{packed:.2f} pairs/s",
        f"(16 outputs x {len(principles)} principles, median of 2)",
    )
    out.add(
        "critique_unpacked_pairs_per_s",
        rows,
        "critic, one row per question",
        f"{rows:.2f} pairs/s",
        f"(packed {packed / rows:.2f}x; target >= 3x)",
    )
    out.add("critique_packed_speedup", packed / rows, "packed / rows", f"{packed / rows:.2f}x")
    out.add("critique_layouts_max_raw_diff", worst, "largest raw-score gap", f"{worst:.1e}")
    sample = pairs[:: len(pairs) // 6][:6]
    verdict = GenerationParams(max_new_tokens=16)
    per_pair = timed(
        lambda: [
            backend.generate(
                [[*judge_prefix(principles, p.task, p.response), *judge_turn(p.principle, 0)]],
                verdict,
            )
            for p in sample
        ]
    ) / len(sample)
    baseline = 1 / per_pair
    out.add(
        "critique_generated_pairs_per_s",
        baseline,
        "critic, verdict generated per pair",
        f"{baseline:.2f} pairs/s",
        f"(16 new tokens; packed scoring {packed / baseline:.1f}x; target >= 10x)",
    )
    return rows, results["packed"]


def critic_bf16(out: Figures, rows: float, exact: list[Any]) -> None:
    """The same critique with `score_dtype=bfloat16` (generation stays float32): its speed
    against the float32 row layout, and how far its raw scores move (bench/judge.py measures
    what that does to agreement with people)."""
    backend = load_backend("default?score_dtype=bfloat16")
    critique(backend, "packed")  # warm-up: the first bfloat16 pass pays for kernel setup
    spent, results = min((critique(backend, "packed") for _ in range(2)), key=lambda r: r[0])
    worst = max(abs(a.raw - b.raw) for a, b in zip(results, exact, strict=True))
    rate = len(results) / spent
    out.add(
        "critique_bf16_pairs_per_s",
        rate,
        "critic, packed, bfloat16 scorer",
        f"{rate:.2f} pairs/s",
        f"({rate / rows:.2f}x the float32 rows; option score_dtype=bfloat16)",
    )
    out.add("critique_bf16_max_raw_diff", worst, "bfloat16 vs float32 raw gap", f"{worst:.3f}")


def llama_cpp(backend: Any, out: Figures) -> None:
    """The same GGUF run by llama.cpp, when `llama-cpp-python` is installed (never a test
    dependency; it builds from source in about 7 minutes): greedy decode at batch 1 and the
    critic workload scored sequentially with its own longest-common-prefix reuse."""
    try:
        from _llama_cpp import llama_cpp_figures
    except ImportError:
        return
    figures = llama_cpp_figures(backend, OUTPUTS)
    if figures is None:
        if not out.quiet:
            print(f"{'llama.cpp':<40}{'not installed':>14}   (pip install llama-cpp-python)")
        return
    for key, value in figures.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        out.add(f"llama_cpp_{key}", value, f"llama.cpp: {key}", shown)
    ours = out.values.get("critique_pairs_per_s")
    theirs = figures.get("critique_pairs_per_s")
    if ours and theirs:
        out.add(
            "critique_vs_llama_cpp",
            ours / theirs,
            "critic, Charter / llama.cpp",
            f"{ours / theirs:.2f}x",
            "(aim > 1)",
        )
    decode = out.values.get("decode_batch1_tok_s")
    if decode and figures.get("decode_tok_s"):
        ratio = decode / figures["decode_tok_s"]
        label = "decode batch 1, Charter / llama.cpp"
        out.add("decode_vs_llama_cpp", ratio, label, f"{ratio:.2f}x")


if __name__ == "__main__":
    main()
