"""avssl: self-supervised audio-visual representation learning from video.

`avssl.load(PATH)` (a run dir, a checkpoint, an export dir or random:CONFIG) gives a model with
`embed_video`, `embed_audio`, `video_encoder` and `audio_encoder` (avssl.evaluate.pretrained);
`avssl.load_encoder(PATH, prefix=...)` one encoder as a plain nn.Module
(avssl.train.checkpoint_format). Both are imported on first use, so `import avssl` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it (imported on first access)
_LAZY = {
    "load": "avssl.evaluate.pretrained",
    "load_encoder": "avssl.train.checkpoint_format",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'avssl' has no attribute {name!r}")
