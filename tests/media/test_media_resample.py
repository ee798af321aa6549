"""The band-limited resampler against the signal it samples: output j is the input at j * orig / new."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avssl.media.timing import resample


@pytest.mark.parametrize("orig,new", [(44100, 16000), (48000, 16000), (22050, 16000), (8000, 16000), (16000, 11025)])
def test_resampled_tones_match_the_tones_at_the_new_times(orig, new):
    seconds = 0.5
    t_in = np.arange(round(seconds * orig)) / orig
    tone = lambda t: 0.5 * np.sin(2 * np.pi * 440 * t + 0.3) + 0.25 * np.cos(2 * np.pi * 3000 * t)  # noqa: E731
    out = resample(torch.from_numpy(tone(t_in).astype(np.float32)), orig, new).numpy()
    assert out.shape == (int(np.ceil(len(t_in) * new / orig)),) and out.dtype == np.float32
    inner = slice(new // 50, -new // 50)  # the filter sees zeros beyond the ends: skip 20 ms each side
    expected = tone(np.arange(len(out)) / new)
    np.testing.assert_allclose(out[inner], expected[inner], atol=5e-3)


def test_long_inputs_are_processed_in_chunks_with_the_same_result():
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(44100 * 30).astype(np.float32))
    whole = resample(x, 44100, 16000)
    # a window cut from the long result equals resampling that window alone (away from its edges)
    part = resample(x[441000:441000 + 44100], 44100, 16000)
    np.testing.assert_allclose(part[400:-400].numpy(), whole[160000 + 400:176000 - 400].numpy(), atol=1e-5)
