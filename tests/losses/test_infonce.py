"""InfoNCE losses against hand computations on tiny unit vectors."""

import math

import pytest
import torch

from avssl.losses.infonce import (
    cross_modal_info_nce, cross_modal_top1, info_nce, info_nce_from_similarity, info_nce_with_queue,
    intra_modal_info_nce, pair_mask, position_max_similarity,
)


def nll(positives, candidates):
    """-log(sum exp(positives) / sum exp(candidates)) for lists of logits."""
    return -math.log(sum(math.exp(x) for x in positives) / sum(math.exp(x) for x in candidates))


VIDEO = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
AUDIO = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]])
# cosines, row = video, column = audio
SIM = [[0.8, 0.0, 1.0], [0.6, 1.0, 0.0], [0.96, 0.8, 0.6]]
TAU = 0.5


def logits(row):
    return [s / TAU for s in row]


def test_cross_modal_symmetric_hand_value():
    cols = [[SIM[i][j] for i in range(3)] for j in range(3)]
    v2a = sum(nll([logits(SIM[i])[i]], logits(SIM[i])) for i in range(3)) / 3
    a2v = sum(nll([logits(cols[j])[j]], logits(cols[j])) for j in range(3)) / 3
    got = cross_modal_info_nce(VIDEO, AUDIO * 3.0, temperature=TAU)  # scale-free: normalised inside
    assert got.item() == pytest.approx((v2a + a2v) / 2, rel=1e-6)


def test_exclude_mask_removes_negatives_in_both_directions():
    exclude = torch.zeros(3, 3, dtype=torch.bool)
    exclude[0, 2] = True  # video 0 / audio 2 come from the same video: not a negative pair
    l = [logits(r) for r in SIM]
    cols = [[l[i][j] for i in range(3)] for j in range(3)]
    v2a = (nll([l[0][0]], [l[0][0], l[0][1]]) + nll([l[1][1]], l[1]) + nll([l[2][2]], l[2])) / 3
    a2v = (nll([cols[0][0]], cols[0]) + nll([cols[1][1]], cols[1])
           + nll([cols[2][2]], [cols[2][1], cols[2][2]])) / 3
    got = cross_modal_info_nce(VIDEO, AUDIO, TAU, exclude_mask=exclude)
    assert got.item() == pytest.approx((v2a + a2v) / 2, rel=1e-6)


def test_extra_positive_uses_multi_positive_form():
    extra = torch.zeros(3, 3, dtype=torch.bool)
    extra[2, 0] = True
    l = [logits(r) for r in SIM]
    cols = [[l[i][j] for i in range(3)] for j in range(3)]
    v2a = (nll([l[0][0]], l[0]) + nll([l[1][1]], l[1]) + nll([l[2][2], l[2][0]], l[2])) / 3
    a2v = (nll([cols[0][0], cols[0][2]], cols[0]) + nll([cols[1][1]], cols[1])
           + nll([cols[2][2]], cols[2])) / 3
    got = cross_modal_info_nce(VIDEO, AUDIO, TAU, extra_positive_mask=extra)
    assert got.item() == pytest.approx((v2a + a2v) / 2, rel=1e-6)


def test_intra_modal_nt_xent_hand_value():
    v1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v2 = torch.tensor([[0.8, 0.6], [0.6, 0.8]])
    z = v1.tolist() + v2.tolist()
    dot = [[sum(a * b for a, b in zip(z[i], z[j])) / TAU for j in range(4)] for i in range(4)]
    expected = sum(
        nll([dot[i][(i + 2) % 4]], [dot[i][j] for j in range(4) if j != i]) for i in range(4)
    ) / 4
    assert intra_modal_info_nce(v1, v2, TAU).item() == pytest.approx(expected, rel=1e-6)
    # Excluding the pair of samples 0 and 1 leaves only the positive: the loss is 0.
    exclude = torch.ones(2, 2, dtype=torch.bool)
    assert intra_modal_info_nce(v1, v2, TAU, exclude).item() == pytest.approx(0.0, abs=1e-7)


def test_queue_version_equals_concatenated_keys():
    queue = torch.tensor([[0.0, -1.0], [0.6, -0.8]])
    q_pos = torch.tensor([[False, True], [False, False], [False, False]])
    q_exc = torch.tensor([[False, False], [True, False], [False, False]])
    got = info_nce_with_queue(VIDEO, AUDIO, queue, TAU, queue_positive_mask=q_pos, queue_exclude_mask=q_exc)
    positive = torch.cat([torch.eye(3, dtype=torch.bool), q_pos], 1)
    exclude = torch.cat([torch.zeros(3, 3, dtype=torch.bool), q_exc], 1)
    expected = info_nce(VIDEO, torch.cat([AUDIO, queue]), TAU, positive, exclude)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    # hand value of row 1: its queue slot 0 is excluded
    row1 = [SIM[1][0] / TAU, SIM[1][1] / TAU, SIM[1][2] / TAU, (0.0 * 0.6 + 1.0 * -0.8) / TAU]
    per_row = info_nce_from_similarity(
        torch.nn.functional.normalize(VIDEO, dim=1) @ torch.nn.functional.normalize(
            torch.cat([AUDIO, queue]), dim=1).T, positive, TAU, exclude, reduction="none")
    assert per_row[1].item() == pytest.approx(nll([row1[1]], row1), rel=1e-6)
    # an empty queue is the plain batch loss
    empty = info_nce_with_queue(VIDEO, AUDIO, torch.zeros(0, 2), TAU)
    assert empty.item() == pytest.approx(info_nce(VIDEO, AUDIO, TAU).item(), rel=1e-6)


def test_pair_mask_and_errors():
    ids = torch.tensor([3, 5, 3])
    assert pair_mask(ids, torch.tensor([3, 4])).tolist() == [[True, False], [False, False], [True, False]]
    with pytest.raises(ValueError, match="temperature"):
        cross_modal_info_nce(VIDEO, AUDIO, temperature=0.0)
    with pytest.raises(ValueError, match="at least one positive"):
        info_nce_from_similarity(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.bool), 0.1)
    with pytest.raises(ValueError, match="exclude_mask"):
        cross_modal_info_nce(VIDEO, AUDIO, exclude_mask=torch.zeros(3, 3))


def test_gradient_pulls_positive_pair_together():
    video = VIDEO.clone().requires_grad_(True)
    loss = cross_modal_info_nce(video, AUDIO, TAU)
    loss.backward()
    stepped = (video - 0.1 * video.grad).detach()
    assert cross_modal_info_nce(stepped, AUDIO, TAU) < loss


def test_a_map_of_positions_meets_each_audio_at_its_best_position():
    # video i has two positions: a decoy and VIDEO[i]; each decoy is worse than VIDEO[i] for every audio
    decoy = torch.tensor([[-1.0, 0.0], [0.0, -1.0], [-0.6, -0.8]])
    positions = torch.stack([decoy, VIDEO * 2.0], dim=1)  # [3, 2, 2]: scale-free, normalised inside
    torch.testing.assert_close(position_max_similarity(positions, AUDIO), torch.tensor(SIM))
    got = cross_modal_info_nce(positions, AUDIO, temperature=TAU)
    torch.testing.assert_close(got, cross_modal_info_nce(VIDEO, AUDIO, temperature=TAU))
    # swap which position wins for video 2 against audio 0: max(cos) picks the decoy's 1.0
    positions[2, 0] = AUDIO[0]
    assert position_max_similarity(positions, AUDIO)[2].tolist() == pytest.approx([1.0, 0.8, 0.8])
    assert cross_modal_top1(positions, AUDIO).item() == pytest.approx(1 / 3)  # video 0 and 2 prefer another audio


def test_only_the_best_position_gets_a_gradient():
    decoy = torch.tensor([[-0.6, -0.8]]).expand(3, 2)
    positions = torch.stack([decoy, VIDEO], dim=1).requires_grad_(True)
    cross_modal_info_nce(positions, AUDIO, temperature=TAU).backward()
    # position 0 (cosines -0.96, -0.8, -0.6 with the audios) is never a video's best: no signal reaches it
    assert positions.grad[:, 0].abs().max() == 0 and positions.grad[:, 1].abs().max() > 0
    with pytest.raises(ValueError, match=r"\[B, P, D\]"):
        cross_modal_info_nce(positions[:, :, :1], AUDIO)
