"""A recording of the demo world as data (scenes, backdrops, theme, objects) and its rendering to arrays.

A Timeline is what one file shows: short clips have one scene, movies many (cuts between a movie's
locations), a UCF-style group is one continuous scene later cut into clips. `render` turns it into
frames, audio and the ground-truth list of sound events, deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avssl.data.synthetic.catalogue import OBJECT_CLASSES
from avssl.data.synthetic.config import WorldConfig
from avssl.data.synthetic.physics import Arena, simulate
from avssl.data.synthetic.render import EXTENTS, Backdrop, draw_shape, floor_line
from avssl.data.synthetic.sound import Theme, impact_sound, mix_events

GROW_SECONDS = 0.15  # objects pop in quickly ...
FADE_SECONDS = 0.4  # ... and fade out slowly: appearing and vanishing are not mirror images
FULL_SPEED = 300.0  # px/s: an impact this fast sounds at the full impact level
APPEAR_GAIN = 0.35  # the "pop" when an object appears, relative to a full-speed impact


@dataclass
class ObjectSpec:
    """One object's life: it appears at t_appear at (x, y) with velocity (vx, vy) and is gone at t_vanish."""

    id: int
    class_id: int
    motion: str
    radius: float
    pitch: float  # scales the frequencies of its sound: instances of a class differ slightly
    t_appear: float
    t_vanish: float
    x: float
    y: float
    vx: float
    vy: float
    character: int | None = None  # index in the movie's cast, None for an extra

    def to_dict(self) -> dict:
        return {
            "id": self.id, "class": self.class_id, "class_name": OBJECT_CLASSES[self.class_id].name,
            "motion": self.motion, "radius": round(self.radius, 3), "pitch": round(self.pitch, 4),
            "t_appear": round(self.t_appear, 6), "t_vanish": round(self.t_vanish, 6),
            "character": self.character,
        }


@dataclass
class Timeline:
    """Scenes cut at `scene_starts` (first is 0), scene i drawn on backdrops[scene_backdrop[i]]."""

    duration: float
    backdrops: list[Backdrop]
    scene_starts: list[float]
    scene_backdrop: list[int]
    theme: Theme
    noise_seed: int
    objects: list[ObjectSpec] = field(default_factory=list)

    def scene_end(self, t: float) -> float:
        """End time of the scene that contains t."""
        later = [s for s in self.scene_starts if s > t]
        return min(later) if later else self.duration


def arena(cfg: WorldConfig) -> Arena:
    return Arena(
        width=float(cfg.width), floor_y=float(floor_line(cfg.height)), gravity=cfg.gravity,
        restitution=cfg.restitution, wall_restitution=cfg.wall_restitution, rest_speed=cfg.rest_speed,
    )


def launch(rng: np.random.Generator, cfg: WorldConfig, motion: str, radius: float) -> tuple[float, float, float, float]:
    """Start position and velocity (x, y, vx, vy) for a motion: Bounce drops from high up, Throw
    tosses from a side towards the middle."""
    w, h = cfg.width, cfg.height
    if motion == "Bounce":
        return (float(rng.uniform(radius + 4, w - radius - 4)), float(rng.uniform(0.12, 0.35) * h),
                float(rng.uniform(-12, 12)), float(rng.uniform(-20, 10)))
    if motion == "Throw":
        from_left = bool(rng.integers(0, 2))
        x = float(rng.uniform(radius, 0.25 * w))
        speed = float(rng.uniform(60, 130)) * w / 128
        return (x if from_left else w - x, float(rng.uniform(0.45, 0.7) * h),
                speed if from_left else -speed, -float(rng.uniform(80, 160)) * h / 96)
    raise ValueError(f"unknown motion {motion!r}")


def render(tl: Timeline, cfg: WorldConfig) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Frames uint8 [T, H, W, 3] (T = round(duration*fps)), audio float32 [round(duration*sr)], events.

    Frame i shows time i/fps. Each event is {time, kind (appear|floor|wall), object, class, speed,
    gain}; its sound starts on sample round(time*sr).
    """
    n_frames = int(round(tl.duration * cfg.fps))
    n_samples = int(round(tl.duration * cfg.sample_rate))
    times = np.arange(n_frames) / cfg.fps
    scene_of_frame = np.searchsorted(np.asarray(tl.scene_starts), times, side="right") - 1
    plates = [b.render(cfg.width, cfg.height) for b in tl.backdrops]
    drawn: list[list[tuple]] = [[] for _ in range(n_frames)]  # per frame: what to draw, in object order
    sounds: list[tuple[float, np.ndarray, float]] = []
    events: list[dict] = []
    world_arena = arena(cfg)
    for obj in tl.objects:
        spec = OBJECT_CLASSES[obj.class_id]
        end = min(obj.t_vanish, tl.scene_end(obj.t_appear))  # a cut ends every object in its scene
        side, bottom = EXTENTS[spec.shape]
        traj, impacts = simulate(world_arena, side * obj.radius, bottom * obj.radius, obj.t_appear, end,
                                 obj.x, obj.y, obj.vx, obj.vy)
        hit = impact_sound(spec.sound, cfg.sample_rate, obj.pitch, seed=obj.class_id)
        pop = impact_sound(spec.sound, cfg.sample_rate, 2.0 * obj.pitch, seed=obj.class_id)
        if obj.t_appear >= 0:
            sounds.append((obj.t_appear, pop, cfg.impact_level * APPEAR_GAIN))
            events.append(_event(obj, obj.t_appear, "appear", 0.0, cfg.impact_level * APPEAR_GAIN))
        for imp in impacts:
            gain = cfg.impact_level * min(1.0, 0.3 + 0.7 * imp.speed / FULL_SPEED) * _visibility(obj, imp.time)
            sounds.append((imp.time, hit, gain))
            events.append(_event(obj, imp.time, imp.kind, imp.speed, gain))
        idx = np.nonzero((times >= obj.t_appear) & (times < end))[0]
        if len(idx) == 0:
            continue
        x, y = traj.position(times[idx])
        scale = np.clip((times[idx] - obj.t_appear) / GROW_SECONDS, 0.0, 1.0)
        alpha = np.array([_visibility(obj, t) for t in times[idx]])
        for i, xi, yi, si, ai in zip(idx, x, y, scale, alpha):
            drawn[i].append((spec.shape, spec.colour, xi, yi, obj.radius * si, ai))
    frames = np.empty((n_frames, cfg.height, cfg.width, 3), dtype=np.uint8)
    for i in range(n_frames):
        img = plates[tl.scene_backdrop[scene_of_frame[i]]].copy()
        for shape, colour, xi, yi, r, ai in drawn[i]:
            draw_shape(img, shape, colour, xi, yi, r, ai)
        np.rint(img, out=img)
        frames[i] = img.astype(np.uint8)
    rng = np.random.default_rng(tl.noise_seed)
    background = tl.theme.render(n_samples, cfg.sample_rate) + cfg.noise_level * rng.standard_normal(n_samples)
    audio = mix_events(n_samples, cfg.sample_rate, sounds, background)
    events.sort(key=lambda e: (e["time"], e["object"]))
    return frames, audio, events


def _visibility(obj: ObjectSpec, t: float) -> float:
    return float(np.clip((obj.t_vanish - t) / FADE_SECONDS, 0.0, 1.0))


def _event(obj: ObjectSpec, t: float, kind: str, speed: float, gain: float) -> dict:
    return {"time": round(t, 6), "kind": kind, "object": obj.id, "class": obj.class_id,
            "speed": round(speed, 3), "gain": round(gain, 4)}

