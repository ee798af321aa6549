"""Heads: projection MLP structure, linear classifier, pretext heads on one clip or a tuple of clips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avssl.models import (
    ClipPretextHead,
    LagPretextHead,
    LinearClassifier,
    ProjectionMLP,
    TuplePretextHead,
    order_num_classes,
)


def test_projection_mlp_layers_and_batch_norm() -> None:
    mlp = ProjectionMLP(512, 1024, 128, num_layers=3, batch_norm=True)
    kinds = [type(m) for m in mlp.net]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert mlp(torch.randn(4, 512)).shape == (4, 128)
    plain = ProjectionMLP(512, 1024, 128, num_layers=2, batch_norm=False)
    assert [type(m) for m in plain.net] == [nn.Linear, nn.ReLU, nn.Linear]
    # 512*1024 + 1024 + 1024*128 + 128
    assert sum(p.numel() for p in plain.parameters()) == 656_512
    single = ProjectionMLP(512, 1024, 128, num_layers=1)
    assert [type(m) for m in single.net] == [nn.Linear]


def test_projection_mlp_refuses_bad_sizes_and_inputs() -> None:
    with pytest.raises(ValueError, match="num_layers=0"):
        ProjectionMLP(8, 8, 8, num_layers=0)
    with pytest.raises(ValueError, match=r"\[B, 8\]"):
        ProjectionMLP(8, 8, 4)(torch.randn(2, 9))


def test_linear_classifier_is_affine() -> None:
    head = LinearClassifier(3, 2)
    x = torch.randn(5, 3)
    torch.testing.assert_close(head(x), x @ head.fc.weight.T + head.fc.bias)


def test_clip_pretext_head_learns_a_separable_speed_label() -> None:
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (64,))
    features = torch.nn.functional.one_hot(labels, 4).float() @ torch.randn(4, 16) + 0.1 * torch.randn(64, 16)
    head = ClipPretextHead(16, num_classes=4, hidden_dim=32)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = nn.functional.cross_entropy(head(features), labels)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first
    assert (head(features).argmax(1) == labels).float().mean() > 0.95


def test_tuple_pretext_head_on_mixed_modalities_and_order_classes() -> None:
    head = TuplePretextHead([32, 16], num_classes=2, hidden_dim=0)
    video, audio = torch.randn(3, 32), torch.randn(3, 16)
    assert head([video, audio]).shape == (3, 2)
    # linear head on the concatenation: the order of the tuple matters
    torch.testing.assert_close(head([video, audio]), head.net[0](torch.cat([video, audio], 1)))
    with pytest.raises(ValueError, match="input 1"):
        head([video, video])
    with pytest.raises(ValueError, match="expects 2 feature tensors"):
        head([video])
    assert order_num_classes(3) == 6 and order_num_classes(4) == 24
    with pytest.raises(ValueError):
        order_num_classes(1)


def test_lag_pretext_head_classifies_the_cosine_matrix_of_the_time_bins() -> None:
    head = LagPretextHead(8, 6, video_bins=4, audio_bins=3, num_classes=3, width=5, hidden_dim=0)
    video, audio = torch.randn(2, 4, 8), torch.randn(2, 3, 6)
    v = torch.nn.functional.normalize(head.video_proj(video), dim=-1)
    a = torch.nn.functional.normalize(head.audio_proj(audio), dim=-1)
    by_hand = torch.stack([v[i] @ a[i].T for i in range(2)])  # [2, 4, 3]
    torch.testing.assert_close(head.similarities(video, audio), by_hand)
    torch.testing.assert_close(head(video, audio), head.net[0](by_hand.flatten(1)))
    with pytest.raises(ValueError, match=r"audio time bins \[B, 3, 6\]"):
        head(video, torch.randn(2, 4, 6))


def shifted_event_lines(n: int, bins: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Video and audio time lines of one event each: the audio's bin is the video's shifted by -1, 0 or +1
    (label 0, 1, 2), each bin a random feature vector, so the pooled means do not depend on the shift."""
    labels = torch.randint(0, 3, (n,), generator=generator)
    event_bin = torch.randint(1, bins - 1, (n,), generator=generator)
    rows = torch.arange(n)
    video = 0.1 * torch.randn(n, bins, 4, generator=generator)
    audio = 0.1 * torch.randn(n, bins, 4, generator=generator)
    video[rows, event_bin, 0] += 1.0
    audio[rows, event_bin + labels - 1, 0] += 1.0
    return video, audio, labels


def test_lag_head_tells_a_shift_that_a_head_on_pooled_features_cannot() -> None:
    """The same events, the audio one bin early, in step or late: pooled over time the two are the same
    whatever the shift (the tuple head stays near chance), the lag head reads the shift off the matrix."""
    gen = torch.Generator().manual_seed(0)
    video, audio, labels = shifted_event_lines(512, 6, gen)
    test_video, test_audio, test_labels = shifted_event_lines(512, 6, gen)
    torch.manual_seed(0)
    lag = LagPretextHead(4, 4, 6, 6, num_classes=3, width=4, hidden_dim=32)
    pooled = TuplePretextHead([4, 4], num_classes=3, hidden_dim=32)
    accuracy = {}
    for name, head, inputs in (("lag", lag, lambda v, a: (v, a)),
                               ("pooled", pooled, lambda v, a: ([v.mean(1), a.mean(1)],))):
        optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
        for _ in range(200):
            loss = nn.functional.cross_entropy(head(*inputs(video, audio)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():
            accuracy[name] = (head(*inputs(test_video, test_audio)).argmax(1) == test_labels).float().mean().item()
    assert accuracy["lag"] > 0.9 and accuracy["pooled"] < 0.45, accuracy
