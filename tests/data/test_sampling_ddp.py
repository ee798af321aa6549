"""DDP index sampler: equal per-rank counts, disjoint cover of the epoch, exact mid-epoch resume."""

import json

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from avssl.data.sampling import HierarchicalBatchSampler, ResumableDistributedSampler, WindowSpec


def rank_lists(length, replicas, epoch=0, **kwargs):
    out = []
    for rank in range(replicas):
        sampler = ResumableDistributedSampler(length, num_replicas=replicas, rank=rank, seed=11, **kwargs)
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


def test_ranks_are_disjoint_and_cover_the_epoch():
    lists = rank_lists(12, 3, epoch=2)
    assert [len(x) for x in lists] == [4, 4, 4]
    flat = [i for x in lists for i in x]
    assert sorted(flat) == list(range(12))  # disjoint and covering


def test_padding_wraps_around_like_distributed_sampler():
    lists = rank_lists(10, 4)  # 10 -> 12: the first two indices of the permutation repeat
    assert [len(x) for x in lists] == [3, 3, 3, 3]
    flat = [i for x in lists for i in x]
    assert set(flat) == set(range(10)) and len(flat) == 12
    order = ResumableDistributedSampler(10, num_replicas=4, rank=0, seed=11).epoch_order(0)
    counts = np.bincount(flat, minlength=10)
    assert set(np.flatnonzero(counts == 2)) == set(order[:2].tolist())


def test_drop_last_cuts_the_tail():
    lists = rank_lists(10, 4, drop_last=True)
    assert [len(x) for x in lists] == [2, 2, 2, 2]
    flat = [i for x in lists for i in x]
    assert len(set(flat)) == 8


def test_permutation_is_a_function_of_seed_and_epoch():
    a = ResumableDistributedSampler(50, num_replicas=1, rank=0, seed=1)
    b = ResumableDistributedSampler(50, num_replicas=1, rank=0, seed=1)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    assert sorted(a.epoch_order(3)) == list(range(50))
    assert not np.array_equal(a.epoch_order(3), a.epoch_order(4))
    plain = ResumableDistributedSampler(5, num_replicas=1, rank=0, shuffle=False)
    assert list(plain) == [0, 1, 2, 3, 4]


def test_resume_mid_epoch_yields_exactly_the_rest():
    full = ResumableDistributedSampler(23, num_replicas=2, rank=1, seed=5)
    full.set_epoch(4)
    expected = list(full)

    first = ResumableDistributedSampler(23, num_replicas=2, rank=1, seed=5)
    first.set_epoch(4)
    iterator = iter(first)
    done = [next(iterator) for _ in range(7)]
    state = first.state_dict()
    assert state["epoch"] == 4 and state["start_index"] == 7

    resumed = ResumableDistributedSampler(23, num_replicas=2, rank=1, seed=5)
    resumed.load_state_dict(state)
    resumed.set_epoch(4)  # the trainer calls it again for the resumed epoch: position kept
    rest = list(resumed)
    assert done + rest == expected
    assert list(resumed) == expected  # a second pass over the same epoch is whole again
    resumed.set_epoch(5)
    assert resumed.start_index == 0 and len(list(resumed)) == len(expected)


def test_resume_through_a_dataloader_with_the_trainers_count():
    sampler = ResumableDistributedSampler(40, num_replicas=2, rank=0, seed=3)
    loader = DataLoader(torch.arange(40), batch_size=4, sampler=sampler)
    batches = [b.tolist() for b in loader]
    sampler2 = ResumableDistributedSampler(40, num_replicas=2, rank=0, seed=3)
    loader2 = DataLoader(torch.arange(40), batch_size=4, sampler=sampler2)
    seen = []
    for step, batch in enumerate(loader2):
        seen.append(batch.tolist())
        if step == 2:
            state = sampler2.state_dict(consumed=(step + 1) * 4)
            break
    sampler3 = ResumableDistributedSampler(40, num_replicas=2, rank=0, seed=3)
    sampler3.load_state_dict(state)
    seen += [b.tolist() for b in DataLoader(torch.arange(40), batch_size=4, sampler=sampler3)]
    assert seen == batches


def test_mismatched_state_is_refused():
    state = ResumableDistributedSampler(20, num_replicas=2, rank=0).state_dict(consumed=3)
    with pytest.raises(ValueError, match="num_replicas"):
        ResumableDistributedSampler(20, num_replicas=4, rank=0).load_state_dict(state)
    with pytest.raises(ValueError, match="start_index"):
        ResumableDistributedSampler(20, num_replicas=2, rank=0).load_state_dict({**state, "start_index": 11})


def test_successor_is_the_next_index_of_the_permutation():
    sampler = ResumableDistributedSampler(9, num_replicas=1, rank=0, seed=2)
    order = sampler.epoch_order(1)
    sampler.set_epoch(1)
    assert sampler.successor(int(order[3])) == order[4]
    assert sampler.successor(int(order[8])) == order[0]  # wraps around
    assert sampler.successor(int(order[3]), steps=2) == order[5]


def test_bad_world_is_refused():
    with pytest.raises(ValueError, match="rank"):
        ResumableDistributedSampler(10, num_replicas=2, rank=2)


def _rank_main(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        sampler = ResumableDistributedSampler(21, seed=4)  # world and rank from torch.distributed
        sampler.set_epoch(1)
        groups = np.repeat(np.arange(6), 2)
        batches = HierarchicalBatchSampler(groups, np.full(12, 20.0), WindowSpec(1.0), 4, 1 / 3, seed=4)
        batches.set_epoch(1)
        result = {"indices": list(sampler), "batches": [b for b in batches]}
        with open(f"{out}.{rank}", "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two fresh interpreters importing torch: ~7 s, more on a busy machine
def test_two_process_gloo_run_splits_the_epoch(tmp_path):
    out = str(tmp_path / "rank")
    mp.spawn(_rank_main, args=(2, str(tmp_path / "store"), out), nprocs=2)
    ranks = [json.load(open(f"{out}.{r}")) for r in range(2)]
    first, second = ranks[0]["indices"], ranks[1]["indices"]
    assert len(first) == len(second) == 11  # 21 padded to 22
    assert set(first) | set(second) == set(range(21)) and len(set(first) & set(second)) == 1
    reference = ResumableDistributedSampler(21, num_replicas=2, rank=1, seed=4)
    reference.set_epoch(1)
    assert second == list(reference)  # the same split as explicit num_replicas / rank
    b0, b1 = ranks[0]["batches"], ranks[1]["batches"]
    assert len(b0) == len(b1) >= 1 and not {json.dumps(b) for b in b0} & {json.dumps(b) for b in b1}
