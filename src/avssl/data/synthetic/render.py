"""Drawing the demo world: backdrops (tinted sky, floor, scenery) and anti-aliased shapes, in numpy.

Shapes are drawn from signed distance functions on the few pixels around each object, so a frame
costs a handful of small vectorised operations per object and no per-pixel Python loop.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

FLOOR_FRACTION = 0.88  # the floor line's height as a fraction of the frame height


@dataclass(frozen=True)
class Backdrop:
    """A static background: sky gradient and floor in one hue, plus scenery rectangles (x0, y0, x1, y1, rgb)."""

    sky_top: tuple[float, float, float]
    sky_bottom: tuple[float, float, float]
    floor: tuple[float, float, float]
    scenery: tuple[tuple[int, int, int, int, tuple[float, float, float]], ...]

    @staticmethod
    def random(rng: np.random.Generator, width: int, height: int, hue: float | None = None,
               saturation: float | None = None) -> "Backdrop":
        """A backdrop in `hue` (random when None); dim enough that the saturated objects stand out."""
        h = float(rng.uniform(0, 1)) if hue is None else hue % 1.0
        s = float(rng.uniform(0.35, 0.65)) if saturation is None else saturation
        v = float(rng.uniform(0.22, 0.34))
        floor_y = floor_line(height)
        scenery = []
        for _ in range(int(rng.integers(2, 5))):
            w = int(rng.integers(width // 10, width // 4))
            top = int(rng.integers(height // 5, floor_y - 4))
            x0 = int(rng.integers(0, width - w))
            col = _hsv(h + rng.uniform(-0.04, 0.04), s * 0.8, v + rng.uniform(-0.1, 0.12))
            scenery.append((x0, top, x0 + w, floor_y, col))
        return Backdrop(
            sky_top=_hsv(h, s, v * 0.75),
            sky_bottom=_hsv(h, s * 0.9, v * 1.3),
            floor=_hsv(h + 0.03, min(1.0, s + 0.15), v * 0.55),
            scenery=tuple(scenery),
        )

    def render(self, width: int, height: int) -> np.ndarray:
        """float32 [H, W, 3] in 0..255."""
        floor_y = floor_line(height)
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
        sky = (1 - ramp) * np.asarray(self.sky_top, np.float32) + ramp * np.asarray(self.sky_bottom, np.float32)
        img = np.repeat(sky[:, None, :], width, axis=1)
        for x0, y0, x1, y1, col in self.scenery:
            img[y0:y1, x0:x1] = col
        img[floor_y:] = self.floor
        img[floor_y:floor_y + 1] = np.asarray(self.floor, np.float32) * 1.6  # a lit floor edge
        return np.clip(img, 0, 255)

    def to_dict(self) -> dict:
        return {"sky_top": _round(self.sky_top), "sky_bottom": _round(self.sky_bottom), "floor": _round(self.floor)}


def floor_line(height: int) -> int:
    """The row of the floor: objects bounce when their bottom reaches it."""
    return int(round(FLOOR_FRACTION * height))


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return (255.0 * r, 255.0 * g, 255.0 * b)


def _round(rgb) -> list[float]:
    return [round(float(c), 1) for c in rgb]


# shape -> (half width, distance from centre to bottom) in units of the object's radius: what the
# physics collides with walls and floor, so that every shape touches the floor at its impact time
EXTENTS: dict[str, tuple[float, float]] = {
    "circle": (1.0, 1.0), "square": (0.8, 0.8), "diamond": (1.0, 1.0), "triangle": (0.866, 0.5),
    "ring": (1.0, 1.0), "cross": (1.0, 1.0), "hexagon": (1.0, 0.87), "bar": (1.0, 0.42),
}


def _signed_distance(shape: str, u: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    """Approximate signed distance (px, < 0 inside) of a shape of radius r at the origin (see EXTENTS)."""
    if shape == "circle":
        return np.hypot(u, v) - r
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.8 * r
    if shape == "diamond":
        return (np.abs(u) + np.abs(v) - r) / np.sqrt(2.0)
    if shape == "triangle":  # pointing up (image y grows downwards)
        return np.maximum.reduce([v, -0.866 * u - 0.5 * v, 0.866 * u - 0.5 * v]) - 0.5 * r
    if shape == "ring":
        return np.abs(np.hypot(u, v) - 0.7 * r) - 0.3 * r
    if shape == "cross":
        a, b = np.abs(u), np.abs(v)
        return np.minimum(np.maximum(a - r, b - 0.32 * r), np.maximum(a - 0.32 * r, b - r))
    if shape == "hexagon":
        a, b = np.abs(u), np.abs(v)
        return np.maximum(0.866 * a + 0.5 * b, b) - 0.87 * r
    if shape == "bar":
        return np.maximum(np.abs(u) - r, np.abs(v) - 0.42 * r)
    raise ValueError(f"unknown shape {shape!r}")


def draw_shape(
    img: np.ndarray, shape: str, colour: tuple[int, int, int], cx: float, cy: float, radius: float, alpha: float
) -> None:
    """Composite one shape onto img (float32 [H, W, 3], in place), centred at (cx, cy) in pixels."""
    if alpha <= 0 or radius <= 0.2:
        return
    h, w = img.shape[:2]
    reach = int(np.ceil(radius)) + 2
    x0, x1 = max(int(np.floor(cx)) - reach, 0), min(int(np.floor(cx)) + reach + 1, w)
    y0, y1 = max(int(np.floor(cy)) - reach, 0), min(int(np.floor(cy)) + reach + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
    u, v = np.broadcast_arrays(dx, dy)
    cover = np.clip(0.5 - _signed_distance(shape, u, v, radius), 0.0, 1.0) * alpha
    # light from above: the top of an object is brighter than its bottom
    shade = np.clip(1.0 - 0.25 * dy / radius, 0.7, 1.25)
    paint = np.clip(np.asarray(colour, np.float32) * shade[..., None], 0, 255)
    patch = img[y0:y1, x0:x1]
    patch += cover[..., None] * (paint - patch)
