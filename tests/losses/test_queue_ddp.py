"""FeatureQueue under DDP: two gloo processes, unequal batches, both queues get both ranks' keys."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avssl.losses.queue import FeatureQueue


def _worker(rank: int, world: int, store_path: str, out_dir: str) -> None:
    store = dist.FileStore(store_path, world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        queue = FeatureQueue(size=8, dim=2)
        batch = 2 + rank  # unequal shapes across ranks: all_gather needs padding
        ids = torch.arange(batch) + 100 * rank
        keys = ids.float().view(-1, 1).repeat(1, 2)
        queue.enqueue(keys, ids)
        torch.save(queue.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_gathered_enqueue_puts_both_ranks_keys_in_both_queues(tmp_path):
    # fork (where available) saves each child the seconds of a fresh `import torch`
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2,
                       join=True, start_method=method)
    states = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for name in states[0]:
        assert torch.equal(states[0][name], states[1][name]), name
    state = states[0]
    n = int(state["num_filled"])
    assert n == 5 and int(state["pointer"]) == 5
    assert state["video_id"][:n].tolist() == [0, 1, 100, 101, 102]
    assert torch.equal(state["keys_key"][:n, 0].long(), state["video_id"][:n])

