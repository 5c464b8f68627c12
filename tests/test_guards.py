"""Numeric guards and failing sweep jobs.

- A NaN/inf observation or reward names the env, the sub-env and the env step (or, with
  ``env.nan_policy=terminate``, ends that episode).
- A NaN/inf loss or gradient stops the run with one clear error, and the last checkpoint keeps
  the last finite weights.
- A job of a multirun that fails records ``status: failed`` and its error, and the others finish.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from rlcamp.algos.ppo import PPO
from rlcamp.callbacks.checkpoint import EnvStepCheckpoint
from rlcamp.errors import NonFiniteEnvError, NonFiniteUpdateError
from rlcamp.train import run_job, train
from rlcamp.utils.checkpoint import load_checkpoint

COUNTING = [
    "env.id=tests.helpers.envs:CountingEnv",
    "env.n_envs=2",
    "algo.n_steps=8",
    "algo.n_minibatches=2",
    "algo.update_epochs=2",
    "total_env_steps=96",
    "callbacks.checkpoint.every_env_steps=16",
]


@pytest.fixture
def poison_from(monkeypatch):
    """Make the loss (or only the gradient) NaN from the rollout that starts at ``env_steps`` on."""

    def _poison(kind: str, env_steps: int) -> None:
        compute_loss = PPO.compute_loss

        def poisoned(self, batch):
            loss, metrics = compute_loss(self, batch)
            if self.env_steps > env_steps:
                if kind == "loss":
                    loss = loss * torch.tensor(float("nan"))
                else:  # a finite loss whose backward pass yields NaN gradients
                    extra = self.policy.value(batch.obs).sum() * 0.0
                    extra.register_hook(lambda grad: torch.full_like(grad, float("inf")))
                    loss = loss + extra
            return loss, metrics

        monkeypatch.setattr(PPO, "compute_loss", poisoned)

    return _poison


@pytest.mark.parametrize("kind", ["loss", "gradient"])
def test_non_finite_update_stops_the_run_and_keeps_the_last_good_checkpoint(
    make_cfg, tmp_path, poison_from, kind
):
    poison_from(kind, env_steps=32)
    with pytest.raises(NonFiniteUpdateError) as err:
        train(make_cfg(*COUNTING, output_dir=tmp_path))
    message = str(err.value)
    assert f"non-finite {kind} in the update of rollout 3 (env step 48)" in message and "\n" not in message
    assert "algo.optimizer.lr" in message
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint["rlcamp"]["env_steps"] == 32
    assert all(t.isfinite().all() for t in checkpoint["state_dict"].values() if t.is_floating_point())


def test_checkpoint_callback_refuses_non_finite_weights(make_cfg, tmp_path):
    _, module = train(make_cfg(*COUNTING, "total_env_steps=16", output_dir=tmp_path))
    good = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    with torch.no_grad():
        next(module.policy.parameters()).fill_(float("inf"))
    callback = EnvStepCheckpoint(str(tmp_path / "checkpoints"))
    with pytest.raises(
        NonFiniteUpdateError, match="refusing to overwrite .*last.ckpt with non-finite weights"
    ):
        callback.save(trainer=None, pl_module=module)
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == good


def test_nan_observation_names_env_sub_env_and_step(make_cfg, tmp_path):
    with pytest.raises(NonFiniteEnvError) as err:
        train(make_cfg(*COUNTING, "env.id=tests.helpers.envs:NaNEnv", output_dir=tmp_path))
    assert str(err.value).startswith("tests.helpers.envs:NaNEnv sub-env 0 returned a non-finite observation")
    # sub-env 0's 2nd step, after the 2 env steps of the first vector step
    assert "at env step 3;" in str(err.value) and "env.nan_policy=terminate" in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "poison", "expected"),
    [
        (["env.id=tests.helpers.envs:NaNEnv"], None, "NaNEnv sub-env 0 returned a non-finite observation"),
        (
            ["env.id=tests.helpers.envs:ResetNaNEnv"],
            None,
            "ResetNaNEnv sub-env 0 returned a non-finite observation from reset()",
        ),
        (["env.id=tests.helpers.envs:InfRewardEnv"], None, "InfRewardEnv sub-env 0 returned a non-finite"),
        ([], "loss", "non-finite loss in the update of rollout 3"),
    ],
    ids=["nan_observation", "nan_reset_observation", "inf_reward", "nan_loss"],
)
def test_a_non_finite_run_exits_in_one_line_under_nan_policy_raise(
    make_cfg, tmp_path, poison_from, overrides, poison, expected
):
    if poison:
        poison_from(poison, env_steps=32)
    with pytest.raises(SystemExit) as exit_info:
        run_job(make_cfg(*COUNTING, *overrides, output_dir=tmp_path))
    message = str(exit_info.value)
    assert message.startswith("rlcamp-train: error: ") and expected in message and "\n" not in message
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"


def test_nan_error_counts_env_steps_across_a_resume(make_cfg, tmp_path):
    train(make_cfg(*COUNTING, "total_env_steps=32", output_dir=tmp_path / "first"))
    with pytest.raises(NonFiniteEnvError, match="sub-env 0 .* at env step 35;"):
        train(
            make_cfg(
                *COUNTING,
                "env.id=tests.helpers.envs:NaNEnv",
                "resume.allow_changes=[env.id]",
                f"ckpt_path={tmp_path}/first/checkpoints/last.ckpt",
                output_dir=tmp_path / "resumed",
            )
        )


@pytest.mark.parametrize("policy", ["raise", "terminate"])
def test_nan_in_the_final_observation_of_a_truncated_episode(make_cfg, tmp_path, policy):
    run = [*COUNTING, "env.id=tests.helpers.envs:TruncatedNaNEnv", "env.max_episode_steps=3"]
    if policy == "raise":
        with pytest.raises(
            NonFiniteEnvError,
            match="sub-env 0 returned a non-finite final observation of a truncated episode at env step 5;",
        ):
            train(make_cfg(*run, output_dir=tmp_path))
        return
    summary, module = train(make_cfg(*run, "env.nan_policy=terminate", output_dir=tmp_path))
    assert summary["status"] == "completed" and summary["env_steps"] == 96
    module.setup("fit")
    rollout = module.collector.collect(module.policy)
    assert len(rollout.final_index) == 0, "a NaN final observation is not bootstrapped"
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_nan_policy_terminate_resets_the_sub_env(make_cfg, tmp_path, caplog):
    """StickyNaNEnv stays NaN once broken: only a reset brings it back, after which its episodes count."""
    summary, module = train(
        make_cfg(
            *COUNTING,
            "env.id=tests.helpers.envs:StickyNaNEnv",
            "env.nan_policy=terminate",
            output_dir=tmp_path,
        )
    )
    assert summary["status"] == "completed"
    # each sub-env: 2 steps lost to the broken episode, then episodes of 4 steps over the 48 steps left
    assert summary["episodes"] == 2 * ((48 - 2) // 4)
    assert "nan_policy=terminate reset 2 sub-env(s)" in caplog.text


def test_nan_policy_terminate_ends_those_episodes_and_trains_on(make_cfg, tmp_path):
    """NaNEnv turns NaN at its 2nd step: that step is a termination with reward 0, and training goes on."""
    summary, module = train(
        make_cfg(
            *COUNTING, "env.id=tests.helpers.envs:NaNEnv", "env.nan_policy=terminate", output_dir=tmp_path
        )
    )
    assert summary["status"] == "completed" and summary["env_steps"] == 96
    assert all(torch.isfinite(p).all() for p in module.parameters())

    module.setup("fit")
    rollout = module.collector.collect(module.policy)
    # the sub-env is reset at each NaN, so its next episode breaks again 2 steps later
    assert rollout.dones[:, 0].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert rollout.rewards[1].tolist() == [0.0, 0.0] and rollout.obs.isfinite().all()
    assert module.collector.nan_resets == 8


@pytest.mark.slow
def test_failing_jobs_of_a_multirun_are_recorded_and_the_others_finish(tmp_path):
    """Job 0 has a bad value, job 1 diverges (NaN observations), job 2 is fine: all three run."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcamp.train",
            "-m",
            "env=cartpole",
            "env.n_envs=2",
            "algo.n_steps=32",
            "total_env_steps=128",
            "callbacks.progress=null",
            f"paths.log_dir={tmp_path}",
            "task_name=sweep",
            "env.id=CartPole-v1,tests.helpers.envs:NaNEnv",
            "algo.gamma=1.5,0.99",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "sweep" / "multiruns").iterdir()
    summaries = {}
    for job in sorted(p for p in sweep_dir.iterdir() if p.name.isdigit()):
        summaries[job.name] = json.loads((job / "summary.json").read_text())
    assert len(summaries) == 4
    statuses = [(s["env_id"], s["status"], s.get("error", "")) for s in summaries.values()]
    for env_id, status, error in statuses:
        if "gamma" in error:
            assert status == "failed" and error.startswith("ConfigError: algo.gamma=1.5 must be in (0, 1]")
        elif env_id.endswith("NaNEnv"):
            assert status == "failed" and error.startswith(
                "NonFiniteEnvError: tests.helpers.envs:NaNEnv sub-env 0"
            )
        else:
            assert status == "completed", statuses
    assert [s["status"] for s in summaries.values()].count("completed") == 1
