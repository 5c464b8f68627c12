"""``experiment=variance_study`` and ``scripts/variance_study.py``: the config builds the study's
settings and snapshot run, and the script's table and figure come out of a study's rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from rlcamp.algos.bias_variance import StudySettings, estimator_names
from rlcamp.utils.build import instantiate_group
from tests.helpers.config import compose_train

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("variance_study", ROOT / "scripts" / "variance_study.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_the_experiment_is_one_ppo_cartpole_run_with_snapshots_and_the_studys_settings(tmp_path):
    cfg = compose_train(["experiment=variance_study"], tmp_path)
    assert cfg.env.id == "CartPole-v1" and cfg.algo._target_ == "rlcamp.algos.PPO"
    settings = StudySettings(**OmegaConf.to_container(cfg.variance_study, resolve=True))
    assert settings.lambdas == [0.0, 0.5, 0.9, 0.95, 1.0]
    (snapshots,) = instantiate_group(cfg.callbacks)
    assert len(snapshots.pending) == 3 and max(snapshots.pending) <= cfg.total_env_steps


def test_the_script_tabulates_and_draws_a_studys_rows(tmp_path):
    script = load_script()
    names = estimator_names((0.0, 1.0), 5)
    rng = np.random.default_rng(0)
    frames = []
    for stage in ("early", "late"):
        bias2, variance = rng.uniform(-0.1, 1.0, len(names)), rng.uniform(0.1, 1.0, len(names))
        frames.append(
            pd.DataFrame(
                {
                    "estimator": names,
                    "bias2": bias2,
                    "bias2_lo": bias2 - 0.2,
                    "bias2_hi": bias2 + 0.2,
                    "variance": variance,
                    "variance_lo": variance / 2,
                    "variance_hi": variance * 2,
                    "mse": bias2 + variance,
                    "mse_lo": bias2 + variance / 2,
                    "mse_hi": bias2 + variance * 2 + 0.2,
                    "cosine": np.full(len(names), 0.5),
                    "cosine_lo": np.full(len(names), 0.4),
                    "cosine_hi": np.full(len(names), 0.6),
                }
            ).assign(
                snapshot=stage,
                env_steps=2048,
                train_return=20.0,
                mean_length=25.0,
                truncated_fraction=0.0,
                episodes_per_batch=80.0,
                g_ref_sq=2.0,
                reference_var=0.01,
                value_explained_variance=0.5,
                q_explained_variance=0.4,
            )
        )
    frames.append(script.bandit_rows(n_boot=20, seed=0, n_batches=100))
    frame = pd.concat(frames, ignore_index=True)
    script.plot(frame, tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 10_000
    lines = script.table(frame).splitlines()
    assert lines[0].startswith("**Early snapshot** (PPO at 2048 env steps")
    first = frame.iloc[0]
    assert lines[4].startswith(f"| REINFORCE | {first['bias2'] / 2:.3g} [{first['bias2_lo'] / 2:.2g}, ")
    assert sum(line.startswith("| REINFORCE + exact V |") for line in lines) == 1
    assert sum(line.startswith("| GAE λ=1 |") for line in lines) == 2


def test_plot_only_writes_into_out_the_committed_table_and_leaves_docs_alone(tmp_path):
    """``--plot-only`` redraws from the committed CSV into ``--out``; only ``--docs`` rewrites
    docs/figures/."""
    script = load_script()
    committed = {p: p.read_bytes() for p in script.FIGURES.glob("variance_study*")}
    script.main(["--plot-only", "--out", str(tmp_path)])
    assert {p: p.read_bytes() for p in committed} == committed
    assert (tmp_path / "variance_study_table.md").read_text() == (
        script.FIGURES / "variance_study_table.md"
    ).read_text()
    assert (tmp_path / "variance_study.png").stat().st_size > 0


def test_the_script_refuses_a_multidiscrete_env_before_training(tmp_path):
    script = load_script()
    with pytest.raises(ValueError, match=r"flat observations only \(this env: MultiDiscrete actions\)"):
        script.main(["--out", str(tmp_path), "env.id=tests.helpers.envs:MultiDiscreteTargetEnv"])
    assert not any(tmp_path.rglob("*.ckpt")), "no snapshot run may train"
