"""The paired batch sampler: whole-ish source groups, class balance, and batches that give RACL's enhanced term anchors."""

import numpy as np
import torch

from modeling_racl.loss_racl import enhanced_contrastive_loss
from racl.training.sampler import PairedBatchSampler


def build(bona_reconstructions: int, spoof_reconstructions: int, n_bona: int = 20, n_spoof: int = 20):
    """Rows of a hard-sample build: each original followed by its reconstructions (label spoof, same source_id)."""
    source_ids, labels, is_rec = [], [], []
    for kind, n, k in (("b", n_bona, bona_reconstructions), ("s", n_spoof, spoof_reconstructions)):
        for i in range(n):
            source_ids += [f"{kind}{i}"] * (k + 1)
            labels += [0 if kind == "b" else 1] + [1] * k
            is_rec += [False] + [True] * k
    return source_ids, labels, is_rec


def test_a_build_with_many_reconstructions_still_gives_two_bona_fide_anchors_per_batch():
    source_ids, labels, is_rec = build(4, 2)  # the demo's wide build: diffusion, WORLD, Codec2, Opus of real speech
    sampler = PairedBatchSampler(source_ids, labels, is_rec, batch_size=12, seed=0)
    seen = set()
    for epoch in range(6):
        sampler.use_epoch(epoch)
        for batch in sampler:
            assert len(batch) == 12
            originals = [i for i in batch if not is_rec[i] and labels[i] == 0]
            assert len(originals) >= 2
            # every reconstruction sits with its own original
            assert all(source_ids[i] in {source_ids[o] for o in batch if not is_rec[o]} for i in batch)
            z = torch.nn.functional.normalize(torch.randn(len(batch), 8, generator=torch.Generator().manual_seed(epoch)), dim=-1)
            ids = {s: k for k, s in enumerate(dict.fromkeys(source_ids[i] for i in batch))}
            enh = enhanced_contrastive_loss(z, torch.tensor([labels[i] for i in batch]), torch.tensor([is_rec[i] for i in batch]), 0.07,
                                            source_ids=torch.tensor([ids[source_ids[i]] for i in batch]))
            assert float(enh) > 0
            seen.update(batch)
    assert len(seen) > 0.9 * len(labels)  # the reconstructions left out of one epoch come back in others


def test_groups_that_fit_stay_whole_and_batches_are_a_function_of_seed_and_epoch():
    source_ids, labels, is_rec = build(2, 0)  # the narrower demo build: diffusion and WORLD of real speech only
    sampler = PairedBatchSampler(source_ids, labels, is_rec, batch_size=12, seed=3)
    sampler.use_epoch(1)
    batches = list(sampler)
    for batch in batches:
        for sid in {source_ids[i] for i in batch}:
            assert sum(source_ids[i] == sid for i in batch) == source_ids.count(sid)
    again = PairedBatchSampler(source_ids, labels, is_rec, batch_size=12, seed=3)
    again.use_epoch(1)
    assert list(again) == batches
    again.use_epoch(2)
    assert list(again) != batches


def test_unpaired_batches_are_class_balanced_rows():
    source_ids, labels, is_rec = build(4, 2, n_bona=6, n_spoof=6)  # 6 bona fide rows against 78 spoof rows
    sampler = PairedBatchSampler(source_ids, labels, is_rec, batch_size=4, seed=0, paired=False)
    rows = [i for batch in sampler for i in batch]
    assert all(len(batch) == 4 for batch in sampler) and set(rows) == set(range(len(labels)))
    assert np.mean([labels[i] for i in rows]) == 0.5  # the smaller class is cycled, row by row
