"""Cross-entropy for pretext heads against a hand computation."""

import math

import pytest
import torch

from avssl.losses.cross_entropy import pretext_cross_entropy


def test_hand_value_with_and_without_smoothing():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 1])
    log_z = [math.log(math.exp(2) + 1 + math.exp(-1)), math.log(2 * math.exp(0.5) + math.exp(3))]
    logp = [[x - log_z[i] for x in row] for i, row in enumerate(logits.tolist())]
    plain = -(logp[0][0] + logp[1][1]) / 2
    assert pretext_cross_entropy(logits, labels).item() == pytest.approx(plain, rel=1e-6)
    s = 0.3
    smooth = -sum((1 - s) * logp[i][labels[i]] + s / 3 * sum(logp[i]) for i in range(2)) / 2
    assert pretext_cross_entropy(logits, labels, label_smoothing=s).item() == pytest.approx(smooth, rel=1e-6)


def test_bad_labels_name_the_range():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        pretext_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integer"):
        pretext_cross_entropy(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        pretext_cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), label_smoothing=1.0)
