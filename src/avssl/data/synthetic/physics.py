"""Event-driven ballistic motion with floor and wall bounces, solved exactly (no time steps).

Impact times are exact roots, not frame-quantised, so the sound of a bounce can be placed on the
sample where it happens while the video shows the object touching the floor on the nearest frame.
Coordinates are image pixels (y grows downwards); the floor is a horizontal line, the walls are the
frame's left and right edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_MAX_EVENTS = 10_000  # a guard only: resting and the speed thresholds end every bounce sequence
_MIN_SOUND_SPEED = 8.0  # px/s: slower contacts are silent and not reported


@dataclass(frozen=True)
class Arena:
    width: float
    floor_y: float
    gravity: float
    restitution: float
    wall_restitution: float
    rest_speed: float


@dataclass(frozen=True)
class Impact:
    time: float
    kind: str  # "floor" or "wall"
    speed: float  # normal speed at impact, px/s


@dataclass
class Trajectory:
    """Piecewise motion: segment i starts at t0[i] at (x0, y0) with velocity (vx, vy), acceleration (0, ay)."""

    t0: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    ay: np.ndarray

    def position(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions [N] x and y at times [N] (times before the first segment use the first)."""
        t = np.asarray(t, dtype=np.float64)
        i = np.clip(np.searchsorted(self.t0, t, side="right") - 1, 0, len(self.t0) - 1)
        dt = t - self.t0[i]
        x = self.x0[i] + self.vx[i] * dt
        y = self.y0[i] + self.vy[i] * dt + 0.5 * self.ay[i] * dt * dt
        return x, y


def _time_to_floor(y: float, vy: float, floor: float, g: float) -> float:
    """Seconds until a falling or rising object under gravity g reaches the floor (0 when on it, moving down)."""
    disc = vy * vy + 2.0 * g * max(floor - y, 0.0)
    s_floor = (-vy + math.sqrt(disc)) / g
    return 0.0 if s_floor <= 1e-12 else s_floor


def _time_to_wall(x: float, vx: float, left: float, right: float) -> float:
    """Seconds until the object's centre reaches the wall it moves towards (inf when it does not move)."""
    if vx > 0:
        return max((right - x) / vx, 0.0)
    if vx < 0:
        return max((left - x) / vx, 0.0)
    return math.inf


def simulate(
    arena: Arena, half_width: float, bottom: float, t_start: float, t_end: float,
    x: float, y: float, vx: float, vy: float,
) -> tuple[Trajectory, list[Impact]]:
    """Move an object's centre from (x, y) with velocity (vx, vy) at t_start until t_end.

    The object touches a wall when its centre is `half_width` from it and the floor when its centre
    is `bottom` above it. Returns the trajectory and the impacts (floor and wall) in time order.
    """
    floor = arena.floor_y - bottom
    left, right = half_width, arena.width - half_width
    g = arena.gravity
    y = min(y, floor)
    x = min(max(x, left), right)
    resting = y >= floor - 1e-9 and abs(vy) < arena.rest_speed
    if resting:
        y, vy = floor, 0.0
    t = t_start
    segments: list[tuple[float, float, float, float, float, float]] = []
    impacts: list[Impact] = []
    for _ in range(_MAX_EVENTS):
        ay = 0.0 if resting else g
        segments.append((t, x, y, vx, vy, ay))
        s_floor = math.inf if resting else _time_to_floor(y, vy, floor, g)
        s_wall = _time_to_wall(x, vx, left, right)
        s = min(s_floor, s_wall)
        if t + s >= t_end:
            break
        # advance to the event
        x = x + vx * s
        y = y + vy * s + 0.5 * ay * s * s
        vy = vy + ay * s
        t = t + s
        if s_floor <= s_wall:
            speed = abs(vy)
            y = floor
            vy = -arena.restitution * speed
            if speed >= _MIN_SOUND_SPEED:
                impacts.append(Impact(t, "floor", speed))
            if abs(vy) < arena.rest_speed:
                resting, vy = True, 0.0
        else:
            speed = abs(vx)
            x = right if vx > 0 else left
            vx = -arena.wall_restitution * vx
            if speed >= _MIN_SOUND_SPEED:
                impacts.append(Impact(t, "wall", speed))
            if abs(vx) < _MIN_SOUND_SPEED:
                vx = 0.0
    cols = np.array(segments, dtype=np.float64).T
    return Trajectory(*cols), impacts
