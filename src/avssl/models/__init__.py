"""Networks: video and audio encoders, heads, audio-visual fusion (AMFM, CGRA), state-dict matching. Plain torch."""

from avssl.models.alignment import CGRA, cgra_loss, co_correlation
from avssl.models.audio import AudioResNet, AudioVGG
from avssl.models.classifier import AVClassifier, build_av_classifier
from avssl.models.factory import (
    audio_encoder_names,
    build_audio_encoder,
    build_encoder,
    build_video_encoder,
    video_encoder_names,
)
from avssl.models.fusion import AMFM, FusionOutput, tokens_from_map
from avssl.models.heads import (
    ClipPretextHead,
    LagPretextHead,
    LinearClassifier,
    ProjectionMLP,
    TuplePretextHead,
    order_num_classes,
)
from avssl.models.state_dict import CheckpointMismatchError
from avssl.models.video import VideoResNet, midplanes_2plus1d
from avssl.models.video_avid import AvidR2Plus1D

__all__ = [
    "AMFM",
    "AVClassifier",
    "AudioResNet",
    "AudioVGG",
    "AvidR2Plus1D",
    "CGRA",
    "CheckpointMismatchError",
    "ClipPretextHead",
    "FusionOutput",
    "LagPretextHead",
    "LinearClassifier",
    "ProjectionMLP",
    "TuplePretextHead",
    "VideoResNet",
    "audio_encoder_names",
    "build_audio_encoder",
    "build_av_classifier",
    "build_encoder",
    "build_video_encoder",
    "cgra_loss",
    "co_correlation",
    "midplanes_2plus1d",
    "order_num_classes",
    "tokens_from_map",
    "video_encoder_names",
]
