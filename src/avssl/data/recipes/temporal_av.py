"""The temporal-av sample: a transformed clip for the temporal pretext tasks and two plain clips for
the contrast and the order tasks, from three windows of one file.

- Clip A (the transformed one): `video` is T frames from `video_start[0]` played `speed` times faster
  (every speed-th frame of the fps grid), reversed when `direction` is 1. `audio` is the same file's
  audio at the same speed and direction, from a window offset from the video's in file time by 0 (in
  sync) or by o in [av_order_min_offset, av_order_max_offset] s earlier or later. The inter-modal order
  label `av_order` says where that audio lies on the time line the clip is played on: 0 before the
  video, 1 with it, 2 after it (a reversed clip plays file time backwards, so a later audio window
  comes before). Speed and direction are shared by both modalities, so the label can be answered.
- Clip B (the plain one): `video_b` is T frames from `video_start[1]` at normal speed, forward, and
  `audio_sync` the audio of exactly that window (the video-audio contrast pairs them).
  `video_parts` / `audio_parts` are B's frames / audio_sync's samples cut into `num_subclips` pieces
  with gaps between neighbours (so no boundary continues into the next piece) and shuffled;
  `video_order` / `audio_order` are the permutation classes (avssl.data.views.order_view). With
  `audio_order_windows` K > 1, K - 1 more audio windows anywhere in the file are cut and shuffled
  the same way (`audio_parts_extra`, `audio_order_extra`): more audio order examples per sample.
- Clip C: `video_c` is T plain frames from `video_start[2]`, another window of the file: clip B's
  partner in the video-video contrast. The contrast never sees clip A: pairing a sped-up or reversed
  clip with a plain one as positives asks the encoder to be blind to the very speed and direction
  its heads must tell apart, and measured that way the video heads stayed at chance (docs/methods.md).

Audio at every speed, speed 1 included, goes through the same anti-alias filter
(avssl.data.views.audio_at_speed), so the spectrum's edge does not give the speed away; files whose
video has fewer frames per second than the clip's fps are left out (frames would repeat at speed 1).
A speed is drawn among those whose windows fit the file (a short file trains on the slower speeds).
"""

from __future__ import annotations

import numpy as np
import torch

from avssl.config.schema import Config
from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.dataset import FileTable, SampleContext
from avssl.data.recipes.base import SampleRecipe
from avssl.data.sampling import WindowSpec
from avssl.data.sampling.windows import TIME_EPS, start_anywhere
from avssl.data.views import (
    AUDIO_AFTER,
    AUDIO_BEFORE,
    REVERSED,
    audio_at_speed,
    draw_index,
    inter_modal_order_view,
    order_view,
)


def speed_span(speed: int, video_seconds: float, audio_seconds: float, max_offset: float) -> float:
    """Seconds of file clip A needs at `speed`: its video window, or its audio window with an
    inter-modal offset on either side (see inter_modal_order_view)."""
    return max_offset + max(speed * video_seconds, speed * audio_seconds + max_offset)


def draw_fitting_speed(rng: np.random.Generator, speeds: tuple[int, ...], video_seconds: float,
                       audio_seconds: float, max_offset: float, duration: float, path: str) -> int:
    """A speed label drawn uniformly among those whose clip A fits in `duration` s."""
    fitting = [k for k, s in enumerate(speeds)
               if speed_span(s, video_seconds, audio_seconds, max_offset) <= duration + TIME_EPS]
    if not fitting:
        raise ValueError(f"{path}: a {duration:.3f} s file is too short for temporal-av's clip at speed "
                         f"{speeds[0]} (needs {speed_span(speeds[0], video_seconds, audio_seconds, max_offset):.3f} s)")
    return fitting[draw_index(rng, len(fitting))]


def played_order(file_order: int, direction: int) -> int:
    """The inter-modal order on the time line a clip is played on: reversed playback swaps before and after."""
    if direction == REVERSED and file_order != 1:
        return AUDIO_AFTER if file_order == AUDIO_BEFORE else AUDIO_BEFORE
    return file_order


class TemporalAVRecipe(SampleRecipe):
    """One sample of temporal-av (see the module docstring).

    Returns uint8 video, video_b, video_c [3, T, S, S], video_parts [n, 3, P, S, S]; float audio,
    audio_sync [N], audio_parts [n, Q]; int64 labels speed, direction, av_order, video_order, audio_order; video_id and
    group (int64); video_start [3] (clips A, B and C) and audio_start (float64 seconds, file time). With
    `audio_order_windows` K > 1 also audio_parts_extra [K - 1, n, Q], audio_order_extra [K - 1] and
    audio_order_starts [K - 1] (see extra_audio_order).
    """

    def __init__(self, table: FileTable, config: Config) -> None:
        super().__init__(table, config)
        params = config.method.params
        self.speeds = tuple(params.speeds)
        self.num_subclips = params.num_subclips
        self.merge_reverse = params.merge_reverse_order
        self.gap_frames = params.order_gap_frames
        self.min_offset = params.av_order_min_offset
        self.max_offset = params.av_order_max_offset
        self.audio_order_windows = params.audio_order_windows

    @classmethod
    def min_file_duration(cls, config: Config) -> float:
        p, clip = config.method.params, config.data.clip
        return speed_span(p.speeds[0], clip.video_seconds, clip.audio_window, p.av_order_max_offset)

    @classmethod
    def min_video_fps(cls, config: Config) -> float:
        """The clip's fps at the slowest speed: a slower video would repeat frames."""
        return config.data.clip.fps / config.method.params.speeds[0]

    def extra_audio_order(self, reader, duration: float, rng: np.random.Generator, gap: int) -> dict[str, torch.Tensor]:
        """`audio_order_windows` - 1 more audio order examples from windows anywhere in the file:
        audio_parts_extra [K - 1, n, Q], audio_order_extra [K - 1], audio_order_starts [K - 1] (s)."""
        if self.audio_order_windows == 1:
            return {}
        clip = self.clip
        starts = [start_anywhere(clip.audio_window, duration, rng, clip.fps) for _ in range(self.audio_order_windows - 1)]
        views = [order_view(read_audio_clip(reader, start, clip.audio_window, clip.sample_rate), rng, self.num_subclips,
                            self.merge_reverse, gap=gap) for start in starts]
        return {"audio_parts_extra": torch.stack([parts for parts, _ in views]).contiguous(),
                "audio_order_extra": torch.tensor([label for _, label in views], dtype=torch.int64),
                "audio_order_starts": torch.tensor(starts, dtype=torch.float64)}

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        index = ctx.index
        path = str(ctx.table.paths[index])
        duration = float(ctx.table.durations[index])
        rng = ctx.rng()
        clip = self.clip
        speed_label = draw_fitting_speed(rng, self.speeds, clip.video_seconds, clip.audio_window,
                                         self.max_offset, duration, path)
        speed = self.speeds[speed_label]
        spec = WindowSpec(speed * clip.video_seconds, speed * clip.audio_window, clip.fps)
        pair, file_order = inter_modal_order_view(spec, duration, rng, min_offset=self.min_offset,
                                                  max_offset=self.max_offset, video_index=index)
        direction = draw_index(rng, 2)
        start_b = start_anywhere(self.window.span, duration, rng, clip.fps)
        start_c = start_anywhere(self.window.span, duration, rng, clip.fps)
        reader = ctx.reader()
        gen = ctx.torch_generator()
        video = read_video_clip(reader, pair.video_start, clip.frames, clip.fps, self.augment, gen, speed=speed)
        source = read_audio_clip(reader, pair.audio_start, speed * clip.audio_window, clip.sample_rate)
        audio = audio_at_speed(source, speed, int(round(clip.audio_window * clip.sample_rate)))
        if direction == REVERSED:
            video, audio = video.flip(1), audio.flip(0)
        video_b = read_video_clip(reader, start_b, clip.frames, clip.fps, self.augment, gen)
        audio_sync = read_audio_clip(reader, start_b, clip.audio_window, clip.sample_rate)
        video_c = read_video_clip(reader, start_c, clip.frames, clip.fps, self.augment, gen)
        # order_view works on the leading (time) axis: [3, T, S, S] -> [T, 3, S, S] and back
        video_parts, video_order = order_view(video_b.transpose(0, 1), rng, self.num_subclips, self.merge_reverse,
                                              gap=self.gap_frames)
        audio_gap = int(round(self.gap_frames * len(audio_sync) / clip.frames))
        audio_parts, audio_order = order_view(audio_sync, rng, self.num_subclips, self.merge_reverse, gap=audio_gap)
        extra = self.extra_audio_order(reader, duration, rng, audio_gap)
        return {**extra,
            "video": video.contiguous(),
            "video_b": video_b,
            "video_c": video_c,
            "video_parts": video_parts.transpose(1, 2).contiguous(),  # [n, P, 3, S, S] -> [n, 3, P, S, S]
            "audio": audio.contiguous(),
            "audio_sync": audio_sync,
            "audio_parts": audio_parts.contiguous(),
            "speed": torch.tensor(speed_label, dtype=torch.int64),
            "direction": torch.tensor(direction, dtype=torch.int64),
            "av_order": torch.tensor(played_order(file_order, direction), dtype=torch.int64),
            "video_order": torch.tensor(video_order, dtype=torch.int64),
            "audio_order": torch.tensor(audio_order, dtype=torch.int64),
            "video_id": torch.tensor(index, dtype=torch.int64),
            "group": torch.tensor(int(ctx.table.groups[index]), dtype=torch.int64),
            "video_start": torch.tensor([pair.video_start, start_b, start_c], dtype=torch.float64),
            "audio_start": torch.tensor(pair.audio_start, dtype=torch.float64),
        }
