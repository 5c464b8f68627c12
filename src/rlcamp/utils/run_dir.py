"""One process per run folder at a time, and a run's own record kept when a command is refused.

``RunDirLock`` holds an exclusive ``flock`` on ``<run dir>/run.lock`` while a run trains; the
kernel releases it when the holder ends, however it ends (SIGKILL included), so no stale lock is
left behind. The file names its holder while one holds it and is empty otherwise. Hydra rewrites
``.hydra/*.yaml`` (and opens the job's log) before the job runs; ``KeepRunRecord`` takes a copy
of them first, and ``restore_run_record`` puts it back when ``rlcamp-train`` refuses the
command, so the folder keeps recording the run that is in it. ``RunFolderCheck`` refuses, before
Hydra makes it, a run folder that cannot be created or written. Nothing here imports torch: these
run before a job's config is checked.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rlcamp.errors import ConfigError, RunDirBusyError

LOCK_NAME = "run.lock"


class RunDirLock:
    """``with RunDirLock(run_dir):`` this process alone writes ``run_dir``; another one is refused
    with ``RunDirBusyError`` naming the holder (pid, host and start time, read from the lock file)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir, LOCK_NAME)
        self.fd: int | None = None

    def __enter__(self) -> RunDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunDirBusyError(
                f"{self.path.parent} is in use by {holder}; wait for that run to end, or write "
                "elsewhere (another hydra.run.dir or task_name)"
            ) from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode())
        self.fd = fd
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # at rest the file is empty: a command leaves it as it found it
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None


def hpc_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``hpc_ckpt_<n>.ckpt`` in ``output_dir``: Lightning's SLURM handler saves it there
    on SIGUSR1 before a requeue, and Lightning's ``fit`` resumes from it by itself when given no
    checkpoint under SLURM."""
    numbers = {p: p.stem.removeprefix("hpc_ckpt_") for p in Path(output_dir).glob("hpc_ckpt_*.ckpt")}
    numbered = [(int(n), p) for p, n in numbers.items() if n.isdigit()]
    return max(numbered)[1] if numbered else None


# run dir -> its record files' bytes, taken before Hydra rewrote them (this process's jobs)
_RECORDS: dict[Path, dict[Path, bytes]] = {}


def record_files(run_dir: Path) -> list[Path]:
    """The files Hydra writes into a run folder when a job starts: ``.hydra/*`` and the job's log."""
    return sorted(p for p in [*run_dir.glob(".hydra/*"), *run_dir.glob("*.log")] if p.is_file())


def snapshot_run_record(run_dir: str | Path) -> None:
    """Keep the bytes of the record of the run already in ``run_dir`` (nothing for a new folder)."""
    run_dir = Path(run_dir).resolve()
    if (run_dir / ".hydra").is_dir():
        _RECORDS[run_dir] = {path: path.read_bytes() for path in record_files(run_dir)}


def restore_run_record(run_dir: str | Path) -> None:
    """Put back the record ``snapshot_run_record`` kept, and drop record files written since."""
    run_dir = Path(run_dir).resolve()
    saved = _RECORDS.get(run_dir)
    if saved is None:
        return
    for path in record_files(run_dir):
        if path not in saved:
            path.unlink()
    for path, data in saved.items():
        path.write_bytes(data)


def check_folder(directory: Path) -> None:
    """``directory`` (or its nearest existing parent) must be a writable folder, so that a
    read-only folder, or a file in the way, is found now rather than at the first write."""
    existing = next(d for d in (directory, *directory.parents) if d.exists())
    if not existing.is_dir():
        raise ConfigError(
            f"{directory} cannot be created: {existing} is a file, not a folder; "
            "write elsewhere (paths.log_dir=..., hydra.run.dir=...)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{existing} is not writable, so the run could not save its checkpoints and metrics there; "
            "fix its permissions or write elsewhere (paths.log_dir=..., hydra.run.dir=...)"
        )


class RunFolderCheck(Callback):
    """Hydra callback: the run (or sweep) folder Hydra is about to create must be creatable and
    writable (``check_folder``), else ``rlcamp-<app>: error: ...`` in one line, exit 1, instead
    of the traceback of Hydra's own ``mkdir``."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, kwargs.get("config_name"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, kwargs.get("config_name"))

    @staticmethod
    def _check(directory: str, config_name: str | None) -> None:
        try:
            check_folder(Path(str(directory)))
        except ConfigError as err:
            sys.exit(f"rlcamp-{config_name or 'train'}: error: {err}")


class KeepRunRecord(Callback):
    """Registered in ``conf/hydra/default.yaml``: snapshot the record of the run folder (a run) or
    of every job folder of the sweep folder (a multirun) before Hydra writes a job's ``.hydra/``.

    The snapshot lives in this process, so jobs that a launcher runs elsewhere (submitit) are not
    covered."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        snapshot_run_record(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        for job_dir in Path(config.hydra.sweep.dir).glob("*/"):
            snapshot_run_record(job_dir)
