"""What each kind of file in the demo world contains: unlabeled clips, movies, UCF-style groups, ESC-style sounds.

Every builder takes its own random generator (seeded from the world seed, the kind and the index),
so a file's content does not depend on which worker makes it or in which order.
"""

from __future__ import annotations

import numpy as np

from avssl.data.synthetic.catalogue import MOTIONS, OBJECT_CLASSES
from avssl.data.synthetic.config import WorldConfig
from avssl.data.synthetic.render import Backdrop
from avssl.data.synthetic.sound import Theme, impact_sound, mix_events
from avssl.data.synthetic.timeline import ObjectSpec, Timeline, launch

KIND_CODES = {"clip": 1, "movie": 2, "ucf": 3, "esc": 4}
_LIFE_SECONDS = (2.5, 4.5)
_UCF_LIFE_SECONDS = (2.0, 3.5)


def rng_for(cfg: WorldConfig, kind: str, *index: int) -> np.random.Generator:
    """The generator of one file (or one UCF group): a function of seed, kind and index only."""
    return np.random.default_rng([cfg.seed, KIND_CODES[kind], *index])


def _radius(rng: np.random.Generator, cfg: WorldConfig) -> float:
    return float(rng.uniform(cfg.min_radius, cfg.max_radius))


def _fill_slot(rng, cfg, tl: Timeline, t: float, end: float, pick, life=_LIFE_SECONDS, gap=(0.2, 1.2)) -> None:
    """Append objects one after another from t to end; pick(rng) -> (class, motion, radius, pitch, character)."""
    while t < end - 0.5:
        class_id, motion, radius, pitch, character = pick(rng)
        t_vanish = t + float(rng.uniform(*life))
        x, y, vx, vy = launch(rng, cfg, motion, radius)
        tl.objects.append(ObjectSpec(len(tl.objects), class_id, motion, radius, pitch, t, t_vanish,
                                     x, y, vx, vy, character))
        t = t_vanish + float(rng.uniform(*gap)) - 0.3  # the next one may arrive while this one fades


def _renumber(tl: Timeline) -> None:
    """Objects in order of appearance, ids 0..n-1 in that order."""
    tl.objects.sort(key=lambda o: o.t_appear)
    for i, obj in enumerate(tl.objects):
        obj.id = i


def _random_object(cfg: WorldConfig):
    def pick(rng):
        return (int(rng.integers(0, cfg.n_object_classes)), MOTIONS[int(rng.integers(0, len(MOTIONS)))],
                _radius(rng, cfg), float(rng.uniform(0.95, 1.05)), None)
    return pick


def clip_timeline(cfg: WorldConfig, index: int) -> Timeline:
    """An unlabeled pretraining clip: one scene, its own backdrop and ambience, 1-3 overlapping object
    streams of random classes and motions."""
    rng = rng_for(cfg, "clip", index)
    tl = Timeline(
        duration=cfg.clip_seconds, backdrops=[Backdrop.random(rng, cfg.width, cfg.height)],
        scene_starts=[0.0], scene_backdrop=[0], theme=Theme.random(rng, 0.6 * cfg.theme_level),
        noise_seed=int(rng.integers(2**31)),
    )
    for _ in range(int(rng.integers(1, 4))):
        _fill_slot(rng, cfg, tl, float(rng.uniform(0.0, 1.5)), cfg.clip_seconds, _random_object(cfg))
    _renumber(tl)
    return tl


def movie_hue(cfg: WorldConfig, movie: int, rng: np.random.Generator) -> float:
    """Movies' hues are spread around the colour wheel so that each has its own palette."""
    return (movie + float(rng.uniform(0.0, 0.5))) / max(cfg.n_movies, 1)


def movie_timeline(cfg: WorldConfig, movie: int) -> tuple[Timeline, list[dict]]:
    """A long movie: scenes cut between its locations (same hue), one theme throughout, a recurring
    cast of characters (a class with a fixed size and voice) plus occasional extras.

    Returns the timeline and the cast as dicts.
    """
    rng = rng_for(cfg, "movie", movie)
    hue = movie_hue(cfg, movie, rng)
    saturation = float(rng.uniform(0.45, 0.65))
    locations = [Backdrop.random(rng, cfg.width, cfg.height, hue + float(rng.uniform(-0.03, 0.03)), saturation)
                 for _ in range(cfg.movie_locations)]
    cast_classes = rng.choice(cfg.n_object_classes, size=cfg.movie_cast, replace=False)
    cast = [{"character": i, "class": int(k), "radius": _radius(rng, cfg), "pitch": float(rng.uniform(0.93, 1.07))}
            for i, k in enumerate(cast_classes)]
    starts = [0.0]
    while True:
        nxt = starts[-1] + float(rng.uniform(cfg.scene_min_seconds, cfg.scene_max_seconds))
        if nxt > cfg.movie_seconds - cfg.scene_min_seconds / 2:
            break
        starts.append(nxt)
    tl = Timeline(
        duration=cfg.movie_seconds, backdrops=locations, scene_starts=starts,
        scene_backdrop=[int(rng.integers(0, len(locations))) for _ in starts],
        theme=Theme.random(rng, cfg.theme_level), noise_seed=int(rng.integers(2**31)),
    )
    extra = _random_object(cfg)

    def pick(r):
        if r.uniform() < 0.25:
            return extra(r)
        c = cast[int(r.integers(0, len(cast)))]
        return (c["class"], MOTIONS[int(r.integers(0, len(MOTIONS)))], c["radius"], c["pitch"], c["character"])

    ends = starts[1:] + [cfg.movie_seconds]
    for s0, s1 in zip(starts, ends):
        for _ in range(int(rng.integers(1, 3))):
            _fill_slot(rng, cfg, tl, s0 + float(rng.uniform(0.0, 1.0)), s1, pick)
    _renumber(tl)
    for c in cast:
        c["class_name"] = OBJECT_CLASSES[c["class"]].name
        c["radius"], c["pitch"] = round(c["radius"], 3), round(c["pitch"], 4)
    return tl, cast


def ucf_group_timeline(cfg: WorldConfig, action: int, group: int, class_id: int, motion: str) -> Timeline:
    """One continuous recording of an action class (one object class doing one motion, again and
    again) in one setting; cut into the group's clips, so clips of a group share backdrop and voice."""
    rng = rng_for(cfg, "ucf", action, group)
    radius = _radius(rng, cfg)
    pitch = float(rng.uniform(0.95, 1.05))
    tl = Timeline(
        duration=cfg.ucf_clips_per_group * cfg.ucf_clip_seconds,
        backdrops=[Backdrop.random(rng, cfg.width, cfg.height)], scene_starts=[0.0], scene_backdrop=[0],
        theme=Theme.random(rng, 0.6 * cfg.theme_level), noise_seed=int(rng.integers(2**31)),
    )
    _fill_slot(rng, cfg, tl, float(rng.uniform(0.0, 0.3)), tl.duration,
               lambda r: (class_id, motion, radius, pitch, None), life=_UCF_LIFE_SECONDS, gap=(0.1, 0.5))
    # clutter: now and then an object of another class passes by, smaller, so the labelled object
    # stays the one that keeps coming back
    others = [k for k in range(cfg.n_object_classes) if k != class_id]
    t = float(rng.uniform(0.0, 2.0))
    while t < tl.duration - 0.5:
        life = float(rng.uniform(*_UCF_LIFE_SECONDS))
        if rng.uniform() < cfg.ucf_distractor_prob:
            k = others[int(rng.integers(0, len(others)))]
            m = MOTIONS[int(rng.integers(0, len(MOTIONS)))]
            r = float(rng.uniform(cfg.min_radius, 0.5 * (cfg.min_radius + cfg.max_radius)))
            x, y, vx, vy = launch(rng, cfg, m, r)
            tl.objects.append(ObjectSpec(0, k, m, r, float(rng.uniform(0.95, 1.05)), t, t + life, x, y, vx, vy))
        t += life + float(rng.uniform(0.2, 1.0))
    _renumber(tl)
    return tl


def esc_recording(cfg: WorldConfig, class_id: int, source: int) -> tuple[np.ndarray, list[list[float]]]:
    """The sound of one ESC-style source recording: an object of the class bouncing (geometrically
    shrinking intervals and levels) again and again over quiet ambience, long enough for all its takes.

    Returns audio float32 [takes * esc_clip_seconds * sr] and per take the impact times within the take.
    """
    rng = rng_for(cfg, "esc", class_id, source)
    sr = cfg.sample_rate
    take_seconds = cfg.esc_clip_seconds
    duration = cfg.esc_takes_per_source * take_seconds
    n = int(round(duration * sr))
    pitch = float(rng.uniform(0.93, 1.07))
    hit = impact_sound(OBJECT_CLASSES[class_id].sound, sr, pitch, seed=class_id)
    sounds, times = [], []
    t = float(rng.uniform(0.05, 0.6))
    while t < duration - 0.1:
        interval, level = float(rng.uniform(0.5, 0.9)), 1.0
        while interval > 0.08 and t < duration - 0.1:  # one drop: each bounce quieter and sooner
            sounds.append((t, hit, cfg.impact_level * level))
            times.append(t)
            t += interval
            interval *= cfg.restitution
            level *= 0.8
        t += float(rng.uniform(0.2, 0.8))
    background = Theme.random(rng, 0.6 * cfg.theme_level).render(n, sr) + cfg.noise_level * rng.standard_normal(n)
    audio = mix_events(n, sr, sounds, background)
    per_take = [[round(x - k * take_seconds, 6) for x in times if k * take_seconds <= x < (k + 1) * take_seconds]
                for k in range(cfg.esc_takes_per_source)]
    return audio, per_take
