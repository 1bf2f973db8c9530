"""llama.cpp on the default model's GGUF, for bench/models.py's side-by-side figures.

Only when `llama-cpp-python` is installed (`pip install llama-cpp-python`, built from source
in about 7 minutes on this machine). It is never a dependency of Charter or its tests. Here
build it without the native CPU detection, which turns on AMX and then crashes in
`llama_decode` on this VM: `CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON
-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON" pip install llama-cpp-python==0.3.36 diskcache`.

The critic workload is the one bench/models.py gives Charter: the default constitution's
judge prefix (constitution and exchange) and one short question per principle, token ids
from Charter's own tokenizer (the same vocabulary as the GGUF), the options Yes / No / NA
read from the last position's logits. llama.cpp has no batched scoring across different
suffixes here, so the pairs run one after another and each reuses the longest prefix it
shares with the previous one (its KV cache is cut to the shared tokens, the rest evaluated).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

DECODE_TOKENS = 48


def llama_cpp_figures(backend: Any, outputs: Sequence[str]) -> dict[str, Any] | None:
    """llama.cpp's figures, or None when llama-cpp-python is not installed."""
    try:
        import llama_cpp
    except ImportError:
        return None
    import numpy as np

    from agent._prompts import JUDGE_OPTIONS, judge_prefix, judge_turn
    from agent.models import ChatMessage
    from agent.models._local_models import default_gguf
    from principles import Task, default_seed

    started = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(default_gguf()),
        n_ctx=4096,
        n_threads=backend.threads,
        n_batch=512,
        verbose=False,
    )
    load_s = time.perf_counter() - started

    prompt = backend.encode([ChatMessage(role="user", content="Tell me a story about item 0.")])

    def decode(n: int) -> float:
        llm.reset()
        t = time.perf_counter()
        for i, token in enumerate(llm.generate(prompt, temp=0.0, reset=True)):
            if i + 1 >= n or token == llm.token_eos():
                break
        return time.perf_counter() - t

    decode(2)
    first = min(decode(1) for _ in range(2))
    total = decode(DECODE_TOKENS)
    decode_tok_s = (DECODE_TOKENS - 1) / (total - first)

    principles = list(default_seed().principles)
    task = Task(id="q", prompt="Answer the user's question helpfully and honestly.")
    tokenize = backend.tokenizer
    option_ids = [tokenize(o, add_special_tokens=False)["input_ids"][0] for o in JUDGE_OPTIONS]
    rows = [
        backend.encode([*judge_prefix(principles, task, o), *judge_turn(p, 0)])
        for o in outputs
        for p in principles
    ]
    llm.reset()
    previous: list[int] = []
    yes_wins = 0
    started = time.perf_counter()
    for row in rows:
        shared = 0
        while shared < min(len(row), len(previous)) - 1 and row[shared] == previous[shared]:
            shared += 1
        llm.n_tokens = shared
        llm.eval(row[shared:])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        picked = [float(logits[i]) for i in option_ids]
        top = max(picked)
        total_p = sum(math.exp(x - top) for x in picked)
        yes, no = (math.exp(x - top) / total_p for x in picked[:2])
        yes_wins += yes > no
        previous = row
    critique_s = time.perf_counter() - started
    return {
        "load_s": load_s,
        "decode_tok_s": decode_tok_s,
        "critique_pairs_per_s": len(rows) / critique_s,
        "critique_yes_over_no": yes_wins,
        "critique_pairs": len(rows),
    }
