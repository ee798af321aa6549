"""The temporal-av data recipe: two video windows and one audio window of a file with their labels.

One sample decodes two video clips and one audio clip of the same file (the budget of two clips):

- video A: T frames from `video_start[0]`, played speeds[video_speed[0]] times faster (every s-th
  frame of an s*T-frame source window), reversed in time when video_direction[0] == 1.
- video B: another window of the same file (any start, overlap allowed), with its own speed and
  direction labels: video A's positive in the video-video contrast.
- video B parts: B's frames in forward order (after the speed, before the reversal) cut into
  `num_subclips` consecutive sub-clips and shuffled; `video_order` is the permutation class
  (avssl.data.views.order_view). No extra decoding: the sub-clips are B's frames.
- audio: the audio starting `audio_start`, where the inter-modal order label `av_order` says
  whether that start lies before (0), at (1) or after (2) video A's start, offset by a value in
  [av_order_min_offset, av_order_max_offset] s of file time (avssl.data.views.inter_modal_order_view);
  played speeds[audio_speed] times faster (pitch rises) and reversed when audio_direction == 1.

Every speed is drawn among the speeds whose source window fits the file (a short file trains on
the slower speeds only); a file too short for the slowest speed raises a ValueError naming it.
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
from avssl.data.views import REVERSED, draw_index, inter_modal_order_view, order_view


def speeds_that_fit(speeds: tuple[int, ...], window: float, duration: float, margin: float = 0.0) -> list[int]:
    """Labels k whose source window speeds[k] * window (+ margin) s fits in `duration` s."""
    return [k for k, s in enumerate(speeds) if s * window + margin <= duration + TIME_EPS]


def draw_fitting_speed(rng: np.random.Generator, speeds: tuple[int, ...], window: float, duration: float,
                       margin: float, what: str, path: str) -> int:
    """A speed label drawn uniformly among those whose source window fits (see speeds_that_fit)."""
    fitting = speeds_that_fit(speeds, window, duration, margin)
    if not fitting:
        raise ValueError(
            f"{path}: a {duration:.3f} s file is too short for the {what} (needs at least "
            f"{speeds[0] * window + margin:.3f} s at the slowest speed {speeds[0]})"
        )
    return fitting[draw_index(rng, len(fitting))]


class TemporalAVRecipe(SampleRecipe):
    """One sample of temporal-av (see the module docstring).

    Returns uint8 video [3, T, S, S], video_b [3, T, S, S], video_b_parts [n, 3, T // n, S, S],
    float audio [N]; int64 labels video_speed [2], video_direction [2] (A, B), audio_speed,
    audio_direction, video_order, av_order; video_id and group (int64), video_start [2] and
    audio_start (float64 seconds, file time).
    """

    def __init__(self, table: FileTable, config: Config) -> None:
        super().__init__(table, config)
        params = config.method.params
        self.speeds = tuple(params.speeds)
        self.num_subclips = params.num_subclips
        self.merge_reverse = params.merge_reverse_order
        self.min_offset = params.av_order_min_offset
        self.max_offset = params.av_order_max_offset

    @classmethod
    def min_file_duration(cls, config: Config) -> float:
        """The slowest speed's windows with their inter-modal offsets."""
        p, clip = config.method.params, config.data.clip
        slowest = p.speeds[0]
        return max(slowest * clip.video_seconds + p.av_order_max_offset,
                   slowest * clip.audio_window + 2 * p.av_order_max_offset)

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        index = ctx.index
        path = str(ctx.table.paths[index])
        duration = float(ctx.table.durations[index])
        if not ctx.table.has_audio[index]:
            raise ValueError(f"{path}: temporal-av needs audio, and this file has none")
        rng = ctx.rng()
        clip = self.clip
        video_seconds, audio_seconds = clip.video_seconds, clip.audio_window
        # labels first, then the windows their speeds need
        speed_a = draw_fitting_speed(rng, self.speeds, video_seconds, duration, self.max_offset,
                                     "video clip with an inter-modal offset", path)
        speed_b = draw_fitting_speed(rng, self.speeds, video_seconds, duration, 0.0, "second video clip", path)
        speed_audio = draw_fitting_speed(rng, self.speeds, audio_seconds, duration, 2 * self.max_offset,
                                         "audio clip with an inter-modal offset", path)
        sa, sb, sau = self.speeds[speed_a], self.speeds[speed_b], self.speeds[speed_audio]
        spec = WindowSpec(sa * video_seconds, sau * audio_seconds, clip.fps)
        pair, av_order = inter_modal_order_view(spec, duration, rng, min_offset=self.min_offset,
                                                max_offset=self.max_offset, video_index=index)
        start_b = start_anywhere(sb * video_seconds, duration, rng, clip.fps)

        reader = ctx.reader()
        gen = ctx.torch_generator()
        video_a = read_video_clip(reader, pair.video_start, clip.frames, clip.fps, self.augment, gen, speed=sa)
        video_b = read_video_clip(reader, start_b, clip.frames, clip.fps, self.augment, gen, speed=sb)
        audio = read_audio_clip(reader, pair.audio_start, audio_seconds, clip.sample_rate, speed=sau)

        # order_view works on the leading (time) axis: [3, T, S, S] -> [T, 3, S, S] and back
        parts, video_order = order_view(video_b.transpose(0, 1), rng, self.num_subclips, self.merge_reverse)
        parts = parts.transpose(1, 2).contiguous()  # [n, L, 3, S, S] -> [n, 3, L, S, S]

        dir_a, dir_b, dir_audio = (draw_index(rng, 2) for _ in range(3))
        if dir_a == REVERSED:
            video_a = video_a.flip(1)
        if dir_b == REVERSED:
            video_b = video_b.flip(1)
        if dir_audio == REVERSED:
            audio = audio.flip(0)

        return {
            "video": video_a.contiguous(),
            "video_b": video_b.contiguous(),
            "video_b_parts": parts,
            "audio": audio.contiguous(),
            "video_speed": torch.tensor([speed_a, speed_b], dtype=torch.int64),
            "video_direction": torch.tensor([dir_a, dir_b], dtype=torch.int64),
            "audio_speed": torch.tensor(speed_audio, dtype=torch.int64),
            "audio_direction": torch.tensor(dir_audio, dtype=torch.int64),
            "video_order": torch.tensor(video_order, dtype=torch.int64),
            "av_order": torch.tensor(av_order, dtype=torch.int64),
            "video_id": torch.tensor(index, dtype=torch.int64),
            "group": torch.tensor(int(ctx.table.groups[index]), dtype=torch.int64),
            "video_start": torch.tensor([pair.video_start, start_b], dtype=torch.float64),
            "audio_start": torch.tensor(pair.audio_start, dtype=torch.float64),
        }
