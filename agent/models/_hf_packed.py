"""Scoring many prompts in one row: a token tree after the cached prefix.

The critic asks a dozen short questions about one output, all after the same long prefix
(constitution and exchange). Run as a batch, each question is a row that repeats the
prefix's keys and values and pads to the longest question. Packed, the questions' tokens
are laid out once in one sequence after the prefix, merged into a trie (tokens that several
questions share at the same place, such as their common opening or a question shared by
several multi-token options, appear once), and a 4D attention mask lets each token attend to
the prefix and to its own ancestors in the trie only. Position ids count from the end of the
prefix along each path, so every token sees exactly the positions and keys it would see in
its own unpadded row: scores equal the row layout's to within float rounding.

Guarantees:
- nodes are numbered in insertion order, so every ancestor precedes its descendants;
- `Pack.reads[j]` are the packed positions whose next-token distributions predict job j's
  continuation after its prompt (the prompt's last token, then each option token but the
  last), the same positions the row layout reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Job:
    """One scored sequence: `tokens` (the full row, prefix included) and `prompt_len`, the
    length of the prompt part before the option tokens being scored."""

    tokens: Sequence[int]
    prompt_len: int


@dataclass(frozen=True)
class Pack:
    input_ids: torch.Tensor  # (1, S)
    position_ids: torch.Tensor  # (1, S)
    mask: torch.Tensor  # (1, 1, S, prefix_len + S), additive: 0 attends, dtype-min blocks
    reads: list[list[int]]  # per job, packed positions in order

    @property
    def size(self) -> int:
        return int(self.input_ids.shape[1])


class _Trie:
    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.depths: list[int] = []
        self._children: dict[tuple[int, int], int] = {}

    def path(self, suffix: Sequence[int]) -> list[int]:
        """Node ids of `suffix`'s tokens, adding the nodes it does not share yet."""
        out: list[int] = []
        parent = -1
        for depth, token in enumerate(suffix):
            key = (parent, token)
            node = self._children.get(key)
            if node is None:
                node = len(self.tokens)
                self._children[key] = node
                self.tokens.append(token)
                self.parents.append(parent)
                self.depths.append(depth)
            out.append(node)
            parent = node
        return out

    def added_by(self, suffix: Sequence[int]) -> int:
        """How many nodes `path(suffix)` would add."""
        parent = -1
        for n, token in enumerate(suffix):
            node = self._children.get((parent, token))
            if node is None:
                return len(suffix) - n
            parent = node
        return 0


def plan(jobs: Sequence[Job], prefix_len: int, max_tokens: int) -> list[list[int]]:
    """Job indices per pack, in order: each pack's trie holds at most `max_tokens` nodes (a
    job longer than that alone gets a pack of its own)."""
    packs: list[list[int]] = []
    trie, current = _Trie(), list[int]()
    for j, job in enumerate(jobs):
        suffix = job.tokens[prefix_len:]
        if current and len(trie.tokens) + trie.added_by(suffix) > max_tokens:
            packs.append(current)
            trie, current = _Trie(), list[int]()
        trie.path(suffix)
        current.append(j)
    if current:
        packs.append(current)
    return packs


def pack(jobs: Sequence[Job], prefix_len: int, dtype: torch.dtype) -> Pack:
    """The jobs' suffixes after `prefix_len` as one token tree (see the module docstring)."""
    trie = _Trie()
    paths = [trie.path(job.tokens[prefix_len:]) for job in jobs]
    size = len(trie.tokens)
    visible = torch.zeros((size, size), dtype=torch.bool)
    for node, parent in enumerate(trie.parents):
        if parent >= 0:
            visible[node] = visible[parent]
        visible[node, node] = True
    mask = torch.zeros((size, prefix_len + size), dtype=dtype)
    mask[:, prefix_len:].masked_fill_(~visible, torch.finfo(dtype).min)
    reads = []
    for job, path in zip(jobs, paths, strict=True):
        lo = job.prompt_len - 1 - prefix_len
        hi = max(len(job.tokens) - 1, job.prompt_len) - prefix_len
        reads.append(path[lo:hi])
    return Pack(
        input_ids=torch.tensor([trie.tokens], dtype=torch.long),
        position_ids=torch.tensor([trie.depths], dtype=torch.long) + prefix_len,
        mask=mask[None, None],
        reads=reads,
    )
