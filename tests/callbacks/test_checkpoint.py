"""Checkpoint writes: staged in the run folder, never a ``.tmp`` left behind by a failed write."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from rlcamp.train import run_job, train

TINY = [
    "total_env_steps=64",
    "env.n_envs=2",
    "algo.n_steps=32",
    "algo.n_minibatches=2",
    "algo.update_epochs=1",
]


def test_checkpoints_are_staged_in_the_run_folder_not_in_tmpdir(make_cfg, tmp_path, monkeypatch):
    """A full $TMPDIR (every temporary file refused) does not stop checkpoints."""

    def full_tmpdir(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full_tmpdir)
    summary, _ = train(make_cfg(*TINY, output_dir=tmp_path / "run"))
    assert summary["status"] == "completed"
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["last.ckpt"]


def test_a_full_disk_at_a_checkpoint_leaves_no_tmp_and_the_summary_is_written(
    make_cfg, tmp_path, monkeypatch
):
    """The disk fills while the checkpoint is flushed: its ``.tmp`` goes, which frees the space the
    failure's ``summary.json`` needs (the fake disk stays full while a ``.tmp`` is there)."""
    fsync, write_text = os.fsync, Path.write_text
    checkpoints = tmp_path / "run" / "checkpoints"

    def full_disk_fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".ckpt.tmp"):
            raise OSError(28, "No space left on device")
        return fsync(fd)

    def write_text_if_room(self, *args, **kwargs):
        if any(checkpoints.glob("*.tmp")):
            raise OSError(28, "No space left on device")
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", full_disk_fsync)
    monkeypatch.setattr(Path, "write_text", write_text_if_room)
    with pytest.raises(SystemExit) as exit_info:
        run_job(make_cfg(*TINY, output_dir=tmp_path / "run"))
    message = str(exit_info.value)
    assert message.startswith(f"rlcamp-train: error: [Errno 28] could not write {checkpoints}/last.ckpt")
    assert "\n" not in message
    assert list(checkpoints.iterdir()) == []
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"
