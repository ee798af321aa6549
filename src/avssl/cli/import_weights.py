"""Import a video encoder's weights from another codebase's layout into an avssl encoder file.

WEIGHTS is a .pth/.pt file loaded with weights_only=True (tensors and plain containers only). Layouts:
torchvision (r2plus1d_18, r3d_18, mc3_18 state dicts; avssl's key names are torchvision's, the
400-class fc.* classifier is dropped), xdc (HumamAlwassel/XDC: torchvision's r2plus1d_18 layout),
gdt (facebookresearch/GDT checkpoints: the keys under video_network.base., the audio network and
heads dropped) and avid-cma (facebookresearch/AVID-CMA checkpoints: the R2Plus1D under video_model.
or feature_extractor., into avssl's avid_r2plus1d_18, which keeps upstream's structure and key
names; the audio model, projection heads and classifier dropped). The architecture (name, width,
blocks per stage) is read from the weights; --arch checks it. OUT is an avssl encoder file:
`avssl.load_encoder(OUT)` rebuilds the encoder, and a dropped key is listed in the JSON summary on
stdout.

examples:
  avssl import-weights r2plus1d_18-91a641e6.pth --layout torchvision --out r2plus1d_18_k400.pt
  avssl import-weights gdt_K400.pth --layout gdt --arch r2plus1d_18 --out gdt_video.pt
  avssl import-weights r2plus1d_18_xdc_ig65m_kinetics-f24f6ffb.pth --layout xdc --out xdc_video.pt
  avssl import-weights AVID-CMA_Kinetics_InstX-N1024-PosW-N64-Top32_checkpoint.pth.tar --layout avid-cma --out avid.pt
"""

from __future__ import annotations

import argparse
import json
import sys

LAYOUT_CHOICES = ("torchvision", "xdc", "gdt", "avid-cma")
ARCH_CHOICES = ("r2plus1d_18", "r3d_18", "mc3_18", "avid_r2plus1d_18")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", metavar="WEIGHTS", help="state dict or checkpoint file (.pth/.pt)")
    parser.add_argument("--layout", required=True, choices=LAYOUT_CHOICES, help="whose key names the file uses")
    parser.add_argument("--arch", choices=ARCH_CHOICES,
                        help="expected architecture (default: read from the weights; avid-cma gives avid_r2plus1d_18)")
    parser.add_argument("--out", required=True, metavar="OUT", help="avssl encoder file to write (.pt)")


def run(args: argparse.Namespace) -> int:
    from avssl.errors import UsageError
    from avssl.models.factory import build_encoder
    from avssl.models.state_dict import first_difference
    from avssl.models.weight_import import convert_state_dict
    from avssl.train.checkpoint_format import read_checkpoint, save_encoder

    imported = convert_state_dict(read_checkpoint(args.weights), args.layout, args.weights)
    arch = imported.architecture
    if args.arch is not None and arch["name"] != args.arch:
        raise UsageError(f"{args.weights}: --arch {args.arch}, but the weights are a {arch['name']}")
    encoder = build_encoder(arch)
    difference = first_difference(imported.state_dict, encoder.state_dict())
    if difference is not None:
        raise UsageError(f"{args.weights} does not fit avssl's {arch['name']}: {difference}")
    encoder.load_state_dict(imported.state_dict, strict=True)
    save_encoder(encoder, args.out)
    summary = {"out": args.out, "layout": args.layout, "architecture": arch, "tensors": len(imported.state_dict),
               "dropped_count": len(imported.dropped), "dropped": imported.dropped}
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0
