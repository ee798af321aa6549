"""AVCL: configs, SelfCL pretraining lowers its loss, fine-tuning learns classes, missing audio is masked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avssl.config.typed import ConfigError
from avssl.data.dataset import ClipDataset, FileTable, SampleKey, collate_samples
from avssl.data.probing import build_manifest, probe_paths
from avssl.data.recipes.finetune import LabelledTable
from avssl.media.writer import write_media
from avssl.methods.avcl import AVCL, AVCLParams
from avssl.methods.avcl_finetune import AVCLFinetune
from avssl.methods.configs import load_config
from avssl.methods.registry import method_class
from avssl.models.state_dict import CheckpointMismatchError

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "avssl" / "configs"
FPS, SECONDS, SR, SIZE = 8, 2.0, 16000, 48
TONES = (440.0, 1300.0, 3500.0)
COLOURS = ((220, 40, 40), (40, 200, 60), (50, 60, 230))


def tiny_config(*overrides: str):
    return load_config(CONFIGS / "avcl-tiny.yaml", ["data.num_workers=0", *overrides])


def write_clip(path: Path, colour: tuple[int, int, int], tone: float | None, seed: int) -> str:
    """A 2 s clip: a coloured background with a moving bright square, and a tone (or no audio)."""
    rng = np.random.default_rng(seed)
    frames_n = int(FPS * SECONDS)
    frames = np.empty((frames_n, SIZE, SIZE, 3), dtype=np.uint8)
    frames[:] = np.clip(np.array(colour) + rng.integers(-20, 20, 3), 0, 255).astype(np.uint8)
    for t in range(frames_n):
        x = (t * 3 + seed * 7) % (SIZE - 12)
        frames[t, 18:30, x:x + 12] = 255
    audio = None
    if tone is not None:
        time = np.arange(int(SECONDS * SR)) / SR
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * (1 + seed % 3) * time)
        audio = (0.3 * envelope * np.sin(2 * np.pi * tone * time)
                 + 0.01 * rng.standard_normal(time.size)).astype(np.float32)
    return write_media(path, frames, FPS, audio, SR)


@pytest.fixture
def one_thread():
    """One intra-op thread: the tiny models gain nothing from more, and on a shared CI runner
    spinning OpenMP threads make each step several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def manifest_of(paths: list[str], labels: list[str] | None = None):
    rows = probe_paths(paths, workers=0, progress=False)
    label_map = {p: (lab, "train", "") for p, lab in zip(paths, labels)} if labels else None
    return build_manifest(paths, rows, label_map)


@pytest.fixture(scope="module")
def pretrain_files(tmp_path_factory) -> list[str]:
    """8 distinct clips (colour and tone vary together); the last one has no audio."""
    root = tmp_path_factory.mktemp("avcl_pretrain")
    paths = []
    for i in range(8):
        colour = tuple(int(80 + 170 * ((i * k) % 8) / 7) for k in (1, 3, 5))
        tone = None if i == 7 else 300.0 * (1 + i)
        paths.append(write_clip(root / f"clip{i}.mp4", colour, tone, seed=i))
    return paths


@pytest.fixture(scope="module")
def labelled_files(tmp_path_factory) -> tuple[list[str], list[str], str]:
    """3 classes x 3 clips, class = colour + tone; and one clip of class 0 without audio."""
    root = tmp_path_factory.mktemp("avcl_finetune")
    paths, labels = [], []
    for c in range(3):
        for k in range(3):
            paths.append(write_clip(root / f"class{c}_{k}.mp4", COLOURS[c], TONES[c], seed=10 * c + k))
            labels.append(f"class{c}")
    silent = write_clip(root / "silent.mp4", COLOURS[0], None, seed=99)
    return paths, labels, silent


def test_configs_load_and_validate() -> None:
    for name in ("avcl.yaml", "avcl-tiny.yaml"):
        config = load_config(CONFIGS / name)
        assert config.method.name == "avcl"
        assert isinstance(config.method.params, AVCLParams)
    paper = load_config(CONFIGS / "avcl.yaml").method.params
    assert (paper.cross_modal_temperature, paper.fusion.dim, paper.alignment.off_diagonal_weight) == (0.07, 256, 0.005)
    with pytest.raises(ConfigError, match="method.fused_temperature"):
        load_config(CONFIGS / "avcl-tiny.yaml", ["method.fused_temprature=0.2"])
    with pytest.raises(ConfigError, match="method.fusion.dim"):
        load_config(CONFIGS / "avcl-tiny.yaml", ["method.fusion.dim=30"])  # not divisible by 4 heads


def test_method_builds_from_tiny_config() -> None:
    config = tiny_config()
    method = method_class("avcl")(config)
    assert isinstance(method, AVCL)
    assert method.fusion.out_dim == 64 and method.fused_head.out_dim == 32
    assert method.alignment.video_proj.in_dim == method.video_encoder.out_dim


def test_recipe_gives_two_views_of_one_window(pretrain_files) -> None:
    config = tiny_config()
    table = FileTable.from_manifest(manifest_of(pretrain_files))
    dataset = ClipDataset(table, AVCL(config).recipe(table), seed=0)
    sample = dataset[SampleKey(0, 0)]
    assert sample["video"].shape == (2, 3, 8, 32, 32) and sample["video"].dtype == torch.uint8
    assert not torch.equal(sample["video"][0], sample["video"][1])  # independent crops
    assert sample["audio"].shape == (SR,) and bool(sample["audio_present"])
    silent = dataset[SampleKey(7, 0)]
    assert not bool(silent["audio_present"]) and not silent["audio"].any()


@pytest.mark.slow
def test_pretraining_lowers_the_loss(pretrain_files, one_thread) -> None:
    torch.manual_seed(0)
    config = tiny_config("trainer.max_steps=30", "data.clip.frames=4")
    method = AVCL(config)
    table = FileTable.from_manifest(manifest_of(pretrain_files))
    dataset = ClipDataset(table, method.recipe(table), seed=0)
    batches = [collate_samples([dataset[SampleKey(i, epoch)] for i in range(len(table))]) for epoch in range(2)]
    assert batches[0]["audio_present"].tolist() == [True] * 7 + [False]
    optimizers = method.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    method.train()
    losses = []
    for step in range(30):
        loss = method.training_step(batches[step % 2], step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1, losses


def finetune_batch(method: AVCLFinetune, labelled: LabelledTable, train: bool, epoch: int = 0) -> dict:
    dataset = ClipDataset(labelled.table, method.recipe(labelled, train=train), seed=0)
    return collate_samples([dataset[SampleKey(i, epoch)] for i in range(len(labelled))])


@pytest.mark.slow
def test_finetuning_learns_the_classes(labelled_files, one_thread) -> None:
    torch.manual_seed(0)
    paths, labels, _ = labelled_files
    labelled = LabelledTable.from_manifest(manifest_of(paths, labels))
    assert labelled.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    config = tiny_config("trainer.max_steps=30", "optim.lr=0.003", "data.clip.frames=4")
    method = AVCLFinetune(config, num_classes=3)
    train_batches = [finetune_batch(method, labelled, True, epoch) for epoch in range(3)]
    eval_batch = finetune_batch(method, labelled, False)
    optimizers = method.configure_optimizers()
    optimizer = optimizers["optimizer"]

    def accuracy() -> float:
        method.eval()
        with torch.no_grad():
            logits = method.predict_step(eval_batch, 0)
        method.train()
        return float((logits.argmax(dim=1) == eval_batch["label"]).float().mean())

    before = accuracy()
    method.train()
    # 30 steps: evaluation uses batch-norm running statistics, which need ~25 updates to settle
    for step in range(30):
        loss = method.training_step(train_batches[step % 3], step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = accuracy()
    assert after >= 7 / 9 and after > before, (before, after)


def test_missing_audio_is_masked_in_finetuning(labelled_files) -> None:
    torch.manual_seed(0)
    paths, labels, silent = labelled_files
    files = [paths[3], silent]
    labelled = LabelledTable(FileTable.from_manifest(manifest_of(files)), np.array([1, 0]))
    assert labelled.table.has_audio.tolist() == [True, False]
    method = AVCLFinetune(tiny_config(), num_classes=3).eval()
    batch = finetune_batch(method, labelled, train=False)
    assert batch["audio_present"].tolist() == [True, False]
    assert not batch["audio"][1].any()
    noise = batch["audio"].clone()
    noise[1] = 0.5 * torch.randn(noise.shape[1])
    with torch.no_grad():
        masked = method(batch["video"], batch["audio"], batch["audio_present"])
        masked_noise = method(batch["video"], noise, batch["audio_present"])
        alone = method(batch["video"][1:], noise[1:], batch["audio_present"][1:])
        unmasked_noise = method(batch["video"], noise, torch.tensor([True, True]))
    # the clip without audio: independent of what the audio tensor holds, and of its batch mates
    torch.testing.assert_close(masked[1], masked_noise[1], rtol=0, atol=0)
    torch.testing.assert_close(masked[1], alone[0], rtol=1e-5, atol=1e-5)
    # the check could fail: the same noise, marked present, changes the prediction
    assert not torch.allclose(unmasked_noise[1], masked[1], atol=1e-4)
    torch.testing.assert_close(masked[0], masked_noise[0])


def test_finetune_loads_pretrained_weights() -> None:
    config = tiny_config()
    pretrained = AVCL(config)
    method = AVCLFinetune(config, num_classes=4)
    assert method.load_pretrained(pretrained.state_dict(), "pretrain.ckpt") == ["video_encoder", "audio_encoder", "fusion"]
    for part in ("video_encoder", "audio_encoder", "fusion"):
        ours, theirs = getattr(method.classifier, part).state_dict(), getattr(pretrained, part).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert not any(k.startswith(("video_encoder.", "audio_encoder.")) for k in method.state_dict())
    video_only = {k: v for k, v in pretrained.state_dict().items() if k.startswith("video_")}
    with pytest.raises(CheckpointMismatchError, match="pretrain.ckpt has no weights under 'audio_encoder.'"):
        method.load_pretrained(video_only, "pretrain.ckpt")
    wider = AVCL(load_config(CONFIGS / "avcl-tiny.yaml", ["method.fusion.dim=128"])).state_dict()
    with pytest.raises(CheckpointMismatchError, match="fusion does not match the model: first differing key"):
        method.load_pretrained(wider, "wide.ckpt")


def test_labelled_table_rejects_unlabelled_files() -> None:
    table = FileTable(np.array(["a.mp4", "b.mp4"]), np.array([2.0, 2.0]), np.array([True, True]), np.array([0, 1]))
    with pytest.raises(Exception, match="b.mp4: no label"):
        LabelledTable(table, np.array([0, -1]))
