"""The demo world's numbers in one dataclass, its size presets (tiny, default, large) and its hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from avssl.errors import UsageError

# Bump when the generator changes what it writes for the same config: cached worlds then regenerate.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class WorldConfig:
    """Everything that decides the demo world's content; the same config gives the same arrays.

    Durations are in seconds, distances in pixels, speeds in pixels per second.
    """

    seed: int = 0
    # media
    width: int = 128
    height: int = 96
    fps: int = 25
    sample_rate: int = 16000
    gop: int = 25  # one keyframe per second: a random clip never decodes more than 1 s it discards
    crf: int = 20
    # objects: the first n classes of the catalogue (shape + colour + sound timbre)
    n_object_classes: int = 6
    min_radius: float = 7.0
    max_radius: float = 12.0
    # physics
    gravity: float = 420.0
    restitution: float = 0.72  # floor; < 1 so bounce heights shrink: reversed playback gains energy
    wall_restitution: float = 0.85
    rest_speed: float = 25.0  # below this vertical speed after a bounce the object rests on the floor
    # audio levels (peak of a full-speed impact, theme, noise floor)
    impact_level: float = 0.6
    theme_level: float = 0.06
    noise_level: float = 0.003
    # unlabeled pretraining clips
    n_clips: int = 60
    clip_seconds: float = 10.0
    # long-form "movies"
    n_movies: int = 4
    movie_seconds: float = 120.0
    movie_cast: int = 3
    movie_locations: int = 3
    scene_min_seconds: float = 4.0
    scene_max_seconds: float = 10.0
    # UCF-style labelled set: classes = object classes x motions, clips cut from one video per group
    ucf_groups: int = 8
    ucf_clips_per_group: int = 2
    ucf_clip_seconds: float = 3.0
    ucf_distractor_prob: float = 0.25  # chance per distractor slot that an object of another class passes by
    # ESC-style labelled sound set: one sound class per object class, 5 folds
    esc_sources_per_class_per_fold: int = 2
    esc_takes_per_source: int = 2
    esc_clip_seconds: float = 5.0

    def validate(self) -> "WorldConfig":
        """Raise UsageError naming the first bad key; return self."""
        from avssl.data.synthetic.catalogue import OBJECT_CLASSES

        positive = [
            "width", "height", "fps", "sample_rate", "gop", "n_object_classes", "min_radius",
            "gravity", "clip_seconds", "movie_seconds", "movie_cast", "movie_locations",
            "scene_min_seconds", "ucf_groups", "ucf_clips_per_group", "ucf_clip_seconds",
            "esc_sources_per_class_per_fold", "esc_takes_per_source", "esc_clip_seconds",
        ]
        for key in positive:
            if not getattr(self, key) > 0:
                raise UsageError(f"world config: {key} must be > 0, got {getattr(self, key)!r}")
        for key in ["n_clips", "n_movies", "theme_level", "noise_level", "crf"]:
            if getattr(self, key) < 0:
                raise UsageError(f"world config: {key} must be >= 0, got {getattr(self, key)!r}")
        if self.width % 2 or self.height % 2:
            raise UsageError(f"world config: width and height must be even (yuv420p), got {self.width}x{self.height}")
        if self.height < 48 or self.width < 48:
            raise UsageError(f"world config: width and height must be >= 48, got {self.width}x{self.height}")
        if not 2 <= self.n_object_classes <= len(OBJECT_CLASSES):
            raise UsageError(
                f"world config: n_object_classes must be in [2, {len(OBJECT_CLASSES)}], got {self.n_object_classes}"
            )
        if not self.min_radius <= self.max_radius <= self.height / 6:
            raise UsageError(
                f"world config: need min_radius <= max_radius <= height/6, got {self.min_radius}, {self.max_radius}"
            )
        if not 0 < self.restitution < 1 or not 0 < self.wall_restitution <= 1:
            raise UsageError("world config: restitution must be in (0, 1) and wall_restitution in (0, 1]")
        if not 0 <= self.ucf_distractor_prob <= 1:
            raise UsageError(f"world config: ucf_distractor_prob must be in [0, 1], got {self.ucf_distractor_prob!r}")
        if self.scene_max_seconds < self.scene_min_seconds:
            raise UsageError("world config: scene_max_seconds must be >= scene_min_seconds")
        if self.movie_cast > self.n_object_classes:
            raise UsageError(
                f"world config: movie_cast ({self.movie_cast}) must be <= n_object_classes ({self.n_object_classes})"
            )
        if self.esc_takes_per_source > 26:
            raise UsageError("world config: esc_takes_per_source must be <= 26 (takes are letters A-Z)")
        if self.ucf_groups > 99 or self.ucf_clips_per_group > 99:
            raise UsageError("world config: ucf_groups and ucf_clips_per_group must be <= 99 (gGG_cCC names)")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """A short hash of the config and the generator's format version (the cache key)."""
        text = json.dumps({"format_version": FORMAT_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# Presets differ only in how much they write; the world's look, sound and physics are the same.
PRESETS: dict[str, dict] = {
    # seconds to generate: for tests
    "tiny": dict(
        n_object_classes=3, n_clips=3, clip_seconds=4.0, n_movies=2, movie_seconds=12.0, movie_cast=2,
        movie_locations=2, scene_min_seconds=3.0, scene_max_seconds=5.0, ucf_groups=3,
        ucf_clips_per_group=2, ucf_clip_seconds=2.0, esc_sources_per_class_per_fold=1,
        esc_takes_per_source=1, esc_clip_seconds=2.0,
    ),
    # under a minute on 2 cores: what `avssl demo` trains and evaluates on
    "default": dict(),
    # closer to real scale: long movies, many clips (minutes to generate)
    "large": dict(
        n_object_classes=8, n_clips=600, n_movies=10, movie_seconds=600.0, ucf_groups=25,
        ucf_clips_per_group=4, ucf_clip_seconds=4.0, esc_sources_per_class_per_fold=4,
    ),
}


def preset(name: str, seed: int = 0, **overrides) -> WorldConfig:
    """The named preset's config with `seed` and any field overrides, validated."""
    if name not in PRESETS:
        raise UsageError(f"unknown world scale {name!r}; choose one of {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(WorldConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UsageError(f"world config: unknown key(s) {unknown}")
    return WorldConfig(**{**PRESETS[name], "seed": int(seed), **overrides}).validate()
