"""Stopping a run on SIGTERM or SIGINT: the signal only asks; the run stops at the next step boundary
(all DDP ranks at the same one), saves its checkpoint there and raises RunStopped, which the command
turns into exit 128 + the signal number (143 for SIGTERM, 130 for SIGINT). A second signal of the
same kind stops the process at once (the last complete checkpoint survives: writes are atomic)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any, Optional

import lightning as L
import torch

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunStopped(Exception):
    """The run stopped on a signal after saving its checkpoint at `step` (0: nothing trained yet)."""

    def __init__(self, signum: int, step: int) -> None:
        self.signum = int(signum)
        self.step = int(step)
        super().__init__(f"stopped at step {self.step} by {signal.Signals(self.signum).name}; "
                         "run the same command to resume")

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 143 for SIGTERM, 130 for SIGINT."""
        return 128 + self.signum


class StopRequest:
    """While active (a context manager), SIGTERM and SIGINT set `signum` instead of ending the process
    (in the main thread only: Python delivers signals there). Restores the previous handlers on exit."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        self.install()
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def install(self) -> None:
        """(Re)install the handlers: also after Lightning has put its own SIGTERM handler in place."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            current = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, current)

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        name = signal.Signals(signum).name
        if self.signum == signum:
            # asked twice: stop now, as the signal would without a handler
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if not self.signum:
            self.signum = signum
        log.warning("%s received: stopping after the current step with a checkpoint (send it again to stop at "
                    "once)", name)


class StopOnSignal(L.Callback):
    """Acts on a StopRequest at step boundaries: saves the checkpoint through `checkpointer` (the run's
    CheckpointEveryNSteps) unless it holds this step already, and asks the trainer to stop. Must come
    after the checkpointer in the callback list (it counts the batch first).

    Lightning's own SIGTERM handler (received_sigterm, raising SIGTERMException at an arbitrary step)
    is replaced by the request's once training starts; a SIGTERM it caught before counts as ours.
    """

    def __init__(self, request: StopRequest, checkpointer: Any) -> None:
        self.request = request
        self.checkpointer = checkpointer
        self._step = -1
        self.stopped_at: Optional[int] = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.request.install()
        self._step = trainer.global_step
        if self._agreed_signal(trainer):
            self._stop(trainer, save=False)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step == self._step:
            return  # accumulating gradients: not a step boundary
        self._step = trainer.global_step
        if self._agreed_signal(trainer) and trainer.global_step < trainer.max_steps:
            self._stop(trainer, save=True)

    def _agreed_signal(self, trainer: L.Trainer) -> int:
        """The signal any rank received (every rank calls this at the same point, so all stop together)."""
        signum = self.request.signum
        if not signum and getattr(trainer, "received_sigterm", False):
            signum = self.request.signum = int(signal.SIGTERM)
        if trainer.world_size > 1:
            flag = torch.tensor(float(signum), device=trainer.strategy.root_device)  # NCCL reduces on the GPU
            signum = int(trainer.strategy.reduce(flag, reduce_op="max").item())
            self.request.signum = self.request.signum or signum
        return signum

    def _stop(self, trainer: L.Trainer, save: bool) -> None:
        if save and self.checkpointer.saved_step != trainer.global_step:
            self.checkpointer.save(trainer)
        self.stopped_at = trainer.global_step
        trainer.should_stop = True


def ignore_stop_signals_in_worker() -> None:
    """In a DataLoader worker: leave SIGTERM and SIGINT to the main process, which stops the run
    and shuts the workers down (a Ctrl-C or a cluster's SIGTERM reaches every process of the job)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
