"""avssl: self-supervised audio-visual representation learning from video."""

__version__ = "0.1.0"
