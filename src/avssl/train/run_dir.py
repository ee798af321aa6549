"""The run folder as a resource: what a folder must be to take a run, a writability check before any
work, one run at a time (a lock the OS releases when its holder dies), and disk errors turned into
one line naming the file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from avssl.errors import UsageError

LOCK = ".lock"
CONFIG = "config.yaml"
CHECKPOINTS = "checkpoints"
# the first line of the config.yaml that `avssl pretrain` writes: it marks the folder as a run folder
CONFIG_HEADER = "# avssl pretrain: the resolved config of this run (rewritten at each start)"
# errors of the disk rather than of the work: full, read-only, no permission, over quota
DISK_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT)
# the environment variables launchers set to a process's rank: torchrun, Lightning's own launcher, srun
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


class RunDirWriteError(RuntimeError):
    """A write into the run folder failed for want of space or permission (the message names the file)."""

    def __init__(self, path: str | os.PathLike, err: OSError) -> None:
        reason = err.strerror or str(err)
        super().__init__(f"cannot write {path}: {reason} [{errno.errorcode.get(err.errno, err.errno)}]; the last "
                         "complete checkpoint is kept: free space or fix the permissions, then run the same command "
                         "to resume")
        self.path = Path(path)


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise a disk-full, read-only or permission error of a write to `path` as RunDirWriteError."""
    try:
        yield
    except OSError as err:
        if err.errno in DISK_ERRNOS:
            raise RunDirWriteError(path, err) from err
        raise


def is_launch_rank_zero() -> bool:
    """Whether this process is global rank 0 as its launcher says (torchrun, srun, Lightning's own
    launcher for the processes it starts); a process no launcher started is rank 0."""
    return all(os.environ.get(name, "0").strip() in ("", "0") for name in RANK_VARIABLES)


def is_avssl_run_dir(folder: Path) -> bool:
    """A folder `avssl pretrain` wrote: it has checkpoints/, or a config.yaml with avssl's header."""
    if (folder / CHECKPOINTS).is_dir():
        return True
    config = folder / CONFIG
    if not config.is_file():
        return False
    try:
        with open(config, encoding="utf-8", errors="replace") as f:
            return f.readline().rstrip("\n") == CONFIG_HEADER
    except OSError:
        return False


def check_run_dir(folder: Path) -> None:
    """A run goes into a folder that is new, empty, or a run folder of avssl to resume; anything else
    (a user's folder with other files) is a UsageError naming the folder and one of its files."""
    if not folder.exists():
        if folder.is_symlink():
            raise UsageError(f"--out {folder} is a broken symbolic link")
        return
    if not folder.is_dir():
        raise UsageError(f"--out {folder} is a file, not a folder: give a new folder, or a run folder to resume")
    if is_avssl_run_dir(folder):
        return
    others = sorted(p.name for p in folder.iterdir() if p.name != LOCK)
    if others:
        raise UsageError(
            f"--out {folder} holds other files (e.g. {others[0]}) and is not an avssl run folder (no "
            f"{CHECKPOINTS}/ nor a config.yaml written by avssl): a run would overwrite them. Give a new or "
            "empty folder")


def check_writable(folder: Path) -> None:
    """Create `folder` (and its checkpoints/) and write a file there, or UsageError naming the path."""
    target = folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / CHECKPOINTS
        target.mkdir(exist_ok=True)
        probe = target / f".write-test.{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"avssl")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"--out {folder}: cannot write {err.filename or target} ({err.strerror or err}); "
                         "give a folder on a writable disk with free space") from None


class RunDirLock:
    """An exclusive lock on RUN_DIR/.lock (flock: released by the OS when the holder exits, even by
    kill -9, so a lock is never stale); the holder's pid, host and start time are written into it.

    flock needs a filesystem that supports it across machines when several nodes share RUN_DIR (NFS
    v4 does; Lustre needs the `flock` mount option).
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        with disk_errors(self.path):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 1000).decode("utf-8", errors="replace").strip() or "a process that wrote nothing"
            os.close(fd)
            raise UsageError(f"--out {self.path.parent} is in use by another run ({holder}): one run at a time per "
                             "run folder; wait for it to end or give another --out") from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}, since {started}\n".encode())
        self._fd = fd

    def release(self) -> None:
        # the file stays: removing it would let a waiting opener lock an orphaned inode
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def claim_run_dir(folder: Path) -> Iterator[None]:
    """On global rank 0: check the folder may take the run, that it is writable, and hold its lock
    for the duration. Other ranks do nothing: their rank 0 holds the lock for the whole job (and
    Lightning's launcher starts them only once rank 0 trains)."""
    if not is_launch_rank_zero():
        yield
        return
    check_run_dir(folder)
    check_writable(folder)
    lock = RunDirLock(folder)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
