"""CGRA: the co-correlation matrix against a hand computation, the loss's fixed points, masking, training."""

from __future__ import annotations

import pytest
import torch

from avssl.models import CGRA, cgra_loss, co_correlation


def test_co_correlation_is_pearson_correlation() -> None:
    torch.manual_seed(0)
    video, audio = torch.randn(50, 3), torch.randn(50, 3)
    c = co_correlation(video, audio)
    for i in range(3):
        for j in range(3):
            expected = torch.corrcoef(torch.stack([video[:, i], audio[:, j]]))[0, 1]
            assert abs(c[i, j].item() - expected.item()) < 1e-4


def test_loss_by_hand_on_a_small_example() -> None:
    # two samples: after standardising, every column is (+1, -1) or (-1, +1)
    video = torch.tensor([[1.0, 5.0], [3.0, 1.0]])  # standardised: [[-1, 1], [1, -1]]
    audio = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # standardised: [[-1, -1], [1, 1]]
    c = co_correlation(video, audio)
    # up to the variance epsilon of the standardisation
    torch.testing.assert_close(c, torch.tensor([[1.0, 1.0], [-1.0, -1.0]]), atol=1e-4, rtol=0)
    # diagonal (~1, ~-1): (1-1)^2 + (1+1)^2 = 4; off-diagonal 1^2 + 1^2 = 2 -> (4 + 0.5*2) / 2
    assert abs(cgra_loss(video, audio, off_diagonal_weight=0.5).item() - 2.5) < 1e-3


def test_loss_is_zero_for_identical_decorrelated_features_and_large_for_collapse() -> None:
    torch.manual_seed(0)
    centred = torch.randn(64, 8)
    centred = centred - centred.mean(0)
    # orthonormal columns spanning centred vectors are centred and uncorrelated: C = I
    basis = torch.linalg.qr(centred)[0]
    assert cgra_loss(basis, basis.clone()).item() < 1e-3
    collapsed = basis[:, :1].repeat(1, 8)  # every dimension the same: off-diagonal all 1
    assert cgra_loss(collapsed, collapsed, off_diagonal_weight=1.0).item() > 6.9


def test_clips_without_audio_do_not_enter_the_loss() -> None:
    torch.manual_seed(0)
    module = CGRA(video_dim=6, audio_dim=4, dim=5, hidden_dim=8).eval()
    video, audio = torch.randn(6, 6), torch.randn(6, 4)
    present = torch.tensor([True, True, False, True, True, False])
    before = module(video, audio, present)
    changed = audio.clone()
    changed[[2, 5]] = 1e3
    assert torch.equal(before, module(video, changed, present))
    torch.testing.assert_close(before, module(video[present], audio[present]))


def test_too_few_clips_with_audio_give_a_zero_loss_that_backpropagates() -> None:
    module = CGRA(6, 4, dim=5, hidden_dim=8)
    loss = module(torch.randn(3, 6), torch.randn(3, 4), torch.tensor([False, True, False]))
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is not None for p in module.parameters())


def train_cgra(related: bool, steps: int = 60) -> tuple[float, float, CGRA, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    latent = torch.randn(128, 4)
    video = latent @ torch.randn(4, 12) + 0.05 * torch.randn(128, 12)
    audio_latent = latent if related else torch.randn(128, 4)
    audio = audio_latent @ torch.randn(4, 10) + 0.05 * torch.randn(128, 10)
    module = CGRA(12, 10, dim=4, hidden_dim=32)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = module(video, audio)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], losses[-1], module.eval(), video, audio


@pytest.fixture
def one_thread():
    # tiny matrices: with several threads, thread hand-offs dominate and a busy machine makes it 50x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_training_aligns_related_modalities_far_better_than_unrelated_ones() -> None:
    first, last, module, video, audio = train_cgra(related=True)
    assert last < 0.1 * first
    with torch.no_grad():
        c = co_correlation(module.video_proj(video), module.audio_proj(audio))
    assert torch.diagonal(c).min() > 0.9
    # without a shared cause the projectors can only overfit chance correlations
    _, last_unrelated, _, _, _ = train_cgra(related=False)
    assert last < 0.2 * last_unrelated


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="same shape"):
        co_correlation(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2 samples"):
        co_correlation(torch.randn(1, 3), torch.randn(1, 3))
