"""temporal-av: configs, recipe labels against decoded frame numbers and audio times, training, queue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avssl.config.typed import ConfigError
from avssl.data.dataset import ClipDataset, FileTable, SampleKey, collate_samples
from avssl.data.probing import build_manifest, probe_paths
from avssl.data.synthetic.framecode import coded_frames, decode_frame_index
from avssl.data.views import order_classes
from avssl.media.writer import write_media
from avssl.methods.configs import load_config
from avssl.methods.registry import method_class

# training_step logs through Lightning, which warns when called outside a Trainer (as here)
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "avssl" / "configs"
TINY = CONFIGS / "temporal-av-tiny.yaml"
DURATION, FPS, RATE = 12.0, 10, 16000
RAMP_LOW, RAMP_HIGH = -0.9, 0.9


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tensors here are tiny: a second intra-op thread gains little and, when other tests run
    beside these on a 2-core machine, oversubscription made steps up to 15x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ramp_time(samples: np.ndarray) -> np.ndarray:
    """File time (s) of each sample of the ramp track written by `media` (file 0)."""
    return (samples - RAMP_LOW) / (RAMP_HIGH - RAMP_LOW) * DURATION


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> list[str]:
    """Four 12 s avi files (mjpeg + pcm: lossless audio) whose frames carry their index; file 0's
    audio is a linear ramp (each sample tells its file time), the others add a tone of their own."""
    folder = tmp_path_factory.mktemp("temporal_av")
    t = np.arange(int(DURATION * RATE)) / RATE
    ramp = RAMP_LOW + (RAMP_HIGH - RAMP_LOW) * t / DURATION
    paths = []
    for i in range(4):
        audio = ramp if i == 0 else 0.5 * ramp + 0.3 * np.sin(2 * np.pi * (300 + 250 * i) * t)
        frames = coded_frames(int(DURATION * FPS), 64, 64, first=300 * i)
        paths.append(write_media(folder / f"clip{i}.avi", frames, FPS, audio.astype(np.float32), RATE))
    return paths


def table_of(paths: list[str]) -> FileTable:
    return FileTable.from_manifest(build_manifest(paths, probe_paths(paths, workers=0, progress=False)))


def build(overrides: list[str] = ()):
    torch.manual_seed(0)
    config = load_config(TINY, list(overrides))
    return method_class("temporal-av")(config)


@pytest.fixture(scope="module")
def batch(media) -> dict:
    table = table_of(media)
    method = build(["data.batch_size=4"])
    dataset = ClipDataset(table, method.recipe(table), seed=0)
    return collate_samples([dataset[SampleKey(i, 0)] for i in range(4)])


def test_configs_load_and_name_a_bad_key():
    paper = load_config(CONFIGS / "temporal-av.yaml")
    tiny = load_config(TINY)
    assert paper.method.name == tiny.method.name == "temporal-av"
    assert paper.method.params.speeds == (1, 2, 4, 8)
    assert paper.model.video["name"] == "r2plus1d_18" and tiny.model.video["name"] == "r2plus1d_18-tiny"
    with pytest.raises(ConfigError, match="method.queue.size"):
        load_config(TINY, ["method.queue.sise=3"])
    with pytest.raises(ConfigError, match="method.speeds"):
        load_config(TINY, ["method.speeds=[2,1]"])


def test_method_builds_from_the_tiny_config():
    method = build()
    p = method.params
    assert method.video_speed_head.num_classes == len(p.speeds) == 3
    assert method.video_order_head.num_classes == 6  # 3 sub-clips
    assert method.av_order_head.num_classes == 3
    state = method.state_dict()
    assert state["queue.keys_video"].shape == (p.queue.size, method.config.model.embed_dim)
    assert "queue.pointer" in state and "queue.video_id" in state


def frame_numbers(clip: torch.Tensor) -> list[int]:
    """Decoded frame indices of a uint8 clip [3, T, H, W]."""
    return [decode_frame_index(frame.permute(1, 2, 0).numpy()) for frame in clip.unbind(1)]


def test_recipe_labels_match_the_decoded_frames_and_audio(media):
    # whole-frame crops, no flip: the frame code stays readable
    method = build(["data.video_augment.size=64", "data.video_augment.crop_scale=[1.0,1.0]",
                    "data.video_augment.crop_ratio=[1.0,1.0]", "data.video_augment.flip_p=0.0"])
    table = table_of(media[:1])
    dataset = ClipDataset(table, method.recipe(table), seed=0)
    p, clip = method.params, method.config.data.clip
    frames, n = clip.frames, p.num_subclips
    sub = frames // n
    seen = {name: set() for name in ("video_speed", "video_direction", "audio_speed", "audio_direction",
                                     "video_order", "av_order")}
    for epoch in range(8):
        s = dataset[SampleKey(0, epoch)]
        assert s["video"].shape == s["video_b"].shape == (3, frames, 64, 64)
        assert s["video_b_parts"].shape == (n, 3, sub, 64, 64)
        forward = {}
        for j, key in enumerate(("video", "video_b")):
            speed = p.speeds[int(s["video_speed"][j])]
            first = round(float(s["video_start"][j]) * FPS)
            forward[key] = [first + speed * k for k in range(frames)]
            expected = forward[key][::-1] if int(s["video_direction"][j]) == 1 else forward[key]
            assert frame_numbers(s[key]) == expected
        perm = order_classes(n)[int(s["video_order"])]
        for j in range(n):
            assert frame_numbers(s["video_b_parts"][j]) == forward["video_b"][perm[j] * sub:(perm[j] + 1) * sub]
        # audio: sample k of a forward clip at speed s lies at file time audio_start + k * s / rate
        speed = p.speeds[int(s["audio_speed"])]
        audio = s["audio"].numpy()
        assert audio.shape == (round(clip.audio_window * RATE),)
        if int(s["audio_direction"]) == 1:
            audio = audio[::-1]
        start = float(s["audio_start"])
        want = start + np.arange(audio.size) * speed / RATE
        np.testing.assert_allclose(ramp_time(audio)[32:-32], want[32:-32], atol=1e-3)
        offset = start - float(s["video_start"][0])
        label = int(s["av_order"])
        if label == 1:
            assert abs(offset) < 1e-9
        else:
            assert p.av_order_min_offset - 1e-9 <= (offset if label == 2 else -offset) <= p.av_order_max_offset + 1e-9
        for name in seen:
            seen[name].add(int(s[name].view(-1)[0]))
    assert seen["av_order"] == {0, 1, 2}
    assert seen["video_direction"] == seen["audio_direction"] == {0, 1}
    assert len(seen["video_speed"]) >= 2 and len(seen["audio_speed"]) >= 2 and len(seen["video_order"]) >= 2


def test_too_short_file_is_named(tmp_path):
    path = write_media(tmp_path / "short.avi", coded_frames(15, 64, 64), FPS,
                       np.zeros(int(1.5 * RATE), dtype=np.float32), RATE)
    table = table_of([path])
    method = build()
    with pytest.raises(ValueError, match="short.avi"):
        ClipDataset(table, method.recipe(table), seed=0)[SampleKey(0, 0)]


def test_queue_fills_and_supplies_extra_positives_and_negatives(batch):
    method = build()
    method.train()
    assert len(method.queue) == 0
    first = method.losses(batch)
    assert float(first["queue_positives"]) == float(first["queue_negatives"]) == 0.0
    for _ in range(2):
        method.training_step(batch, 0)
    assert len(method.queue) == 8
    assert method.queue.video_id[:8].tolist() == batch["video_id"].tolist() * 2
    with torch.no_grad():
        result = method.losses(batch)
    # per sample: 6 entries of other files are eligible; some become positives, some negatives
    assert float(result["queue_positives"]) > 0 and float(result["queue_negatives"]) > 0
    assert float(result["queue_positives"] + result["queue_negatives"]) <= 6
    # the queue changes the contrastive terms: compare with the batch-only loss
    method.params.queue.start_step = 10**9
    with torch.no_grad():
        batch_only = method.losses(batch)
    assert not torch.isclose(result["video_audio"], batch_only["video_audio"])
    assert not torch.isclose(result["video_video"], batch_only["video_video"])
    # the queue travels with the checkpoint
    fresh = build()
    fresh.load_state_dict(method.state_dict())
    assert len(fresh.queue) == 8
    torch.testing.assert_close(fresh.queue.keys("audio"), method.queue.keys("audio"))


@pytest.mark.slow
def test_thirty_steps_lower_the_loss(batch):
    method = build(["trainer.max_steps=30"])
    method.train()
    optimizer = method.configure_optimizers()["optimizer"]
    losses = []
    for _ in range(30):
        loss = method.training_step(batch, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    assert len(method.queue) == 4 * 30 or len(method.queue) == method.params.queue.size
