"""Pretrain a method on a manifest; run again with the same --out to resume where it stopped.

CONFIG is a YAML file or the name of a bundled config (e.g. avts-tiny, avts). key=value arguments
override config keys (dotted). RUN_DIR must be new, empty, or a run folder of avssl (to resume); it
receives config.yaml (the resolved config), checkpoints/last.ckpt (every
trainer.checkpoint_every_n_steps steps and at the end; the one before is kept as last.prev.ckpt),
metrics.csv (one row per logging step) and bad_files.csv (files that failed to decode: replaced by
the next file of the epoch, and not opened again from the next epoch on). One run at a time per
RUN_DIR (RUN_DIR/.lock). A resumed run may change only trainer.max_steps and keys that do not change
a step's result (loader and logging options; see docs/training.md), and must train on the same
data (--allow-data-change continues on a changed manifest). Manifest rows with a probe error are
left out and listed in bad_files.csv (step empty).

SIGTERM or SIGINT (Ctrl-C) stops the run at the end of the current step with a checkpoint: exit 143
(SIGTERM) or 130 (SIGINT); run the same command to resume. Exit 0 done, 1 the work failed (more
bad files than data.max_failures, a bad file under --strict, a loader worker that crashed, no
loadable checkpoint, the disk full or read-only while writing), 2 bad usage or config (the message
names the key or file; also a manifest listing files that no longer exist, a RUN_DIR in use by
another run, holding other files or not writable, other data than the run trained on).

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
from typing import Any, Callable

from avssl.config.bundled import resolve_config_path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="CONFIG",
                        help="YAML config file, or a bundled config name (e.g. avts-tiny)")
    parser.add_argument("--data", required=True, metavar="MANIFEST", help="manifest from `avssl probe` (.csv or .parquet)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR",
                        help="run folder: new, empty, or a run folder of avssl (resumed when it holds a checkpoint)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. trainer.max_steps=50")
    parser.add_argument("--strict", action="store_true", help="stop with exit 1 on the first file that fails to decode, or on manifest rows with a probe error")
    parser.add_argument("--allow-data-change", action="store_true",
                        help="resume on a manifest whose training rows differ from the ones the run trained on "
                             "(refused with exit 2 otherwise)")



def run(args: argparse.Namespace) -> int:
    from avssl.methods.configs import load_config
    from avssl.train.engine import pretrain

    # Lightning logs through its own handler; without this every line also reaches the root handler
    logging.getLogger("lightning.pytorch").propagate = False
    config = load_config(resolve_config_path(args.config), args.overrides)
    code, last = run_training(lambda: pretrain(config, args.data, args.out, strict=args.strict,
                                               allow_data_change=args.allow_data_change))
    if code == 0:
        print(f"done: {last}")
    return code


def run_training(work: Callable[[], Any], logger: logging.Logger = log) -> tuple[int, Any]:
    """(0, what `work` returns), or (the exit code, None) for the ends of a training run that are not
    bugs, logged: a signal (128 + N, after its checkpoint), the work failing (1)."""
    from avssl.data.dataset import SampleFailedError
    from avssl.train.bad_files import TooManyFailuresError
    from avssl.train.checkpoint_io import CheckpointError
    from avssl.train.engine import LoaderWorkerError
    from avssl.train.run_dir import RunDirWriteError
    from avssl.train.signals import RunStopped
    from avssl.train.table import BadManifestRowsError

    try:
        return 0, work()
    except RunStopped as stopped:
        logger.warning("%s", stopped)
        return stopped.exit_code, None
    except SampleFailedError as err:
        logger.error("stopped on a bad file: %s", err)
        return 1, None
    except (TooManyFailuresError, CheckpointError, BadManifestRowsError, LoaderWorkerError, RunDirWriteError) as err:
        logger.error("%s", err)
        return 1, None
