"""``rlcamp-compare``: tidy table, final-return table and figure from run directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rlcamp.compare import aggregate_curves, final_table, load_runs, load_wandb, main, setting_of


def fake_run(
    path: Path,
    algo: str,
    env: str,
    seed: int,
    returns: list[float],
    final: float | None,
    extra: tuple[str, ...] = (),
) -> None:
    """A run directory as rlcamp-train writes it: metrics.csv, summary.json, .hydra/*.yaml."""
    (path / ".hydra").mkdir(parents=True)
    steps = 1000 * np.arange(1, len(returns) + 1)
    pd.DataFrame({"env_steps": steps, "rollout/ep_return_mean": returns, "train/lr": 1e-3}).to_csv(
        path / "metrics.csv", index=False
    )
    if final is not None:
        summary = {
            "status": "completed",
            "algo": algo,
            "env_id": env,
            "seed": seed,
            "env_steps": int(steps[-1]),
            "ep_return_mean": final,
        }
        (path / "summary.json").write_text(json.dumps(summary))
    overrides = [f"algo={algo}", f"env={env.split('-')[0].lower()}", f"seed={seed}", "logger=csv", *extra]
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (path / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump(
            {"algo": {"_target_": f"rlcamp.algos.{algo.upper()}"}, "env": {"id": env}, "seed": seed}
        )
    )


@pytest.fixture
def multirun(tmp_path):
    root = tmp_path / "multiruns" / "2026-01-01_00-00-00"
    jobs = [
        ("ppo", "CartPole-v1", 1, [10, 20, 30], 31.0),
        ("ppo", "CartPole-v1", 2, [12, 22, 50], 52.5),
        ("trpo", "CartPole-v1", 1, [9, 15, 25], 26.0),
        ("trpo", "CartPole-v1", 2, [11, 19, 27], 27.5),
        ("ppo", "Pendulum-v1", 1, [-900, -500, -200], -190.0),
    ]
    for i, (algo, env, seed, returns, final) in enumerate(jobs):
        fake_run(root / str(i), algo, env, seed, returns, final)
    return root


def test_setting_drops_identity_and_bookkeeping_overrides():
    assert (
        setting_of(
            [
                "algo=ppo",
                "env=hopper",
                "seed=3",
                "algo.loss=kl_penalty",
                "hydra/launcher=joblib",
                "logger=csv",
                "+algo.kl_target=0.03",
            ]
        )
        == "algo.kl_target=0.03 algo.loss=kl_penalty"
    )


def test_final_table_equals_the_summaries(multirun):
    curves, finals = load_runs([multirun])
    table = final_table(finals).set_index(["env", "label"])
    assert table.loc[("CartPole-v1", "ppo"), "mean"] == pytest.approx((31.0 + 52.5) / 2)
    assert table.loc[("CartPole-v1", "ppo"), "std"] == pytest.approx(np.std([31.0, 52.5], ddof=1))
    assert table.loc[("CartPole-v1", "trpo"), "n_seeds"] == 2
    assert table.loc[("Pendulum-v1", "ppo"), "mean"] == -190.0 and np.isnan(
        table.loc[("Pendulum-v1", "ppo"), "std"]
    )
    assert len(curves) == 15 and set(curves.columns) >= {
        "run",
        "algo",
        "env",
        "seed",
        "setting",
        "env_steps",
        "return",
    }


def test_a_run_without_summary_counts_its_last_logged_return(tmp_path):
    fake_run(tmp_path / "r", "ppo", "CartPole-v1", 1, [1, 2, 7], final=None)
    _, finals = load_runs([tmp_path])
    assert finals["final_return"].tolist() == [7.0] and finals["status"].tolist() == ["no summary.json"]


def test_curves_average_seeds_on_a_common_grid(multirun):
    curves, _ = load_runs([multirun])
    agg = aggregate_curves(curves[curves["env"] == "CartPole-v1"], band="minmax", points=3)
    ppo = agg[agg["label"] == "ppo"]
    assert ppo["env_steps"].tolist() == [1000, 2000, 3000]
    assert (
        ppo["mean"].tolist() == [11, 21, 40]
        and ppo["low"].tolist() == [10, 20, 30]
        and ppo["high"].tolist() == [12, 22, 50]
    )
    ci = aggregate_curves(curves[curves["env"] == "CartPole-v1"], band="ci95", points=3)
    half = (ci["high"] - ci["mean"])[ci["label"] == "ppo"].to_numpy()
    # t(0.975, 1) = 12.706; std of two seeds = |a - b| / √2; CI half-width = t·std/√2 = 12.706·|a - b|/2
    np.testing.assert_allclose(half, 12.706 * np.array([2, 2, 20]) / 2, rtol=1e-4)


def test_settings_become_separate_lines(tmp_path):
    fake_run(tmp_path / "m" / "0", "ppo", "CartPole-v1", 1, [1, 2], 2.0, ("algo.loss=clip",))
    fake_run(tmp_path / "m" / "1", "ppo", "CartPole-v1", 1, [1, 3], 3.0, ("algo.loss=kl_penalty",))
    _, finals = load_runs([tmp_path / "m"])
    assert sorted(final_table(finals)["label"]) == ["ppo algo.loss=clip", "ppo algo.loss=kl_penalty"]


def test_cli_writes_figure_and_tables(multirun, tmp_path, capsys):
    out = tmp_path / "out"
    main([str(multirun), "--out", str(out), "--name", "cmp"])
    for name in ("cmp.png", "cmp.svg", "cmp_runs.csv", "cmp_final.csv", "cmp_final.md"):
        assert (out / name).stat().st_size > 0, name
    markdown = (out / "cmp_final.md").read_text()
    assert "| CartPole-v1 | 41.8 ± 15.2 (2) | 26.8 ± 1.1 (2) |" in markdown
    assert "| Pendulum-v1 | -190.0 (1) | – |" in markdown
    assert len(pd.read_csv(out / "cmp_runs.csv")) == 15
    assert "tidy table" in capsys.readouterr().out


def test_cli_reports_a_missing_directory_in_one_line(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        main([str(tmp_path / "nope")])


def test_wandb_runs_are_read_through_the_public_api_shape():
    """``load_wandb`` against an object with ``wandb.Api``'s surface (runs, config, history, summary)."""

    class Run:
        def __init__(self, seed, values):
            self.config = {"algo": {"_target_": "rlcamp.algos.PPO"}, "env": {"id": "Hopper-v5"}, "seed": seed}
            self.group, self.id, self.path, self.state = (
                "paper",
                f"r{seed}",
                ["e", "p", f"r{seed}"],
                "finished",
            )
            self.summary = {"rollout/ep_return_mean": values[-1], "env_steps": 2048 * len(values)}
            self._rows = [
                {"env_steps": 2048 * (i + 1), "rollout/ep_return_mean": v} for i, v in enumerate(values)
            ]

        def scan_history(self, keys):
            return iter(self._rows)

    class Api:
        def runs(self, path, filters):
            assert path == "e/p"
            return [Run(1, [1.0, 5.0]), Run(2, [2.0, 9.0])]

    curves, finals = load_wandb("e/p", api=Api())
    table = final_table(finals)
    assert table[["env", "label", "mean", "n_seeds"]].values.tolist() == [["Hopper-v5", "ppo paper", 7.0, 2]]
    assert curves["return"].tolist() == [1.0, 5.0, 2.0, 9.0]


def test_a_real_multirun_is_compared(tmp_path):
    """Two tiny CartPole jobs through Hydra's multirun, then the CLI on its directory."""
    repo = Path(__file__).resolve().parents[1]
    sweep = tmp_path / "sweep"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcamp.train",
            "-m",
            "algo=ppo,trpo",
            "total_env_steps=1024",
            "callbacks=none",
            f"hydra.sweep.dir={sweep}",
            "hydra/hydra_logging=disabled",
            "hydra/job_logging=disabled",
        ],
        cwd=repo,
        check=True,
        capture_output=True,
        timeout=300,
    )
    main([str(sweep), "--name", "cmp"])
    table = pd.read_csv(sweep / "compare" / "cmp_final.csv").set_index("label")
    for job in sweep.glob("*/summary.json"):
        summary = json.loads(job.read_text())
        assert table.loc[summary["algo"], "mean"] == pytest.approx(summary["ep_return_mean"])
    assert (sweep / "compare" / "cmp.png").stat().st_size > 0
