"""gather_distributed: two gloo processes with half a batch each give, on average, the loss of one
process on the whole batch, and the same gradients once DDP averages them (video as clip embeddings
[B, D] or as maps of positions [B, P, D], av-nce's spatial_pool: max)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avssl.losses.infonce import cross_modal_info_nce, gathered_cross_modal_info_nce, pair_mask

BATCH, DIM, TEMPERATURE = 8, 5, 0.2


def union_batch(positions: int = 0):
    g = torch.Generator().manual_seed(3)
    shape = (BATCH, positions, DIM) if positions else (BATCH, DIM)
    video, audio = torch.randn(shape, generator=g), torch.randn(BATCH, DIM, generator=g)
    groups = torch.tensor([0, 1, 1, 2, 3, 3, 4, 5])  # same-group pairs across the two halves too
    return video, audio, groups


def _worker(rank: int, world: int, store_path: str, out_dir: str, positions: int) -> None:
    dist.init_process_group("gloo", store=dist.FileStore(store_path, world), rank=rank, world_size=world)
    try:
        video, audio, groups = union_batch(positions)
        half = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
        v, a = video[half].clone().requires_grad_(True), audio[half].clone().requires_grad_(True)
        loss = gathered_cross_modal_info_nce(v, a, TEMPERATURE, group_ids=groups[half])
        loss.backward()
        torch.save({"loss": loss.detach(), "video_grad": v.grad, "audio_grad": a.grad},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
@pytest.mark.parametrize("positions", [0, 3])
def test_gathered_loss_and_gradients_equal_the_union_batch(tmp_path, positions):
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(2, str(tmp_path / "store"), str(tmp_path), positions), nprocs=2, join=True,
                       start_method=method)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    video, audio, groups = union_batch(positions)
    video.requires_grad_(True)
    audio.requires_grad_(True)
    exclude = pair_mask(groups, groups) & ~torch.eye(BATCH, dtype=torch.bool)
    union = cross_modal_info_nce(video, audio, TEMPERATURE, exclude_mask=exclude)
    union.backward()
    mean = (ranks[0]["loss"] + ranks[1]["loss"]) / 2
    torch.testing.assert_close(mean, union.detach(), rtol=1e-6, atol=1e-6)
    # each rank's gradient sums every rank's loss; DDP divides by the number of ranks
    for name, full in (("video_grad", video.grad), ("audio_grad", audio.grad)):
        gathered = torch.cat([ranks[0][name], ranks[1][name]]) / 2
        torch.testing.assert_close(gathered, full, rtol=1e-5, atol=1e-6)
    # without the gather each rank only sees its own half: a different (larger-chance) loss
    halves = [cross_modal_info_nce(video[s], audio[s], TEMPERATURE,
                                   exclude_mask=(pair_mask(groups[s], groups[s]) & ~torch.eye(4, dtype=torch.bool)))
              for s in (slice(0, 4), slice(4, 8))]
    assert not torch.isclose((halves[0] + halves[1]) / 2, union)


def test_without_a_process_group_it_is_the_local_loss():
    video, audio, groups = union_batch()
    exclude = pair_mask(groups, groups) & ~torch.eye(BATCH, dtype=torch.bool)
    torch.testing.assert_close(gathered_cross_modal_info_nce(video, audio, TEMPERATURE, group_ids=groups),
                               cross_modal_info_nce(video, audio, TEMPERATURE, exclude_mask=exclude))
