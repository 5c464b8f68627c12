"""Bad input fails before any env is built, in one line naming the key and the fix, and touches nothing.

Every case runs ``train`` (and the job wrapper) with the output directory pointing at an existing,
finished run, and some resume from that run's checkpoint: afterwards every file of that run must
be byte-for-byte what it was.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlcamp.config_checks import check_run_keys
from rlcamp.envs.checks import check_env_keys
from rlcamp.envs.factory import VecEnvFactory
from rlcamp.train import run_job, train
from rlcamp.utils.validation import check_algo_keys
from tests.helpers.config import compose_train, config_options

TINY = [
    "total_env_steps=256",
    "env.n_envs=2",
    "algo.n_steps=32",
    "algo.n_minibatches=2",
    "algo.update_epochs=1",
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A completed run directory (metrics, summary, checkpoint), shared by all cases."""
    from tests.helpers.config import compose_train

    run_dir = tmp_path_factory.mktemp("existing_run")
    train(compose_train([*TINY, "callbacks.progress=null"], run_dir))
    return run_dir


def snapshot(directory):
    return {
        p.relative_to(directory): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def corrupt_copy(run_dir, tmp_path, monkeypatch):
    path = tmp_path / "corrupt.ckpt"
    data = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def foreign_copy(run_dir, tmp_path, monkeypatch):
    """A valid torch file that rlcamp-train did not write."""
    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, path)
    return path


def no_mujoco(run_dir, tmp_path, monkeypatch):
    """Make ``mujoco`` unimportable and forget gymnasium's MuJoCo env modules."""
    monkeypatch.setitem(sys.modules, "mujoco", None)
    for name in [m for m in sys.modules if m.startswith("gymnasium.envs.mujoco.")]:
        monkeypatch.delitem(sys.modules, name)


def text_file(run_dir, tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")


def read_only(name):
    """Make ``os.access`` report directories called ``name`` as not writable (tests run as root)."""

    def setup(run_dir, tmp_path, monkeypatch):
        access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != name and access(path, mode))

    return setup


def plain_pickle(run_dir, tmp_path, monkeypatch):
    (tmp_path / "junk.pkl").write_bytes(pickle.dumps({"not": "a checkpoint"}))


def no_cuda(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# (overrides, expected message fragment, setup); "{run}" is the existing run, "{tmp}" a scratch dir
CASES = {
    "gamma_zero": (["algo.gamma=0"], "algo.gamma=0 must be in (0, 1]", None),
    "gamma_above_one": (["algo.gamma=1.5"], "algo.gamma=1.5 must be in (0, 1]", None),
    "lambda_negative": (["algo.gae_lambda=-0.1"], "algo.gae_lambda=-0.1 must be in [0, 1]", None),
    "lambda_above_one": (["algo.gae_lambda=1.2"], "algo.gae_lambda=1.2 must be in [0, 1]", None),
    "clip_zero": (["algo.clip_range=0"], "algo.clip_range=0 must be > 0", None),
    "clip_negative": (["algo.clip_range=-0.2"], "algo.clip_range=-0.2 must be > 0", None),
    "clip_vf_zero": (["algo.clip_range_vf=0"], "algo.clip_range_vf=0 must be > 0 or null", None),
    "lr_zero": (["algo.optimizer.lr=0"], "algo.optimizer.lr=0 must be > 0", None),
    "lr_negative": (["algo.optimizer.lr=-0.001"], "algo.optimizer.lr=-0.001 must be > 0", None),
    "n_envs_zero": (["env.n_envs=0"], "env.n_envs=0: need at least 1 environment", None),
    "n_envs_negative": (["env.n_envs=-3"], "env.n_envs=-3: need at least 1 environment", None),
    "n_steps_zero": (["algo.n_steps=0"], "algo.n_steps=0 must be >= 1", None),
    "update_epochs_zero": (["algo.update_epochs=0"], "algo.update_epochs=0 must be >= 1", None),
    "minibatches_not_dividing": (
        ["algo.n_minibatches=3"],
        "does not split into algo.n_minibatches=3; pick a divisor",
        None,
    ),
    "budget_below_one_rollout": (
        ["total_env_steps=10"],
        "total_env_steps=10 is smaller than one rollout (64)",
        None,
    ),
    "max_grad_norm_zero": (["algo.max_grad_norm=0"], "algo.max_grad_norm=0 must be > 0 or null", None),
    "vectorization_typo": (
        ["env.vectorization=parallel"],
        "env.vectorization='parallel': use 'sync' or 'async'",
        None,
    ),
    "nan_policy_typo": (
        ["env.nan_policy=ignore"],
        "env.nan_policy='ignore': use 'raise' or 'terminate'",
        None,
    ),
    "env_id_typo": (
        ["env.id=CartPol-v1"],
        "env.id: unknown env id 'CartPol-v1'; did you mean CartPole-v1",
        None,
    ),
    "env_id_unknown": (
        ["env.id=NoSuchEnv-v0"],
        "env.id: unknown env id 'NoSuchEnv-v0'; see gymnasium.pprint_registry()",
        None,
    ),
    "action_space_unsupported": (
        ["env.id=tests.helpers.envs:TupleActionEnv"],
        "has action space Tuple; rlcamp supports Discrete",
        None,
    ),
    "mujoco_missing": (
        ["env=hopper"],
        "env.id=Hopper-v5 needs MuJoCo, which is not installed: pip install -e '.[mujoco]'",
        no_mujoco,
    ),
    "gpu_without_cuda": (["trainer=gpu"], "trainer.accelerator=gpu but torch", no_cuda),
    "gamma_not_a_number": (["algo.gamma=abc"], "algo.gamma='abc' must be a number", None),
    "n_envs_not_an_integer": (["env.n_envs=2.5"], "env.n_envs=2.5 must be an integer", None),
    "seed_not_a_number": (["seed=abc"], "seed='abc' must be an integer, e.g. seed=1", None),
    "seed_a_float": (["seed=1.5"], "seed=1.5 must be an integer", None),
    "num_threads_negative": (["num_threads=-1"], "num_threads=-1 must be an integer >= 0", None),
    "max_episode_steps_zero": (
        ["env.max_episode_steps=0"],
        "env.max_episode_steps=0 must be >= 1 or null",
        None,
    ),
    "unknown_algo_key": (["+algo.lrr=1"], "algo.lrr is not a setting of PPO; did you mean", None),
    "unknown_env_key": (
        ["+env.n_env=1"],
        "env.n_env is not a setting of VecEnvFactory; did you mean: n_envs",
        None,
    ),
    "unknown_env_kwarg": (
        ["+env.kwargs.bogus=1"],
        "env.kwargs.bogus is not a parameter of CartPole-v1",
        None,
    ),
    "seed_negative": (["seed=-1"], "seed=-1 must be in [0, 4294967295] (an unsigned 32-bit seed)", None),
    "seed_too_large": (["seed=4294967296"], "seed=4294967296 must be in [0, 4294967295]", None),
    "render_mode_kwarg": (
        ["+env.kwargs.render_mode=human"],
        "env.kwargs.render_mode is chosen by rlcamp (rgb_array frames for videos, none for training)",
        None,
    ),
    "video_of_an_env_without_frames": (
        [
            "env.id=tests.helpers.envs:CountingEnv",
            "callbacks.eval.every_env_steps=64",
            "callbacks.eval.video=true",
        ],
        "cannot render rgb_array frames (no render_mode parameter or mode); set callbacks.eval.video=false",
        None,
    ),
    "rollout_larger_than_memory": (
        ["algo.n_steps=10000000000", "total_env_steps=100000000000000"],
        "GiB, more than this machine's",
        None,
    ),
    "run_folder_under_a_file": (
        ["ckpt_path={run}/checkpoints/last.ckpt", "callbacks.checkpoint.dirpath={tmp}/afile/checkpoints"],
        "afile is a file, not a folder; write elsewhere (paths.log_dir=..., hydra.run.dir=...)",
        lambda run, tmp, mp: (tmp / "afile").write_text(""),
    ),
    "checkpoint_a_text_file": (
        ["ckpt_path={tmp}/notes.txt"],
        "notes.txt is not a readable checkpoint",
        text_file,
    ),
    "read_only_checkpoints": (
        ["ckpt_path={run}/checkpoints/last.ckpt"],
        "checkpoints is not writable, so the run could not save its checkpoints",
        read_only("checkpoints"),
    ),
    "read_only_run_dir": (
        ["ckpt_path={run}/checkpoints/last.ckpt"],
        "is not writable, so the run could not save its checkpoints and metrics there; fix its",
        read_only("existing_run0"),
    ),
    "checkpoint_a_plain_pickle": (
        ["ckpt_path={tmp}/junk.pkl"],
        "junk.pkl is not a readable checkpoint (not a file torch.save wrote",
        plain_pickle,
    ),
    "fresh_run_over_an_existing_run": ([], "already holds a run", None),
    "other_checkpoint_into_an_existing_run": (
        ["ckpt_path={tmp}/copy/checkpoints/last.ckpt"],
        "already holds a run",
        lambda run, tmp, mp: shutil.copytree(run, tmp / "copy"),
    ),
    "checkpoint_missing": (
        ["ckpt_path={tmp}/nope/last.ckpt"],
        "nope/last.ckpt does not exist; pass ckpt_path=",
        None,
    ),
    "checkpoint_corrupt": (
        ["ckpt_path={tmp}/corrupt.ckpt"],
        "corrupt.ckpt is not a readable checkpoint",
        corrupt_copy,
    ),
    "checkpoint_foreign": (
        ["ckpt_path={tmp}/foreign.ckpt"],
        "foreign.ckpt was not written by rlcamp-train",
        foreign_copy,
    ),
    "checkpoint_other_spaces": (
        ["env=acrobot", "ckpt_path={run}/checkpoints/last.ckpt"],
        "env.id: 'CartPole-v1' -> 'Acrobot-v1'",
        None,
    ),
    "checkpoint_other_network": (
        ["network.hidden_sizes=[32]", "ckpt_path={run}/checkpoints/last.ckpt"],
        "belongs to another run (network.hidden_sizes: [64, 64] -> [32]); resume with the checkpoint's",
        None,
    ),
    "checkpoint_other_seed": (
        ["seed=2", "ckpt_path={run}/checkpoints/last.ckpt"],
        "belongs to another run (seed: 1 -> 2); resume with the checkpoint's settings, start a fresh run",
        None,
    ),
    "checkpoint_other_algo": (
        ["algo._target_=rlcamp.algos.REINFORCE", "ckpt_path={run}/checkpoints/last.ckpt"],
        "(algo._target_: 'rlcamp.algos.PPO' -> 'rlcamp.algos.REINFORCE'",
        None,
    ),
    "checkpoint_a2c": (
        ["algo._target_=rlcamp.algos.A2C", "ckpt_path={run}/checkpoints/last.ckpt"],
        "algo._target_",
        None,
    ),
    "checkpoint_trpo": (
        ["algo._target_=rlcamp.algos.TRPO", "ckpt_path={run}/checkpoints/last.ckpt"],
        "algo._target_",
        None,
    ),
    "checkpoint_shared_network": (
        ["network=mlp_shared", "ckpt_path={run}/checkpoints/last.ckpt"],
        "network.shared: False -> True",
        None,
    ),
    "checkpoint_other_activation": (
        ["network.activation=tanh", "ckpt_path={run}/checkpoints/last.ckpt"],
        "network.activation: 'relu' -> 'tanh'",
        None,
    ),
    "checkpoint_other_n_envs": (
        ["env.n_envs=4", "ckpt_path={run}/checkpoints/last.ckpt"],
        "env.n_envs: 2 -> 4); resume with",
        None,
    ),
    "checkpoint_other_lr": (
        ["algo.optimizer.lr=0.001", "ckpt_path={run}/checkpoints/last.ckpt"],
        "resume.allow_changes=[algo.optimizer.lr]",
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_in_one_line_before_any_env_and_touches_nothing(
    case, finished_run, make_cfg, tmp_path, monkeypatch
):
    overrides, expected, setup = CASES[case]
    if setup is not None:
        setup(finished_run, tmp_path, monkeypatch)
    overrides = [o.format(run=finished_run, tmp=tmp_path) for o in overrides]
    before = snapshot(finished_run)
    built = []
    monkeypatch.setattr(VecEnvFactory, "__call__", lambda self, *a, **k: built.append(1))
    cfg = make_cfg(*TINY, *overrides, output_dir=finished_run)

    with pytest.raises(ValueError) as err:
        train(cfg)
    message = str(err.value)
    assert expected in message, message
    assert "\n" not in message
    with pytest.raises(SystemExit) as exit_info:
        run_job(cfg)
    assert str(exit_info.value) == f"rlcamp-train: error: {message}"
    assert not built, "no vector env may be built"
    assert snapshot(finished_run) == before


def test_a_good_config_passes_validation(finished_run, make_cfg, tmp_path):
    """The same machinery accepts a sound resume of the existing run (and then trains)."""
    shutil.copytree(finished_run, tmp_path / "copy")
    summary, _ = train(
        make_cfg(
            *TINY,
            "total_env_steps=320",
            f"ckpt_path={tmp_path}/copy/checkpoints/last.ckpt",
            output_dir=tmp_path / "resumed",
        )
    )
    assert summary["env_steps"] == 320


def test_resume_allow_changes_lets_a_deliberate_change_through(finished_run, make_cfg, tmp_path):
    shutil.copytree(finished_run, tmp_path / "copy")
    summary, _ = train(
        make_cfg(
            *TINY,
            "total_env_steps=320",
            "env.n_envs=4",
            "resume.allow_changes=[env.n_envs]",
            f"ckpt_path={tmp_path}/copy/checkpoints/last.ckpt",
            output_dir=tmp_path / "resumed",
        )
    )
    assert summary["env_steps"] == 256 + 4 * 32


def test_a_full_disk_ends_in_one_line_and_leaves_no_tmp_summary(make_cfg, tmp_path, monkeypatch):
    write_text = Path.write_text

    def full_disk(self, *args, **kwargs):
        if self.name == "summary.json.tmp":
            write_text(self, "")
            raise OSError(28, "No space left on device")
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(SystemExit) as exit_info:
        run_job(make_cfg(*TINY, "total_env_steps=64", output_dir=tmp_path / "run"))
    message = str(exit_info.value)
    assert message.startswith(f"rlcamp-train: error: [Errno 28] could not write {tmp_path}/run/summary.json")
    assert "\n" not in message and "free disk space" in message
    assert not (tmp_path / "run" / "summary.json.tmp").exists()


@pytest.mark.parametrize("algo", config_options("algo"))
@pytest.mark.parametrize("env", ["cartpole", "pendulum"])
def test_every_shipped_algo_config_passes_the_key_and_type_checks(algo, env, tmp_path):
    cfg = compose_train([f"algo={algo}", f"env={env}"], tmp_path)
    check_run_keys(cfg)
    check_env_keys(cfg)
    check_algo_keys(cfg)


def test_a_refused_start_leaves_a_crashed_run_without_summary_alone(finished_run, make_cfg, tmp_path):
    crashed = tmp_path / "crashed"
    shutil.copytree(finished_run, crashed)
    (crashed / "summary.json").unlink()
    before = snapshot(crashed)
    with pytest.raises(SystemExit, match="already holds a run"):
        run_job(make_cfg(*TINY, output_dir=crashed))
    assert snapshot(crashed) == before


def test_a_fresh_start_never_picks_up_a_slurm_hpc_checkpoint(finished_run, make_cfg, tmp_path):
    """A folder a SIGUSR1 requeue left with Lightning's ``hpc_ckpt_1.ckpt`` (and no
    ``checkpoints/last.ckpt``): a fresh start there is refused in one line and touches nothing;
    ``ckpt_path=last`` resumes from it, names it in ``resumed_from`` and keeps its metrics."""
    requeued = tmp_path / "requeued"
    requeued.mkdir()
    shutil.copy(finished_run / "checkpoints" / "last.ckpt", requeued / "hpc_ckpt_1.ckpt")
    shutil.copy(finished_run / "metrics.csv", requeued / "metrics.csv")
    (requeued / "run.lock").touch()  # as every run leaves it
    before = snapshot(requeued)
    with pytest.raises(SystemExit) as exit_info:
        run_job(make_cfg(*TINY, output_dir=requeued))
    assert "holds Lightning's SLURM checkpoint hpc_ckpt_1.ckpt" in str(exit_info.value)
    assert "ckpt_path=last" in str(exit_info.value)
    assert snapshot(requeued) == before
    summary, _ = train(make_cfg(*TINY, "total_env_steps=320", "ckpt_path=last", output_dir=requeued))
    assert summary["resumed_from"] == str(requeued / "hpc_ckpt_1.ckpt") and summary["env_steps"] == 320
    rows = (requeued / "metrics.csv").read_text().splitlines()
    steps = [int(float(row.split(",")[rows[0].split(",").index("step")])) for row in rows[1:]]
    assert steps == [64, 128, 192, 256, 320]


@pytest.mark.parametrize("mode", ["run", "multirun"])
def test_a_run_folder_under_a_file_is_one_line_before_hydra_creates_it(tmp_path, mode):
    (tmp_path / "afile").write_text("")
    key, extra = ("hydra.run.dir", []) if mode == "run" else ("hydra.sweep.dir", ["-m", "seed=1,2"])
    result = subprocess.run(
        [sys.executable, "-m", "rlcamp.train", *extra, f"{key}={tmp_path}/afile/run", "total_env_steps=64"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"rlcamp-train: error: {tmp_path}/afile/run cannot be created: {tmp_path}/afile is a file, "
        "not a folder; write elsewhere (paths.log_dir=..., hydra.run.dir=...)"
    )
    assert (tmp_path / "afile").read_text() == ""
