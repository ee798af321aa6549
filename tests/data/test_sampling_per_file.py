"""Samples per file by duration: exact counts with the cap, every (file, draw) once per epoch, the same
order from the same seed and epoch, exact mid-epoch resume, disjoint equal DDP shares, and distinct
windows for the draws of one file."""

from collections import Counter

import numpy as np
import pytest

from avssl.data.dataset import FileTable, SampleContext, SampleKey
from avssl.data.sampling import (
    ClipSampler,
    ResumableDistributedSampler,
    WindowSpec,
    samples_per_file,
)

DURATIONS = np.array([3.0, 10.0, 14.9, 15.0, 25.0, 7200.0, 0.5])


def test_counts_follow_duration_rounded_with_at_least_one_and_the_cap():
    assert samples_per_file(DURATIONS, 10.0, 64).tolist() == [1, 1, 1, 2, 3, 64, 1]
    assert samples_per_file(DURATIONS, 10.0, 2).tolist() == [1, 1, 1, 2, 2, 2, 1]
    assert samples_per_file(DURATIONS, 10.0, 1).tolist() == [1] * 7  # one per file, as before counts
    assert samples_per_file(DURATIONS, 0.5, 64).tolist() == [6, 20, 30, 30, 50, 64, 1]


@pytest.mark.parametrize("seconds, cap", [(0.0, 4), (-1.0, 4), (float("nan"), 4), (1.0, 0), (1.0, 1.5)])
def test_bad_seconds_or_cap_are_refused(seconds, cap):
    with pytest.raises(ValueError):
        samples_per_file(DURATIONS, seconds, cap)


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="shape"):
        ResumableDistributedSampler(3, counts=[1, 2])
    with pytest.raises(ValueError, match=">= 1"):
        ResumableDistributedSampler(3, counts=[1, 0, 2])


def epoch_pairs(sampler):
    return list(sampler.draws())


def test_each_file_gives_its_count_of_samples_with_draws_0_to_count_minus_1():
    counts = samples_per_file(DURATIONS, 10.0, 64)
    sampler = ResumableDistributedSampler(len(counts), counts=counts, num_replicas=1, rank=0, seed=3)
    sampler.set_epoch(5)
    pairs = epoch_pairs(sampler)
    assert len(sampler) == len(pairs) == counts.sum() == 73
    assert sorted(pairs) == [(i, d) for i, c in enumerate(counts) for d in range(c)]
    assert list(sampler) == [i for i, _ in pairs]  # plain iteration: the same files
    # the movie's samples are spread over the epoch, not in one run
    movie = [p for p, (i, _) in enumerate(pairs) if i == 5]
    assert max(np.diff(movie)) > 1


def test_all_counts_one_is_the_per_file_order_of_before():
    plain = ResumableDistributedSampler(20, num_replicas=1, rank=0, seed=7)
    ones = ResumableDistributedSampler(20, counts=np.ones(20, dtype=int), num_replicas=1, rank=0, seed=7)
    for s in (plain, ones):
        s.set_epoch(2)
    assert list(ones.draws()) == [(i, 0) for i in plain]
    assert [ones.successor(i, 3) for i in range(20)] == [plain.successor(i, 3) for i in range(20)]
    assert ones.state_dict(5) == plain.state_dict(5)  # checkpoints of before resume as written


def test_order_is_a_function_of_seed_and_epoch():
    counts = np.array([1, 3, 2, 5, 1])

    def pairs(seed, epoch):
        s = ResumableDistributedSampler(5, counts=counts, num_replicas=1, rank=0, seed=seed)
        s.set_epoch(epoch)
        return epoch_pairs(s)

    assert pairs(4, 1) == pairs(4, 1)
    assert pairs(4, 1) != pairs(4, 2)
    assert pairs(4, 1) != pairs(5, 1)
    unshuffled = ResumableDistributedSampler(5, counts=counts, num_replicas=1, rank=0, shuffle=False)
    assert epoch_pairs(unshuffled)[:5] == [(0, 0), (1, 0), (1, 1), (1, 2), (2, 0)]


def test_resume_mid_epoch_yields_exactly_the_remaining_keys():
    counts = np.array([2, 1, 4, 3, 1, 2])
    first = ResumableDistributedSampler(6, counts=counts, num_replicas=2, rank=1, seed=9)
    first.set_epoch(3)
    whole = epoch_pairs(first)
    state = first.state_dict(consumed=4)
    resumed = ResumableDistributedSampler(6, counts=counts, num_replicas=2, rank=1, seed=9)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # the trainer sets the restored epoch again
    assert epoch_pairs(resumed) == whole[4:]
    assert epoch_pairs(resumed) == whole  # the next pass of the epoch is whole again
    other = ResumableDistributedSampler(6, counts=counts + 1, num_replicas=2, rank=1, seed=9)
    with pytest.raises(ValueError, match="samples"):
        other.load_state_dict(state)  # another count of samples per epoch: not this run's position


@pytest.mark.parametrize("replicas", [2, 3, 4])
def test_ddp_shares_are_equal_disjoint_and_cover_the_epoch(replicas):
    counts = np.array([1, 3, 2, 5, 1, 4, 2])  # 18 samples
    shares = []
    for rank in range(replicas):
        s = ResumableDistributedSampler(7, counts=counts, num_replicas=replicas, rank=rank, seed=1)
        s.set_epoch(6)
        shares.append(epoch_pairs(s))
    assert len({len(x) for x in shares}) == 1
    flat = [p for x in shares for p in x]
    padding = len(flat) - 18
    assert padding == (-18) % replicas
    assert set(flat) == {(i, d) for i, c in enumerate(counts) for d in range(c)}
    repeated = [p for p, n in Counter(flat).items() if n > 1]
    assert len(repeated) == padding  # disjoint apart from the wrap-around padding
    order = list(zip(s.epoch_order(6).tolist(), s.epoch_draws(6).tolist()))
    assert set(repeated) == set(order[:padding])


def test_successor_is_a_deterministic_other_file():
    counts = np.array([1, 3, 2, 5, 1])
    s = ResumableDistributedSampler(5, counts=counts, num_replicas=1, rank=0, seed=2)
    for epoch in (0, 1):
        chain = [s.successor(0, k, epoch) for k in range(1, 5)]
        assert sorted(chain + [0]) == [0, 1, 2, 3, 4]  # the other files, each once


def test_the_draws_of_one_file_get_different_windows():
    spec = WindowSpec(0.5, fps=8.0)
    sampler = ClipSampler(np.array([60.0]), spec, seed=0)
    starts = [sampler.sync_pair(0, 2, draw).video_start for draw in range(8)]
    assert len(set(starts)) == 8
    assert starts == [sampler.sync_pair(0, 2, draw).video_start for draw in range(8)]
    assert starts[0] == sampler.sync_pair(0, 2).video_start  # draw 0: the window of before
    hard = [sampler.hard_negative(0, 2, starts[0], draw) for draw in range(4)]
    assert len(set(hard)) == 4


def test_a_samples_rngs_depend_on_its_draw():
    table = FileTable(np.array(["a.mp4"]), np.array([60.0]), np.array([True]), np.array([0]))

    def draws(draw):
        ctx = SampleContext(table, SampleKey(0, 1, None, draw), 0, seed=0, backend=None)
        return ctx.rng().integers(0, 2**31, 4).tolist(), ctx.torch_generator().initial_seed()

    assert draws(0) != draws(1)
    assert draws(1) == draws(1)
    old_key = SampleContext(table, SampleKey(0, 1), 0, seed=0, backend=None)
    assert old_key.rng().integers(0, 2**31, 4).tolist() == draws(0)[0]
