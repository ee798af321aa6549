"""FeatureQueue: wrap-around with any batch size, keys aligned with video ids, state_dict round trip, masking."""

import math

import pytest
import torch

from avssl.losses.infonce import info_nce_with_queue, pair_mask
from avssl.losses.queue import EMPTY_ID, FeatureQueue


def _batch(first_id: int, size: int, dim: int = 4):
    ids = torch.arange(first_id, first_id + size)
    keys = ids.float().view(-1, 1).expand(size, dim).clone()  # key value == video id: traceable
    return keys, ids


def _assert_aligned(queue: FeatureQueue, modality=None):
    keys = queue.keys(modality)
    assert torch.equal(keys[:, 0].long(), queue.video_ids())


def test_wrap_around_with_batch_not_dividing_size():
    queue = FeatureQueue(size=7, dim=4)
    assert len(queue) == 0 and queue.keys().shape == (0, 4)
    for step in range(4):
        queue.enqueue(*_batch(3 * step, 3), gather=False)
        assert len(queue) == min(7, 3 * (step + 1))
        _assert_aligned(queue)
    # 12 entries into 7 slots: the newest 7 (ids 5..11) survive, at slot (id % 7)
    ids = queue.video_ids()
    assert sorted(ids.tolist()) == list(range(5, 12))
    assert all(slot == vid % 7 for slot, vid in enumerate(ids.tolist()))
    assert int(queue.pointer) == 12 % 7


def test_batch_larger_than_queue_keeps_newest():
    queue = FeatureQueue(size=5, dim=4)
    queue.enqueue(*_batch(0, 2), gather=False)
    queue.enqueue(*_batch(100, 12), gather=False)
    assert sorted(queue.video_ids().tolist()) == list(range(107, 112))
    _assert_aligned(queue)
    assert int(queue.pointer) == (2 + 12) % 5


def test_two_modalities_share_slots():
    queue = FeatureQueue(size=4, dim=2, modalities=("video", "audio"))
    queue.enqueue({"video": torch.ones(3, 2), "audio": -torch.ones(3, 2)}, torch.tensor([1, 2, 3]))
    assert queue.video_ids().tolist() == [1, 2, 3] and queue.video_id[3] == EMPTY_ID
    assert torch.equal(queue.keys("audio"), -queue.keys("video"))
    with pytest.raises(ValueError, match="modality"):
        queue.keys()
    with pytest.raises(ValueError, match="audio"):
        queue.enqueue({"video": torch.ones(1, 2)}, torch.tensor([4]))
    with pytest.raises(ValueError, match=r"\[2, 2\]"):
        queue.enqueue({"video": torch.ones(2, 3), "audio": torch.ones(2, 2)}, torch.tensor([4, 5]))


def test_state_dict_round_trip_resumes_identically(tmp_path):
    queue = FeatureQueue(size=6, dim=4)
    for step in range(3):
        queue.enqueue(*_batch(4 * step, 4), gather=False)
    path = tmp_path / "queue.pt"
    torch.save({"model": queue.state_dict()}, path)
    restored = FeatureQueue(size=6, dim=4)
    restored.load_state_dict(torch.load(path)["model"])
    assert len(restored) == len(queue) and int(restored.pointer) == int(queue.pointer)
    queue.enqueue(*_batch(50, 5), gather=False)
    restored.enqueue(*_batch(50, 5), gather=False)
    for name, value in queue.state_dict().items():
        assert torch.equal(value, restored.state_dict()[name]), name
    _assert_aligned(restored)
    with pytest.raises(RuntimeError, match="size mismatch"):
        FeatureQueue(size=5, dim=4).load_state_dict(queue.state_dict())


def test_same_video_queue_entries_are_masked_out_of_negatives():
    queue = FeatureQueue(size=6, dim=3)
    eye = torch.eye(3)
    # slots of video 0 point like query 0, of video 2 like query 1: hard, but same-video, entries
    queue.enqueue(eye[[0, 2, 1, 0, 2, 1]], torch.tensor([0, 1, 2, 0, 1, 2]), gather=False)
    query = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    key = torch.tensor([[0.8, 0.6, 0.0], [0.0, 0.6, 0.8]])
    video_id = torch.tensor([0, 2])
    exclude = pair_mask(video_id, queue.video_ids())
    masked = info_nce_with_queue(query, key, queue.keys(), 0.5, queue_exclude_mask=exclude)
    # hand value: each query keeps its positive, the other batch key and the 4 slots of other videos
    sims = [[0.8, 0.0, 0.0, 0.0, 0.0, 0.0], [0.6, 0.6, 0.0, 0.0, 0.0, 0.0]]
    expected = sum(-math.log(math.exp(r[0] / 0.5) / sum(math.exp(x / 0.5) for x in r)) for r in sims) / 2
    assert masked.item() == pytest.approx(expected, rel=1e-6)
    unmasked = info_nce_with_queue(query, key, queue.keys(), 0.5)
    assert unmasked.item() > masked.item() + 0.5
