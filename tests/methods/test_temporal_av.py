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
from avssl.data.views import in_source_order, order_classes
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
    assert method.heads["video_speed"].num_classes == method.heads["audio_speed"].num_classes == len(p.speeds) == 3
    assert method.heads["video_order"].num_classes == method.heads["audio_order"].num_classes == 6  # 3 sub-clips
    assert method.heads["av_order"].num_classes == 3
    state = method.state_dict()
    assert state["queue.keys_video"].shape == (p.queue.size, method.config.model.embed_dim)
    assert "queue.pointer" in state and "queue.video_id" in state
    # the momentum copies start as the online encoders and never take a gradient
    assert torch.equal(state["key_video.module.0.stem.0.weight"], state["video_encoder.stem.0.weight"])
    assert not any(param.requires_grad for param in method.key_audio.parameters())
    with pytest.raises(ConfigError, match="data.clip.frames"):
        build(["method.order_gap_frames=3"])  # 3 sub-clips of 1 frame need 1 + 3 + 1 + 3 + 1 = 9 frames


def frame_numbers(clip: torch.Tensor) -> list[int]:
    """Decoded frame indices of a uint8 clip [3, T, H, W]."""
    return [decode_frame_index(frame.permute(1, 2, 0).numpy()) for frame in clip.unbind(1)]


def check_clip_a(s: dict, p, clip) -> None:
    """Clip A: frames every speed-th of the grid from video_start[0], its audio the same speed and
    direction, and av_order where that audio lies on the played time line."""
    speed, reversed_ = p.speeds[int(s["speed"])], int(s["direction"]) == 1
    first = round(float(s["video_start"][0]) * FPS)
    forward = [first + speed * k for k in range(clip.frames)]
    assert frame_numbers(s["video"]) == (forward[::-1] if reversed_ else forward)
    audio = s["audio"].numpy()
    assert audio.shape == (round(clip.audio_window * RATE),)
    if reversed_:
        audio = audio[::-1]
    start = float(s["audio_start"])
    want = start + np.arange(audio.size) * speed / RATE  # sample k of the forward clip
    np.testing.assert_allclose(ramp_time(audio)[32:-32], want[32:-32], atol=1e-3)
    offset = start - float(s["video_start"][0])  # > 0: the audio window is later in the file
    label = int(s["av_order"])
    if label == 1:
        assert abs(offset) < 1e-9
        return
    later_when_played = (offset > 0) != reversed_  # a reversed clip plays file time backwards
    assert label == (2 if later_when_played else 0)
    assert p.av_order_min_offset - 1e-9 <= abs(offset) <= p.av_order_max_offset + 1e-9


def check_clip_b(s: dict, p, clip) -> None:
    """Clip B: plain frames and the audio of exactly their window; its order pieces with gaps."""
    first = round(float(s["video_start"][1]) * FPS)
    plain = [first + k for k in range(clip.frames)]
    assert frame_numbers(s["video_b"]) == plain
    sync = s["audio_sync"].numpy()
    np.testing.assert_allclose(ramp_time(sync), float(s["video_start"][1]) + np.arange(sync.size) / RATE, atol=1e-3)
    n, gap = p.num_subclips, p.order_gap_frames
    length = (clip.frames - (n - 1) * gap) // n
    perm = order_classes(n)[int(s["video_order"])]
    for j in range(n):
        first_frame = perm[j] * (length + gap)
        assert frame_numbers(s["video_parts"][j]) == plain[first_frame:first_frame + length]
    audio_gap = round(gap * sync.size / clip.frames)
    piece = (sync.size - (n - 1) * audio_gap) // n
    audio_perm = order_classes(n)[int(s["audio_order"])]
    for j in range(n):
        first_sample = audio_perm[j] * (piece + audio_gap)
        assert np.array_equal(s["audio_parts"][j].numpy(), sync[first_sample:first_sample + piece])


def check_extra_audio_order(s: dict, p, clip) -> None:
    """The extra audio order windows: each piece is the audio of its window at its permuted place."""
    n, k = p.num_subclips, p.audio_order_windows - 1
    assert s["audio_parts_extra"].shape[:2] == (k, n) and s["audio_order_extra"].shape == (k,)
    window = round(clip.audio_window * RATE)
    gap = round(p.order_gap_frames * window / clip.frames)
    piece = (window - (n - 1) * gap) // n
    for parts, label, start in zip(s["audio_parts_extra"], s["audio_order_extra"], s["audio_order_starts"]):
        perm = order_classes(n)[int(label)]
        for j in range(n):
            first = float(start) + perm[j] * (piece + gap) / RATE
            np.testing.assert_allclose(ramp_time(parts[j].numpy()), first + np.arange(piece) / RATE, atol=1e-3)


def test_recipe_labels_match_the_decoded_frames_and_audio(media):
    # whole-frame crops, no flip: the frame code stays readable
    method = build(["data.video_augment.size=64", "data.video_augment.crop_scale=[1.0,1.0]",
                    "data.video_augment.crop_ratio=[1.0,1.0]", "data.video_augment.flip_p=0.0"])
    table = table_of(media[:1])
    dataset = ClipDataset(table, method.recipe(table), seed=0)
    p, clip = method.params, method.config.data.clip
    seen = {name: set() for name in ("speed", "direction", "video_order", "audio_order", "av_order")}
    for epoch in range(12):
        s = dataset[SampleKey(0, epoch)]
        assert s["video"].shape == s["video_b"].shape == s["video_c"].shape == (3, clip.frames, 64, 64)
        assert s["video_parts"].shape == (p.num_subclips, 3, 2, 64, 64)
        check_clip_a(s, p, clip)
        check_clip_b(s, p, clip)
        check_extra_audio_order(s, p, clip)
        first_c = round(float(s["video_start"][2]) * FPS)  # clip C: another plain window
        assert frame_numbers(s["video_c"]) == [first_c + k for k in range(clip.frames)]
        for name in seen:
            seen[name].add(int(s[name]))
    assert seen["av_order"] == {0, 1, 2} and seen["direction"] == {0, 1}
    assert len(seen["speed"]) >= 2 and len(seen["video_order"]) >= 2 and len(seen["audio_order"]) >= 2


def test_too_short_file_is_named(tmp_path):
    path = write_media(tmp_path / "short.avi", coded_frames(15, 64, 64), FPS,
                       np.zeros(int(1.5 * RATE), dtype=np.float32), RATE)
    table = table_of([path])
    method = build()
    with pytest.raises(ValueError, match="short.avi"):
        ClipDataset(table, method.recipe(table), seed=0)[SampleKey(0, 0)]


def test_queue_fills_with_momentum_keys_and_supplies_extra_positives_and_negatives(batch):
    method = build()
    method.train()
    assert len(method.queue) == 0
    first = method.losses(batch)
    assert float(first["queue_positives"]) == float(first["queue_negatives"]) == 0.0
    online_before = method.video_encoder.stem[0].weight.detach().clone()
    key_before = method.key_video.module[0].stem[0].weight.detach().clone()
    for _ in range(2):
        loss = method.training_step(batch, 0)
        loss.backward()
        with torch.no_grad():  # a stand-in optimiser step, so the key copy has something to follow
            for param in method.parameters():
                if param.grad is not None:
                    param -= 0.1 * param.grad
                    param.grad = None
        method.on_train_batch_end(None, batch, 0)
    assert len(method.queue) == 8
    assert method.queue.video_ids().tolist() == batch["video_id"].tolist() * 2
    key_after = method.key_video.module[0].stem[0].weight.detach()
    online_after = method.video_encoder.stem[0].weight.detach()
    assert not torch.equal(online_after, online_before)
    # EMA: the key copy moved towards the online weights, by far less than they moved
    assert 0 < float((key_after - key_before).norm()) < 0.1 * float((online_after - online_before).norm())
    with torch.no_grad():
        result = method.losses(batch)
    # per sample: 6 entries of other files are eligible; the 3 that agree best become positives
    assert float(result["queue_positives"]) == 3.0
    assert 0 <= float(result["queue_negatives"]) <= 3.0
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


def test_contrast_pairs_the_plain_clips_and_never_sees_the_transformed_one(batch):
    """video_video pairs clips B and C: a change to clip A (sped up, reversed) leaves both contrastive
    terms as they were, and a change to clip C moves video_video only."""
    method = build(["method.queue.start_step=1000000"])
    method.eval()
    with torch.no_grad():
        base = method.losses(batch)
        other_a = method.losses({**batch, "video": batch["video"].flip(2)})
        other_c = method.losses({**batch, "video_c": batch["video_c"].flip(2)})
    for name in ("video_video", "video_audio"):
        torch.testing.assert_close(other_a[name], base[name])
    assert not torch.isclose(other_a["video_speed"], base["video_speed"])
    assert not torch.isclose(other_c["video_video"], base["video_video"])
    torch.testing.assert_close(other_c["video_audio"], base["video_audio"])


def test_few_queue_positives_are_reported_once(batch, caplog):
    method = build(["method.queue.num_neighbours=0", "data.batch_size=4"])
    method.train()
    with caplog.at_level("WARNING", logger="avssl.methods.temporal_av"):
        for _ in range(5):
            method.training_step(batch, 0)
    assert caplog.text.count("extra positives per sample") == 1


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


def test_order_pieces_go_back_to_the_order_they_had_in_the_clip(media):
    """in_source_order undoes order_view's shuffle: the first frame of each of clip B's pieces, put
    back in source order, rises through the clip (2 frames and a gap of 1 apart), and so does the file
    time of the audio pieces' first samples (file 0's ramp)."""
    method = build(["data.video_augment.size=64", "data.video_augment.crop_scale=[1.0,1.0]",
                    "data.video_augment.crop_ratio=[1.0,1.0]", "data.video_augment.flip_p=0.0"])
    table = table_of(media[:1])
    dataset = ClipDataset(table, method.recipe(table), seed=0)
    samples = collate_samples([dataset[SampleKey(0, epoch)] for epoch in range(8)])
    n = method.params.num_subclips
    first_frames = torch.tensor([[frame_numbers(part)[0] for part in sample] for sample in samples["video_parts"]],
                                dtype=torch.float64)
    video = in_source_order(first_frames[:, :, None], samples["video_order"], n)[:, :, 0]
    assert (video.diff(dim=1) == 3).all()
    assert not torch.equal(video, first_frames)  # some of the 8 were shuffled
    audio_time = torch.from_numpy(ramp_time(samples["audio_parts"][:, :, 0].double().numpy()))
    audio = in_source_order(audio_time[:, :, None], samples["audio_order"], n)[:, :, 0]
    np.testing.assert_allclose(audio.diff(dim=1).numpy(), 0.3, atol=1e-3)  # 0.2 s pieces, 0.1 s gaps


def test_inter_modal_order_on_pieces_and_the_piece_sync_term(batch):
    """av_order_pieces: the head classifies the similarities of clip A's pieces encoded one by one, and
    piece_sync is the symmetric InfoNCE of clip B's video and audio pieces of the same instant."""
    method = build(["method.av_order_pieces=4"])
    method.eval()
    head = method.heads["av_order"]
    assert (head.video_bins, head.audio_bins) == (4, 4)
    with torch.no_grad():
        out = method.encode(batch)
        b = batch["video"].shape[0]
        clips = method.video_input(batch["video"], train=False)  # [B, 3, 8, S, S]: 4 pieces of 2 frames
        video = torch.stack([method.video_encoder(clips[:, :, 2 * k:2 * k + 2]) for k in range(4)], dim=1)
        quarter = batch["audio"].shape[1] // 4
        audio = torch.stack([method.audio_encoder(method.audio_input(batch["audio"][:, k * quarter:(k + 1) * quarter],
                                                                     train=False)) for k in range(4)], dim=1)
        torch.testing.assert_close(out["video_a_pieces"], video)
        torch.testing.assert_close(out["audio_a_pieces"], audio)
        torch.testing.assert_close(method.pretext_logits(out)["av_order"], head(video, audio))
        n, tau = method.params.num_subclips, method.params.temperature
        v = in_source_order(out["video_parts"], batch["video_order"], n)
        a = in_source_order(out["audio_parts"], batch["audio_order"], n)
        v = torch.nn.functional.normalize(head.video_proj(v), dim=2).reshape(b * n, -1)
        a = torch.nn.functional.normalize(head.audio_proj(a), dim=2).reshape(b * n, -1)
        by_hand = 0.0
        for i in range(b * n):  # row i: sample i // n, piece i % n; its positive is audio row i
            by_hand -= torch.log_softmax(v[i] @ a.T / tau, 0)[i] + torch.log_softmax(a[i] @ v.T / tau, 0)[i]
        torch.testing.assert_close(method.piece_sync_loss(out, batch), by_hand / (2 * b * n))
    assert "piece_sync" not in build(["method.av_order_pieces=0"]).losses(batch)  # pooled: no pieces, no term


def test_piece_sync_within_clip_scores_each_clip_among_its_own_pieces(batch, monkeypatch):
    method = build()
    b, n = len(batch["video"]), method.params.num_subclips
    rows = torch.arange(b * n)
    same_instant = torch.zeros(b * n, b * n)
    same_instant[rows, rows] = 1.0
    same_instant[rows, (rows + n) % (b * n)] = 2.0  # another clip's piece agrees better: not this clip's
    monkeypatch.setattr(method, "piece_sync_logits", lambda out, batch: same_instant)
    assert float(method.piece_sync_within_clip({}, batch)) == 1.0
    shifted = torch.zeros(b * n, b * n)
    shifted[rows, (rows // n) * n + (rows + 1) % n] = 1.0  # the clip's next piece wins every time
    monkeypatch.setattr(method, "piece_sync_logits", lambda out, batch: shifted)
    assert float(method.piece_sync_within_clip({}, batch)) == 0.0
    assert method.chance_levels(method.config)["train/acc_piece_sync_within_clip"] == 1 / n


def test_paper_scale_inter_modal_head_reads_four_pieces():
    config = load_config(CONFIGS / "temporal-av.yaml")
    method = method_class("temporal-av")(config)
    head = method.heads["av_order"]
    assert (head.video_bins, head.audio_bins, head.video_proj.out_features) == (4, 4, 128)
    # two 512 -> 128 projections, then 16 similarities -> 512 (BatchNorm) -> 3
    projections = 2 * (512 * 128 + 128)
    classifier = 16 * 512 + 512 + 2 * 512 + 512 * 3 + 3
    assert sum(p.numel() for p in head.parameters()) == projections + classifier


def test_inter_modal_pieces_are_refused_by_name_when_they_cannot_work():
    with pytest.raises(ConfigError, match="method.av_order_pieces"):
        build(["method.av_order_pieces=1"])
    with pytest.raises(ConfigError, match="method.av_order_pieces"):
        build(["method.av_order_pieces=3", "method.merge_reverse_order=true"])
    with pytest.raises(ConfigError, match=r"method.av_order_pieces.*\(9\).*data.clip.frames \(8\)"):
        build(["method.av_order_pieces=9"])
    with pytest.raises(ConfigError, match="method.order_all_permutations"):
        build(["method.av_order_pieces=0", "method.merge_reverse_order=true"])


def test_the_pieces_of_one_clip_share_its_augmentation():
    """Order pieces are prepared as one clip: identical pieces of a sample stay identical through
    colour jitter and gain (one draw per sample), where preparing each piece on its own (as before)
    gives each its own draw; SpecAugment's masks are one draw laid over the sample's pieces."""
    method = build(["data.video_augment.jitter_p=1.0", "data.audio_augment.gain_db=[-20.0,20.0]",
                    "data.audio_augment.num_time_masks=0", "data.audio_augment.num_freq_masks=0"])
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 1, 3, 2, 16, 16), generator=gen, dtype=torch.uint8).expand(2, 3, 3, 2, 16, 16)
    video = method.video_pieces_input(frames.contiguous(), train=True).view(2, 3, 3, 2, 16, 16)
    assert torch.equal(video[:, 0], video[:, 1]) and torch.equal(video[:, 0], video[:, 2])
    assert not torch.equal(video[0, 0], video[1, 0])  # two samples, two draws
    one_by_one = method.video_input(frames.reshape(6, 3, 2, 16, 16), train=True).view(2, 3, 3, 2, 16, 16)
    assert not torch.equal(one_by_one[:, 0], one_by_one[:, 1])
    waves = (0.1 * torch.randn(2, 1, 3200, generator=gen)).expand(2, 3, 3200)
    audio = method.audio_pieces_input(waves.contiguous(), train=True)
    assert audio.shape[:2] == (6, 1)
    audio = audio.view(2, 3, *audio.shape[1:])
    torch.testing.assert_close(audio[:, 0], audio[:, 1])
    torch.testing.assert_close(audio[:, 0], audio[:, 2])
    alone = method.audio_input(waves.reshape(6, 3200), train=True).view(2, 3, *audio.shape[2:])
    assert (alone[:, 0] - alone[:, 1]).abs().max() > 1.0  # dB: each piece its own gain
    masked = build(["data.audio_augment.num_time_masks=1", "data.audio_augment.max_time_width=20",
                    "data.audio_augment.num_freq_masks=0"]).audio_pieces_input(waves.contiguous(), train=True)
    plain = build(["data.audio_augment.num_time_masks=0", "data.audio_augment.num_freq_masks=0"]
                  ).audio_pieces_input(waves.contiguous(), train=True)
    changed = (masked != plain).any(dim=(1, 2)).view(2, 3, -1).sum(dim=(1, 2))  # masked frames per sample
    assert changed.sum() > 0 and (changed <= 20).all()  # one band of at most 20 frames over 3 pieces side by side


def test_every_order_shows_the_head_each_permutation_of_the_pieces(batch):
    """order_all_permutations: the order heads see all n! orders of each sample's encoded pieces, labelled
    by the permutation; the row of the order the recipe drew is exactly what the head saw before."""
    method = build(["method.order_all_permutations=true"])
    method.eval()
    classes = order_classes(method.params.num_subclips)
    with torch.no_grad():
        out = method.encode(batch)
        drawn = method.pretext_logits(out)
        for name, parts in (("video_order", "video_parts"), ("audio_order", "audio_parts")):
            logits, labels = method.every_order(name, out[parts], batch[name])
            b = len(batch[name])
            assert logits.shape == (b * len(classes), len(classes))
            assert labels.tolist() == list(range(len(classes))) * b
            rows = logits.view(b, len(classes), -1)
            torch.testing.assert_close(rows[torch.arange(b), batch[name]], drawn[name])
            source = in_source_order(out[parts], batch[name], len(classes[0]))
            k = 4  # any permutation: its row is the head on the pieces in that order
            torch.testing.assert_close(rows[:, k], method.heads[name]([source[:, j] for j in classes[k]]))
        result = method.losses(batch)
        parts, order = method.order_examples("audio_order", out, batch)  # clip B's window and 3 more per sample
        assert len(parts) == len(order) == method.params.audio_order_windows * len(batch["audio_order"]) == 16
        logits, labels = method.every_order("audio_order", parts, order)
    torch.testing.assert_close(result["audio_order"], torch.nn.functional.cross_entropy(logits, labels))
    torch.testing.assert_close(result["acc_audio_order"], (logits.argmax(1) == labels).float().mean())
