"""Sound-source heatmaps over a video's frames: where the model places what it hears.

Per window of the model's clip length (every --stride seconds), the audio window's embedding is
compared (cosine) with the video encoder's feature map before pooling, projected into the joint space
position by position, averaged over the window's time and upsampled onto the frames. The encoder sees
the whole frame (not the training centre crop) with its short side at --scale x the size the model
was trained at (1: objects at their training size; 2: a map twice as fine). --map contrast
subtracts from each position's similarity its mean similarity with the file's other audio windows.
--map occlusion stills one --patch x --patch px square of the clip at a time (each pixel replaced by
its mean over the window's frames) and maps how much the whole clip's agreement with the window's
audio drops: which motion the sound goes with (one forward pass per square and window: slower);
occlusion-contrast subtracts the mean drop with the file's other audio windows. --map gradient maps,
at every input pixel, how strongly the window's sync margin (its own audio against the same file's
audio half a window earlier and later) depends on it: the magnitude of the margin's gradient, summed
over colour and the window's frames (one backward pass per batch of windows).

Writes into --out: maps.npz (`maps` float32 [N, H, W] at frame size, `times` [N] window starts in
seconds, `window_seconds`), overlays/window_NNNN_<start>s.png (the frame at each window's centre
under its map), heatmap.mp4 (every frame under its window's map, with the original audio).

examples:
  avssl localize clip.mp4 --model runs/avts/checkpoints/last.ckpt --out where/
  avssl localize clip.mp4 --model random:avts-tiny --out where-random/ --stride 0.5 --scale 2
"""

from __future__ import annotations

import argparse
import math

from avssl.errors import UsageError
from avssl.models.device import DEVICE_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="VIDEO", help="a media file with video and audio")
    parser.add_argument("--model", required=True, metavar="M",
                        help="a .ckpt of `avssl pretrain`, or random:CONFIG (e.g. random:avts-tiny)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for maps.npz, overlays/, heatmap.mp4")
    parser.add_argument("--stride", type=float, metavar="S", help="seconds between windows (default: the window length)")
    parser.add_argument("--scale", type=float, default=1.0, metavar="X",
                        help="frame short side as a multiple of the training one (default 1)")
    parser.add_argument("--map", default="raw",
                        help="raw: cosine of each position with the window's audio; contrast: minus its mean "
                             "cosine with the file's other audio windows; occlusion(-contrast): the drop of the "
                             "clip's agreement with its audio when a square is stilled; gradient: how strongly "
                             "the window's sync margin depends on each pixel (default raw)")
    parser.add_argument("--patch", type=int, metavar="PX",
                        help="side of the stilled square for --map occlusion (default: a sixth of the short side)")
    parser.add_argument("--batch-size", type=int, default=16, metavar="N", help="windows per forward pass")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def check_arguments(args: argparse.Namespace) -> None:
    from avssl.evaluate.localize import MODES

    if args.map not in MODES:
        raise UsageError(f"--map must be one of {', '.join(MODES)}, got {args.map!r}")
    for option in ("stride", "scale"):
        value = getattr(args, option)
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise UsageError(f"--{option} must be a positive number, got {value}")
    if args.patch is not None and not args.map.startswith("occlusion"):
        raise UsageError(f"--patch applies to --map occlusion or occlusion-contrast, not --map {args.map}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")


def run(args: argparse.Namespace) -> int:
    from avssl.cli.outputs import check_output
    from avssl.evaluate.av_model import load_av_model
    from avssl.evaluate.localize import localize_file
    from avssl.evaluate.localize_output import write_outputs
    from avssl.media import MediaError
    from avssl.models.device import resolve_device

    check_arguments(args)
    if args.out:
        check_output(args.out, "--out", folder=True)
    args.device = resolve_device(args.device)
    loaded = load_av_model(args.model, args.device)
    try:
        result = localize_file(loaded, args.path, args.stride, args.scale, args.batch_size, args.map, args.patch)
        written = write_outputs(result, args.out)
    except MediaError as err:
        raise UsageError(str(err)) from None
    n, h, w = result.maps.shape
    frames = f"{result.input_size[0]}x{result.input_size[1]} frames"
    if args.map.startswith("occlusion"):
        source = f"stilled squares over {frames}"
    elif args.map == "gradient":
        source = f"input gradients over {frames}"
    else:
        source = f"encoder map {result.map_size[0]}x{result.map_size[1]} from {frames}"
    print(f"{args.path}: {n} windows of {result.window_seconds:g} s, maps {h}x{w} ({source})")
    print(f"wrote {written['maps']}, {len(written['overlays'])} overlays, {written['video']}")
    return 0
