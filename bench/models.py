"""Model-layer figures for the embedded default model on this machine's CPU.

Run: .venv/bin/python bench/models.py   (offline; converts the default model first if needed)

Prints: load time from the safetensors cache; greedy decode tokens/s at batch 1 and 8;
time to first token with an ~800-token constitution prefix, with and without the prefix
key/value cache; critique throughput for 16 outputs x 10 principles, batched prefix-cached
option scoring versus generating a short verdict per pair; peak RSS.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Median wall time of `repeat` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def decode_rate(backend: Any, batch: int, new_tokens: int = 48) -> float:
    """Aggregate greedy decode tokens/s (prefill time subtracted), forcing `new_tokens`."""
    import torch

    tok, model = backend.tokenizer, backend.model
    prompts = [
        backend.encode([ChatMessage(role="user", content=f"Tell me a story about item {i}.")])
        for i in range(batch)
    ]
    width = max(len(p) for p in prompts)
    ids = torch.full((batch, width), backend.pad_id)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, width - len(p) :] = torch.tensor(p)
        mask[b, width - len(p) :] = 1

    def run(n: int) -> None:
        with torch.inference_mode():
            model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                pad_token_id=tok.pad_token_id or backend.pad_id,
            )

    run(2)
    prefill = timed(lambda: run(1), 2)
    total = timed(lambda: run(new_tokens), 1)
    return batch * (new_tokens - 1) / (total - prefill)


def main() -> None:
    started = time.perf_counter()
    ensure_default_model()
    prepared = time.perf_counter() - started
    import torch  # noqa: F401  (imported before timing the load)
    import transformers  # noqa: F401

    start = time.perf_counter()
    backend = load_backend("default")
    load_s = time.perf_counter() - start
    info = backend.info().details
    print(f"device {info['device']}, dtype {info['dtype']}, threads {info['threads']}")
    print(f"cache ready (conversion if first run)   {prepared:8.2f} s")
    print(f"load_backend('default') from cache      {load_s:8.2f} s")
    print(f"  of which tokenizer + weights          {float(info['load_seconds']):8.2f} s")

    rate1 = decode_rate(backend, 1)
    rate8 = decode_rate(backend, 8)
    print(f"decode, batch 1                         {rate1:8.1f} tok/s")
    print(f"decode, batch 8 (aggregate)             {rate8:8.1f} tok/s   ({rate8 / rate1:.1f}x)")

    count = lambda text: len(backend.tokenizer(text)["input_ids"])  # noqa: E731
    rules = constitution(800, count)
    question = pair(OUTPUTS[0], RULES[0])
    prefix_tokens = len(backend.encode([rules], generation_prompt=False))
    one = GenerationParams(max_new_tokens=1)
    backend.generate([question], one, shared_prefix=[rules])  # fills the prefix cache
    ttft_full = timed(lambda: backend.generate([[rules, *question]], one), 3)
    ttft_cached = timed(lambda: backend.generate([question], one, shared_prefix=[rules]), 3)
    print(f"constitution prefix                     {prefix_tokens:8d} tokens")
    print(f"time to first token, no prefix cache    {ttft_full:8.3f} s")
    print(
        f"time to first token, prefix cache       {ttft_cached:8.3f} s   "
        f"({ttft_full / ttft_cached:.1f}x faster; target >= 5x)"
    )

    pairs = [pair(o, p) for o in OUTPUTS for p in RULES]
    backend.prefix_cache.clear()
    start = time.perf_counter()
    scores = backend.score_options(pairs, ["Yes", "No"], shared_prefix=[rules])
    scored_s = time.perf_counter() - start
    assert len(scores) == 160
    sample = pairs[:: len(pairs) // 6][:6]
    verdict = GenerationParams(max_new_tokens=16)
    per_pair = timed(lambda: [backend.generate([[rules, *p]], verdict) for p in sample]) / len(
        sample
    )
    scoring_rate = len(pairs) / scored_s
    generating_rate = 1 / per_pair
    print(
        f"critique, scored (batched, prefix)      {scoring_rate:8.2f} pairs/s   "
        f"({scored_s:.1f} s for 160)"
    )
    print(
        f"critique, verdict generated per pair    {generating_rate:8.2f} pairs/s   "
        f"(16 new tokens; {len(sample)}-pair sample, ~{160 * per_pair:.0f} s for 160)"
    )
    print(
        f"critique speed-up                       {scoring_rate / generating_rate:8.1f}x   "
        "(target >= 10x)"
    )
    critic_layout(backend, verdict)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS                                {peak_mb:8.0f} MB   (target < 1536 MB)")


def critic_layout(backend: Any, verdict: GenerationParams) -> None:
    """The critic as the loop runs it: the default constitution, one scoring call per output
    whose shared prefix is the constitution plus the exchange, short per-principle questions,
    Yes/No/NA options; against generating a verdict per pair from the same full prompt."""
    from agent._critic import Pair, judge
    from agent._progress import NoProgress
    from agent._prompts import judge_prefix, judge_turn
    from principles import Task, default_seed

    principles = [p for p in default_seed().principles]
    task = Task(id="q", prompt="Answer the user's question helpfully and honestly.")
    pairs = [Pair(task, o, p) for o in OUTPUTS for p in principles]
    backend.prefix_cache.clear()
    start = time.perf_counter()
    judged = judge(backend, principles, pairs, 1, NoProgress())
    scored_s = time.perf_counter() - start
    assert len(judged) == len(pairs) == 160
    sample = pairs[:: len(pairs) // 6][:6]
    per_pair = timed(
        lambda: [
            backend.generate(
                [[*judge_prefix(principles, p.task, p.response), *judge_turn(p.principle, 0)]],
                verdict,
            )
            for p in sample
        ]
    ) / len(sample)
    rate, baseline = len(pairs) / scored_s, 1 / per_pair
    print(
        f"critic layout, scored                   {rate:8.2f} pairs/s   "
        f"({scored_s:.1f} s for 160; default constitution, one call per output)"
    )
    print(
        f"critic layout, verdict generated        {baseline:8.2f} pairs/s   "
        f"(16 new tokens, full prompt; {len(sample)}-pair sample)"
    )
    print(f"critic layout speed-up                  {rate / baseline:8.1f}x   (target >= 10x)")


if __name__ == "__main__":
    main()
