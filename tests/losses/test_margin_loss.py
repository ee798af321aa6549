"""AVTS contrastive margin loss against a hand computation."""

import pytest
import torch

from avssl.losses.margin import AVTS_MARGIN, contrastive_margin_loss


def test_hand_values_for_positive_and_negative_pairs():
    video = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    audio = torch.tensor([[0.3, 0.4], [0.3, 0.4], [2.0, 0.0], [1.0, 1.0]])
    label = torch.tensor([True, False, False, True])
    # distances 0.5, 0.5, 2.0, 0.0
    expected = (0.5**2 + (0.99 - 0.5) ** 2 + 0.0 + 0.0) / 4
    assert AVTS_MARGIN == 0.99
    assert contrastive_margin_loss(video, audio, label).item() == pytest.approx(expected, rel=1e-6)
    assert contrastive_margin_loss(video, audio, label.float(), margin=3.0).item() == pytest.approx(
        (0.25 + 2.5**2 + 1.0**2) / 4, rel=1e-6)


def test_gradient_is_finite_for_identical_negative_pair():
    video = torch.zeros(1, 3, requires_grad=True)
    loss = contrastive_margin_loss(video, torch.zeros(1, 3), torch.tensor([False]))
    loss.backward()
    assert loss.item() == pytest.approx(0.99**2, abs=1e-5) and torch.isfinite(video.grad).all()


def test_training_separates_negatives_beyond_margin():
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(8, 4, generator=gen).mul_(0.01).requires_grad_(True)
    audio = torch.randn(8, 4, generator=gen) * 0.01
    label = torch.tensor([1, 0] * 4)
    opt = torch.optim.SGD([video], lr=0.2)
    first = contrastive_margin_loss(video, audio, label).item()
    for _ in range(100):
        opt.zero_grad()
        loss = contrastive_margin_loss(video, audio, label)
        loss.backward()
        opt.step()
    dist = (video - audio).norm(dim=1).detach()
    assert loss.item() < 0.01 * first
    assert (dist[label == 0] > 0.9).all() and (dist[label == 1] < 0.05).all()


def test_bad_shapes():
    with pytest.raises(ValueError, match="is_positive"):
        contrastive_margin_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="margin"):
        contrastive_margin_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), margin=0)
