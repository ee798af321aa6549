"""The train loader's saved position is what training consumed, although workers fetch ahead; a new
loader restored from it yields exactly the rest of the epoch, for index and batch samplers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from avssl.data.dataset import as_key
from avssl.data.sampling import HierarchicalBatchSampler, ResumableDistributedSampler, WindowSpec
from avssl.train.data import KeyedSampler, ResumableLoader, collate_for_training


class KeyEcho(Dataset):
    """Each sample is its key: index, epoch and start (-1 when the sampler chose none)."""

    def __len__(self) -> int:
        return 1000

    def __getitem__(self, key):
        key = as_key(key)
        return {"index": torch.tensor(key.index), "epoch": torch.tensor(key.epoch),
                "start": torch.tensor(-1.0 if key.start is None else key.start), "failures": []}


def index_sampler(length: int = 46):
    return ResumableDistributedSampler(length, num_replicas=2, rank=1, seed=3), False


def batch_sampler():
    groups = np.repeat(np.arange(6), 2)
    sampler = HierarchicalBatchSampler(groups, np.full(12, 10.0), WindowSpec(1.0, fps=8.0), batch_size=4,
                                       within_group_share=1 / 3, repeats=2, seed=3, num_replicas=1, rank=0)
    return sampler, True


def rows(batch) -> list[tuple]:
    return list(zip(batch["index"].tolist(), batch["epoch"].tolist(), batch["start"].tolist()))


@pytest.mark.parametrize("make", [index_sampler, batch_sampler], ids=["index", "batch"])
def test_restored_loader_yields_exactly_the_unconsumed_rest(make):
    def loader(workers: int) -> ResumableLoader:
        sampler, is_batch = make()
        extra = {"prefetch_factor": 2} if workers else {}
        return ResumableLoader(KeyEcho(), KeyedSampler(sampler, is_batch), 4, num_workers=workers,
                               collate_fn=collate_for_training, **extra)

    full = loader(0)
    full.keyed.set_epoch(1)
    everything = [rows(b) for b in full]
    assert len(everything) == len(full) >= 5 and all(r[1] == 1 for b in everything for r in b)

    first = loader(2)
    first.keyed.set_epoch(1)
    iterator = iter(first)
    for _ in range(3):
        next(iterator)  # the workers have fetched further than this
        first.batch_consumed()
    state = first.state_dict()
    del iterator

    second = loader(2)
    second.load_state_dict(state)
    second.keyed.set_epoch(1)  # what the trainer does next: the restored position is kept
    assert [rows(b) for b in second] == everything[3:]
    # and the epoch after runs whole, in a new order
    second.keyed.set_epoch(2)
    nxt = [rows(b) for b in second]
    assert len(nxt) == len(everything) and nxt != everything


def test_state_at_the_end_of_an_epoch_resumes_at_the_next_epoch():
    sampler, _ = index_sampler(22)
    first = ResumableLoader(KeyEcho(), KeyedSampler(sampler, False), 4, collate_fn=collate_for_training)
    # 11 indices per rank, batch 4, short batches dropped: 2 batches per epoch
    assert len(first) == 2
    list(first)
    first.batch_consumed()
    first.batch_consumed()
    state = first.state_dict()
    sampler2, _ = index_sampler(22)
    second = ResumableLoader(KeyEcho(), KeyedSampler(sampler2, False), 4, collate_fn=collate_for_training)
    second.load_state_dict(state)
    assert second.keyed.epoch == 1
    assert {r[1] for b in second for r in rows(b)} == {1}
