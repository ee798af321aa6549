"""A synthetic audio-visual world for tests and the demo: real mp4 files with ground truth (see docs/demo_world.md)."""

from avssl.data.synthetic.config import PRESETS, WorldConfig, preset
from avssl.data.synthetic.world import generate_world

__all__ = ["PRESETS", "WorldConfig", "preset", "generate_world"]
