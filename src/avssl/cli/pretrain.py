"""Pretrain a method on a manifest; run again with the same --out to resume where it stopped.

CONFIG is a YAML file or the name of a bundled config (e.g. avts-tiny, avts). key=value arguments
override config keys (dotted). RUN_DIR receives config.yaml (the resolved config),
checkpoints/last.ckpt (every trainer.checkpoint_every_n_steps steps and at the end; the one before
is kept as last.prev.ckpt), metrics.csv (one row per logging step) and bad_files.csv (files that
failed to decode and were replaced by the next file of the epoch). A resumed run may change only
trainer.max_steps and keys that do not change a step's result (loader and logging options; see
docs/training.md). Manifest rows with a probe error are left out and listed in bad_files.csv (step
empty). Exit 0 done, 1 the work failed (too many bad files, a bad file under --strict, a loader
worker that crashed, no loadable checkpoint), 2 bad usage or config (the message names the key or
file; also a manifest listing files that no longer exist).

Several GPUs or CPU processes: trainer.devices=N trainer.strategy=ddp; several nodes: launch the
same command on each node with torchrun or srun and trainer.num_nodes=M (see docs/training.md).

examples:
  avssl pretrain --config avts-tiny --data demo/train.csv --out runs/avts-tiny trainer.max_steps=200
  avssl pretrain --config configs/avts.yaml --data kinetics.csv --out runs/avts trainer.devices=4 trainer.strategy=ddp
  avssl pretrain --config avts-tiny --data demo/train.csv --out runs/ddp-cpu trainer.accelerator=cpu trainer.devices=2 trainer.strategy=ddp
"""

from __future__ import annotations

import argparse
import logging

from avssl.config.bundled import resolve_config_path

log = logging.getLogger(__name__)



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="CONFIG",
                        help="YAML config file, or a bundled config name (e.g. avts-tiny)")
    parser.add_argument("--data", required=True, metavar="MANIFEST", help="manifest from `avssl probe` (.csv or .parquet)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (created; resumed when it holds a checkpoint)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. trainer.max_steps=50")
    parser.add_argument("--strict", action="store_true", help="stop with exit 1 on the first file that fails to decode, or on manifest rows with a probe error")



def run(args: argparse.Namespace) -> int:
    from avssl.data.dataset import SampleFailedError
    from avssl.methods.configs import load_config
    from avssl.train.callbacks import TooManyFailuresError
    from avssl.train.checkpoint_io import CheckpointError
    from avssl.train.engine import LoaderWorkerError, pretrain
    from avssl.train.table import BadManifestRowsError

    # Lightning logs through its own handler; without this every line also reaches the root handler
    logging.getLogger("lightning.pytorch").propagate = False
    config = load_config(resolve_config_path(args.config), args.overrides)
    try:
        last = pretrain(config, args.data, args.out, strict=args.strict)
    except SampleFailedError as err:
        log.error("stopped on a bad file: %s", err)
        return 1
    except (TooManyFailuresError, CheckpointError, BadManifestRowsError, LoaderWorkerError) as err:
        log.error("%s", err)
        return 1
    print(f"done: {last}")
    return 0
