"""Sample-dependent extra positives and negatives from the queue (the stated cross-modal rule)."""

import math

import pytest
import torch

from avssl.losses.queue_pairs import cross_modal_info_nce_with_queue, sample_dependent_pairs

E = torch.eye(3)
D = (E[0] + E[1]) / math.sqrt(2)
# slot: (video key, audio key, video id); for query 0 (video and audio e0), agreement = min(cos v, cos a)
SLOTS = [
    (E[0], E[0], 7),    # 0: same video as query 0: dropped although it is the closest
    (E[0], E[0], 1),    # 1: agreement 1 -> extra positive
    (E[0], E[2], 2),    # 2: nearest in video only (agreement 0) -> ambiguous, dropped
    (E[2], E[0], 3),    # 3: nearest in audio only (agreement 0) -> ambiguous, dropped
    (D, D, 4),          # 4: agreement 0.707, the second highest -> extra positive
    (E[1], E[1], 5),    # 5: negative, mean similarity 0 (the hardest left)
    (-E[0], -E[0], 6),  # 6: negative, mean similarity -1 (easiest)
]
QUEUE_VIDEO = torch.stack([s[0] for s in SLOTS])
QUEUE_AUDIO = torch.stack([s[1] for s in SLOTS])
QUEUE_IDS = torch.tensor([s[2] for s in SLOTS])


def test_rule_on_designed_queue():
    video = torch.stack([E[0], E[2]])
    audio = torch.stack([E[0], E[2]])
    ids = torch.tensor([7, 1])
    pairs = sample_dependent_pairs(video, audio, QUEUE_VIDEO, QUEUE_AUDIO, ids, QUEUE_IDS, num_neighbours=2)
    assert pairs.positive[0].nonzero().flatten().tolist() == [1, 4]
    assert pairs.negative[0].nonzero().flatten().tolist() == [5, 6]
    assert pairs.excluded[0].nonzero().flatten().tolist() == [0, 2, 3]
    # query 1 (video 1) looks and sounds like e3: slot 2 is its video neighbour, slot 3 its audio one
    assert not pairs.positive[1, 1]  # same video as query 1
    assert ((pairs.positive.int() + pairs.negative.int() + pairs.excluded.int()) == 1).all()
    assert pairs.positive.sum(1).tolist() == [2, 2]  # every query gets its k positives
    hardest = sample_dependent_pairs(video, audio, QUEUE_VIDEO, QUEUE_AUDIO, ids, QUEUE_IDS,
                                     num_neighbours=2, num_negatives=1)
    assert hardest.negative[0].nonzero().flatten().tolist() == [5]
    assert torch.equal(hardest.positive, pairs.positive)


def test_neighbours_larger_than_eligible_and_empty_queue():
    video = audio = E[:1]
    pairs = sample_dependent_pairs(video, audio, QUEUE_VIDEO, QUEUE_AUDIO, torch.tensor([7]), QUEUE_IDS,
                                   num_neighbours=50)
    assert pairs.positive[0].tolist() == [False] + [True] * 6  # every eligible slot agrees
    empty = sample_dependent_pairs(video, audio, torch.zeros(0, 3), torch.zeros(0, 3), torch.tensor([7]),
                                   torch.zeros(0, dtype=torch.long))
    assert empty.positive.shape == (1, 0)


def test_loss_with_queue_pairs_hand_value():
    video = E[:1]
    audio = E[:1].clone()
    ids = torch.tensor([7])
    pairs = sample_dependent_pairs(video, audio, QUEUE_VIDEO, QUEUE_AUDIO, ids, QUEUE_IDS,
                                   num_neighbours=2, num_negatives=1)
    tau = 0.5
    # v->a: positives a_0 (cos 1), queue audio slots 1 (cos 1) and 4 (cos 0.707); negative slot 5 (cos 0)
    positive = 2 * math.exp(1 / tau) + math.exp(D[0].item() / tau)
    v2a = -math.log(positive / (positive + math.exp(0.0)))
    # a->v: the same numbers with the video queue
    got = cross_modal_info_nce_with_queue(video, audio, QUEUE_VIDEO, QUEUE_AUDIO, pairs, tau)
    assert got.item() == pytest.approx(v2a, rel=1e-5)
