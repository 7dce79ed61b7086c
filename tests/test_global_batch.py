"""Contrastive terms over the global batch: two CPU processes (gloo) on a fixed batch of 8 clips, 4 each, give the
loss and the gradients of one process on all 8 (modeling_racl/loss_racl.py, ``RACLLoss.global_batch``).

Slow (two spawned processes that import torch and transformers: about a minute on a busy 2-core machine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import TINY_CONFIG, speech_like

WORLD = 2
LABELS = [0, 0, 1, 1, 0, 1, 1, 0]
RECON = [False, False, True, False, False, True, False, False]
SOURCES = [0, 1, 0, 2, 0, 0, 1, 2]  # numbered per process batch (as collate does): rows 0-3, then rows 4-7
GLOBAL_SOURCES = [0, 1, 0, 2, 3, 3, 4, 5]  # the same groups numbered over the whole batch


def batch(rows=slice(None), sources=SOURCES):
    waves = torch.from_numpy(np.stack([speech_like(0.5, seed=i) for i in range(len(LABELS))]))
    return {"input_values": waves[rows], "labels": torch.tensor(LABELS)[rows],
            "is_reconstructed": torch.tensor(RECON)[rows], "source_ids": torch.tensor(sources)[rows]}


def model():
    from modeling_racl import RACLConfig, RACLForAudioClassification

    torch.manual_seed(0)
    m = RACLForAudioClassification(RACLConfig.from_json_file(str(TINY_CONFIG)))
    return m.eval()  # no dropout, batch norm on running statistics: every clip's forward is independent of the batch


def step(m, inputs):
    out = m(**inputs)
    out.loss.backward()
    return out


def terms(out):
    return {k: float(getattr(out, k).detach()) for k in ("loss", "loss_cls", "loss_std", "loss_enh", "loss_reg")}


def grads(m):
    return {name: p.grad.clone() for name, p in m.named_parameters() if p.grad is not None}


def worker(rank, init_file, results):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    for global_batch in (True, False):
        m = model()
        m.loss_fn.global_batch = global_batch
        out = step(m, batch(slice(4 * rank, 4 * rank + 4)))
        for p in m.parameters():  # what DDP does after backward: average the gradients over the processes
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= WORLD
        results[(rank, global_batch)] = (terms(out), grads(m) if rank == 0 else None)
    # Batches of different sizes (3 and 5 rows): gathered in rank order, gradients back to each row's owner.
    from modeling_racl.loss_racl import gather_batch

    n = 3 + 2 * rank
    z = torch.full((n, 2), float(rank + 1), requires_grad=True)
    z_all, labels, recon, sources = gather_batch(z, torch.full((n,), rank), torch.ones(n, dtype=torch.bool), torch.arange(n))
    (z_all * torch.arange(len(z_all), dtype=torch.float32)[:, None]).sum().backward()
    results[("uneven", rank)] = (z_all.detach()[:, 0].tolist(), labels.tolist(), recon.tolist(), sources.tolist(), z.grad[:, 0].tolist())
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_give_the_loss_and_gradients_of_one_process_on_the_global_batch(tmp_path):
    results = mp.Manager().dict()
    mp.spawn(worker, args=(str(tmp_path / "init"), results), nprocs=WORLD, join=True)
    m = model()
    reference_terms, reference = terms(step(m, batch(sources=GLOBAL_SOURCES))), grads(m)
    assert all(reference_terms[k] > 0 for k in ("loss_std", "loss_enh", "loss_reg"))  # every term has structure here

    for rank in range(WORLD):
        got = results[(rank, True)][0]
        for name in ("loss_std", "loss_enh", "loss_reg"):  # the embedding terms: the whole batch on every process
            assert got[name] == pytest.approx(reference_terms[name], rel=1e-5, abs=1e-6), (rank, name)
    # Lcls is each process's mean; their average (what the averaged gradients follow) is the global mean
    for name in ("loss", "loss_cls"):
        assert np.mean([results[(r, True)][0][name] for r in range(WORLD)]) == pytest.approx(reference_terms[name], rel=1e-5)
    got = results[(0, True)][1]
    assert got.keys() == reference.keys() and len(got) > 10
    for name, g in reference.items():
        torch.testing.assert_close(got[name], g, rtol=1e-4, atol=1e-6, msg=name)

    # Uneven batches: 3 rows of rank 0, then 5 of rank 1; source ids unique across processes; each process's
    # gradient of the (same) gathered sum reaches the owner of the rows, summed over the processes.
    z0, labels, recon, sources, grad0 = results[("uneven", 0)]
    assert z0 == [1.0] * 3 + [2.0] * 5 and labels == [0] * 3 + [1] * 5 and recon == [True] * 8
    assert sources == [0, 2, 4, 1, 3, 5, 7, 9] and len(set(sources)) == 8
    assert grad0 == [2.0 * i for i in range(3)] and results[("uneven", 1)][4] == [2.0 * i for i in range(3, 8)]

    # The switch off: each process's terms are those of its own 4 clips, and the gradients differ.
    own = terms(model()(**batch(slice(0, 4))))
    assert results[(0, False)][0]["loss_std"] == pytest.approx(own["loss_std"], rel=1e-5)
    assert own["loss_std"] != pytest.approx(reference_terms["loss_std"], rel=1e-3)
    assert any(not torch.allclose(results[(0, False)][1][n], g, rtol=1e-3, atol=1e-6) for n, g in reference.items())
