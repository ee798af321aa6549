"""A synthetic audio-visual world for tests and the demo: real mp4 files with ground truth (see docs/demo_world.md)."""

from avssl.data.synthetic.config import PRESETS, WorldConfig, preset

__all__ = ["PRESETS", "WorldConfig", "preset", "generate_world"]


def generate_world(*args, **kwargs):
    """See avssl.data.synthetic.world.generate_world (imported lazily: it pulls in the encoder)."""
    from avssl.data.synthetic.world import generate_world as _generate

    return _generate(*args, **kwargs)
