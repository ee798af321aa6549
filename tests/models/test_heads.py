"""Heads: projection MLP structure, linear classifier, pretext heads on one clip or a tuple of clips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avssl.models import ClipPretextHead, LinearClassifier, ProjectionMLP, TuplePretextHead, order_num_classes


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
