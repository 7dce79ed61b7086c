"""Batches that hold originals together with their reconstructions (docs/design.md#the-racl-objective).

RACL's enhanced term needs, in one batch, original bona fide clips *and* reconstructions: its anchors are the
original bona fide clips, each with the other originals as positives, so a batch needs at least two of them. The
paired sampler keeps each original with rows derived from it (same ``source_id``) and alternates bona fide and
spoof groups so batches are class-balanced at the group level (the smaller class is cycled). A group contributes
at most ``batch_size // 4`` rows (its original and reconstructions drawn anew each epoch), so every batch holds
at least two groups of each class: with whole groups, a build with four reconstructions of each bona fide clip
gave batches of one bona fide original and no enhanced term at all. Batches are a pure function of
(seed, epoch): a resumed run sees exactly the same batches.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from torch.utils.data import Sampler


def group_rows(source_ids: list[str], labels: list[int], is_reconstructed: list[bool]) -> tuple[list[list[int]], list[int]]:
    """Rows grouped by ``source_id`` (original first); a group's class is its original's label."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, sid in enumerate(source_ids):
        groups[sid].append(i)
    ordered, classes = [], []
    for sid in sorted(groups):
        rows = sorted(groups[sid], key=lambda i: (is_reconstructed[i], i))
        originals = [i for i in rows if not is_reconstructed[i]]
        ordered.append(rows)
        classes.append(labels[originals[0]] if originals else 1)
    return ordered, classes


class PairedBatchSampler(Sampler[list[int]]):
    """Class-balanced batches of whole source groups; ``paired=False`` gives plain shuffled batches."""

    def __init__(self, source_ids, labels, is_reconstructed, batch_size: int, seed: int = 0, paired: bool = True, drop_last: bool = True):
        if batch_size < 2:
            raise ValueError("batch_size must be at least 2 for contrastive training")
        self.batch_size, self.seed, self.paired, self.drop_last = batch_size, seed, paired, drop_last
        self.epoch = 0
        if paired:
            self.groups, self.classes = group_rows(list(source_ids), list(labels), list(is_reconstructed))
        else:
            self.groups, self.classes = [[i] for i in range(len(labels))], list(labels)
        self._cache: dict[int, list[list[int]]] = {}

    def use_epoch(self, epoch: int):
        # Not named set_epoch on purpose: Accelerate calls set_epoch with its own iteration counter,
        # which restarts at 0 in a resumed process and would replay the wrong epoch's batches.
        self.epoch = epoch

    def _group_order(self, rng: np.random.Generator) -> list[int]:
        by_class = [[g for g, c in enumerate(self.classes) if c == k] for k in (0, 1)]
        by_class = [list(rng.permutation(g)) for g in by_class if g]
        if len(by_class) == 1:
            return by_class[0]
        longest = max(len(g) for g in by_class)
        return [int(g[i % len(g)]) for i in range(longest) for g in by_class]

    def _batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        # Which rows of a too-large group to keep: a generator of its own, so that builds whose groups fit the cap
        # keep exactly the batches they had before the cap existed.
        pick = np.random.default_rng([self.seed, epoch, 1])
        cap = max(2, self.batch_size // 4)  # unpaired groups are single rows: never capped
        batches, current = [], []
        for g in self._group_order(rng):
            rows = self.groups[g]
            if len(rows) > cap:  # the original (first) stays; the reconstructions that go with it are drawn
                rows = [rows[0], *sorted(int(i) for i in pick.choice(rows[1:], cap - 1, replace=False))]
            if len(current) + len(rows) > self.batch_size:
                batches.append(current)
                current = []
            current = current + rows
        if current and (not self.drop_last or len(current) == self.batch_size):
            batches.append(current)
        return [b for b in batches if len(b) >= 2] or ([current] if current else [])

    def epoch_batches(self) -> list[list[int]]:
        if self.epoch not in self._cache:
            self._cache = {self.epoch: self._batches(self.epoch)}
        return self._cache[self.epoch]

    def __iter__(self):
        yield from self.epoch_batches()

    def __len__(self) -> int:
        return len(self.epoch_batches())
