"""The model that `avssl sync-check` and `avssl localize` run: loaded once, checked for a joint
audio-visual space, and applied to decoded windows in batches without gradients."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import torch

from avssl.errors import UsageError
from avssl.evaluate.pretrained import PretrainedModel, load
from avssl.media import MediaReader

# the methods whose video-audio comparison is a distance (AVTS trains the distance of the two
# embeddings with its margin loss); every other method compares them by cosine similarity
DISTANCE_METHODS = ("avts",)


def load_av_model(spec: str, device: str | torch.device = "cpu") -> PretrainedModel:
    """`spec` as avssl.load takes it (a run dir, a `.ckpt` of `avssl pretrain`, an export dir, or
    `random:CONFIG`). UsageError naming `spec` when it does not load, or when its weights or its kind
    of model do not fit (no joint space: embed_video / embed_audio and a video projection head)."""
    try:
        loaded = load(spec, device)
    except UsageError as err:
        message = str(err)
        if spec in message:  # load_model names the file after its own option, --checkpoint
            raise UsageError(message.replace("--checkpoint", "--model", 1)) from None
        raise UsageError(f"--model {spec}: {message}") from None
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        # load_state_dict raises RuntimeError when a tensor of the checkpoint has another shape
        first = str(err).strip().splitlines()[:2]
        raise UsageError(f"--model {spec}: its weights do not fit the model its config describes "
                         f"(another architecture?): {' '.join(first)}") from None
    method = loaded.method
    missing = [name for name in ("embed_video", "embed_audio", "video_head", "video_encoder")
               if not hasattr(method, name)]
    if missing:
        raise UsageError(f"--model {spec}: a {type(method).__name__} model has no joint audio-visual space "
                         f"(lacks {', '.join(missing)}); give a pretraining checkpoint")
    return loaded


def score_kind(loaded: PretrainedModel) -> str:
    """'neg_distance' (minus the distance of the L2-normalised embeddings: AVTS's sync distance) or
    'cosine' (every other method); higher is more in sync either way."""
    return "neg_distance" if loaded.config.method.name in DISTANCE_METHODS else "cosine"


def pair_scores(video: torch.Tensor, audio: torch.Tensor, kind: str) -> torch.Tensor:
    """Scores of aligned rows: video [..., E], audio [..., E] (L2-normalised) -> [...]."""
    if kind == "neg_distance":
        return -(video - audio).norm(dim=-1)
    if kind == "cosine":
        return (video * audio).sum(dim=-1)
    raise ValueError(f"unknown score kind {kind!r}")


@torch.no_grad()
def embed_video_batches(method: Any, clips: Iterable[torch.Tensor]) -> torch.Tensor:
    """uint8 clip batches [B, 3, T, S, S] -> joint-space embeddings [sum B, E] on the CPU."""
    out = [method.embed_video(method.video_input(x.to(method.device), train=False)).cpu() for x in clips]
    return torch.cat(out) if out else torch.zeros(0, 0)


@torch.no_grad()
def embed_audio_batches(method: Any, waves: Iterable[torch.Tensor]) -> torch.Tensor:
    """Waveform batches [B, samples] -> joint-space embeddings [sum B, E] on the CPU."""
    out = [method.embed_audio(method.audio_input(x.to(method.device), train=False)).cpu() for x in waves]
    return torch.cat(out) if out else torch.zeros(0, 0)


@torch.no_grad()
def embed_video_map(method: Any, clips: torch.Tensor) -> torch.Tensor:
    """uint8 clips [B, 3, T, H, W] (any H, W) -> the joint space per position of the video encoder's
    last map, L2-normalised: [B, H', W', E] (PretrainMethod.embed_video_positions; in eval mode the
    head's BatchNorm uses running statistics, so this is the head exactly as embed_video applies it)."""
    return method.embed_video_positions(method.video_input(clips.to(method.device), train=False)).cpu()


def batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def open_av_file(path: str) -> MediaReader:
    """An open reader of a file with both a video and an audio stream; NoAudioStreamError /
    NoVideoStreamError (MediaError subclasses naming the file) otherwise."""
    from avssl.media import NoAudioStreamError, NoVideoStreamError

    reader = MediaReader(path)
    info = reader.info
    if not info.has_video or not info.has_audio:
        reader.close()
        error = NoVideoStreamError if not info.has_video else NoAudioStreamError
        raise error(path, "needs a video and an audio stream, this file has "
                    + ("no video stream" if not info.has_video else "no audio stream"))
    return reader
