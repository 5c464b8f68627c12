"""``rlcamp-compare``: tidy table, final-return table and figure from run directories, and its rliable
statistics (``rlcamp.stats``) against independent references: scipy, numpy, hand-computed values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rliable import library, metrics
from scipy import stats as scipy_stats

from rlcamp import stats
from rlcamp.compare import (
    BUDGET,
    aggregate_curves,
    final_table,
    iqm_curves,
    load_runs,
    load_wandb,
    main,
    setting_values,
)


def fake_run(
    path: Path,
    algo: str,
    env: str,
    seed: int,
    returns: list[float],
    final: float | None,
    extra: tuple[str, ...] = (),
    config_extra: dict | None = None,
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
    config = {"algo": {"_target_": f"rlcamp.algos.{algo.upper()}"}, "env": {"id": env}, "seed": seed}
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump({**config, **(config_extra or {})}))


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


def test_setting_drops_identity_seeds_and_bookkeeping():
    config = {
        "algo": {"_target_": "rlcamp.algos.PPO", "seed": "${seed}", "loss": "kl_penalty"},
        "seed": 3,
        "total_env_steps": 10000,
        "paths": {"output_dir": "logs/x"},
        "logger": {"csv": {"save_dir": "logs/x"}},
        "num_threads": 1,
    }
    choices = {"algo": "ppo", "env": "hopper", "network": "mlp", "hydra/launcher": "joblib", "logger": "csv"}
    overrides = ["algo=ppo", "env=hopper", "seed=3", "hydra/launcher=joblib", "+algo.kl_target=0.03"]
    assert setting_values(config, choices, overrides) == {
        "algo._target_": "rlcamp.algos.PPO",
        "algo.loss": "kl_penalty",
        "algo.kl_target": "0.03",
        "network": "mlp",
        "total_env_steps": "10000",
    }


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
    main([str(multirun), "--out", str(out), "--name", "cmp", "--reps", "200"])
    for name in ("cmp.png", "cmp.svg", "cmp_runs.csv", "cmp_final.csv", "cmp_final.md"):
        assert (out / name).stat().st_size > 0, name
    markdown = (out / "cmp_final.md").read_text()
    assert "| CartPole-v1 | 41.8 ± 15.2 (2) | 26.8 ± 1.1 (2) |" in markdown
    assert "| Pendulum-v1 | -190.0 (1) | – |" in markdown
    assert len(pd.read_csv(out / "cmp_runs.csv")) == 15
    assert "tidy table" in capsys.readouterr().out


def test_cli_leaves_out_runs_that_did_not_finish_and_counts_them(multirun, tmp_path, capsys):
    """A run stopped by a Lightning limit or pre-empted is not a final result of its setting."""
    for job, status in (("5", "stopped"), ("6", "preempted")):
        fake_run(multirun / job, "ppo", "CartPole-v1", 3, [10, 200], 500.0)
        summary = json.loads((multirun / job / "summary.json").read_text())
        (multirun / job / "summary.json").write_text(json.dumps({**summary, "status": status}))
    out = tmp_path / "out"
    main([str(multirun), "--out", str(out), "--name", "cmp", "--reps", "200"])
    assert "| CartPole-v1 | 41.8 ± 15.2 (2) | 26.8 ± 1.1 (2) |" in (out / "cmp_final.md").read_text()
    assert len(pd.read_csv(out / "cmp_runs.csv")) == 15
    err = capsys.readouterr().err
    assert "left out 2 run(s) that did not finish (1 preempted, 1 stopped)" in err


def test_runs_of_two_budgets_are_two_settings_named_by_the_budget(tmp_path, capsys):
    """10k and 20k runs are not more seeds of one setting: the budget names them apart, one line says so."""
    for seed in (1, 2):
        fake_run(
            tmp_path / "a" / str(seed), "ppo", "CartPole-v1", seed, [1, 2], 2.0 * seed, (), {BUDGET: 10000}
        )
        fake_run(
            tmp_path / "b" / str(seed), "ppo", "CartPole-v1", seed, [1, 9], 9.0 * seed, (), {BUDGET: 20000}
        )
    out = tmp_path / "out"
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--reps", "50"])
    table = pd.read_csv(out / "compare_final.csv").set_index("label")
    assert table["n_seeds"].to_dict() == {"ppo total_env_steps=10000": 2, "ppo total_env_steps=20000": 2}
    assert set(pd.read_csv(out / "compare_runs.csv")["label"]) == set(table.index)
    err = capsys.readouterr().err
    assert "runs of 2 budgets (2 of 10000, 2 of 20000 env steps) are compared as separate settings" in err


def test_a_run_resumed_into_a_new_folder_counts_once(tmp_path, capsys):
    """The interrupted first folder and its resumed continuation are one run of seed 1, not two."""
    fake_run(tmp_path / "runs" / "first", "ppo", "CartPole-v1", 1, [1, 2], 2.0)
    fake_run(tmp_path / "runs" / "second", "ppo", "CartPole-v1", 1, [1, 2, 5, 8], 8.0)
    fake_run(tmp_path / "runs" / "other", "ppo", "CartPole-v1", 2, [1, 3, 4, 6], 6.0)
    summary_path = tmp_path / "runs" / "second" / "summary.json"
    resumed_from = str(tmp_path / "runs" / "first" / "checkpoints" / "last.ckpt")
    summary_path.write_text(
        json.dumps({**json.loads(summary_path.read_text()), "resumed_from": resumed_from})
    )
    out = tmp_path / "out"
    main([str(tmp_path / "runs"), "--out", str(out), "--reps", "50"])
    row = pd.read_csv(out / "compare_final.csv").iloc[0]
    assert (row["n_seeds"], row["mean"]) == (2, 7.0)
    assert "counted 1 resumed run(s) once" in capsys.readouterr().err


def test_a_seed_in_two_folders_is_flagged_in_one_line(tmp_path, capsys):
    fake_run(tmp_path / "m" / "0", "ppo", "CartPole-v1", 1, [1, 2], 2.0)
    fake_run(tmp_path / "n" / "0", "ppo", "CartPole-v1", 1, [1, 2], 2.0)
    main([str(tmp_path / "m"), str(tmp_path / "n"), "--out", str(tmp_path / "out"), "--reps", "50"])
    lines = [line for line in capsys.readouterr().err.splitlines() if "count more than once" in line]
    assert lines == [
        "warning: 1 seed(s) count more than once in their setting (CartPole-v1 / ppo seed 1 ×2): "
        "pass only one folder of each run"
    ]


def test_runs_of_one_name_under_two_roots_stay_two_runs(tmp_path):
    """``a/cartpole`` and ``b/cartpole`` both hold ``cartpole/seed_1``: each keeps its own setting
    and its own curve, named by its full path, instead of one label overwriting the other."""
    fake_run(
        tmp_path / "a" / "cartpole" / "seed_1", "ppo", "CartPole-v1", 1, [1, 2], 2.0, ("algo.gamma=0.9",)
    )
    fake_run(
        tmp_path / "b" / "cartpole" / "seed_1", "ppo", "CartPole-v1", 1, [5, 6], 6.0, ("algo.gamma=0.99",)
    )
    curves, finals = load_runs([tmp_path / "a" / "cartpole", tmp_path / "b" / "cartpole"])
    assert finals["run"].nunique() == 2 and sorted(finals["label"]) == [
        "ppo algo.gamma=0.9",
        "ppo algo.gamma=0.99",
    ]
    by_label = curves.groupby("label")["return"].apply(list).to_dict()
    assert by_label == {"ppo algo.gamma=0.9": [1, 2], "ppo algo.gamma=0.99": [5, 6]}


def test_settings_are_named_by_the_config_values_that_differ(tmp_path):
    """A value changed in the config (not on the command line) still makes its own setting."""
    fake_run(tmp_path / "m" / "0", "ppo", "CartPole-v1", 1, [1, 2], 2.0, (), {"algo": {"gamma": 0.99}})
    fake_run(tmp_path / "m" / "1", "ppo", "CartPole-v1", 1, [1, 3], 3.0, (), {"algo": {"gamma": 0.9}})
    _, finals = load_runs([tmp_path / "m"])
    assert sorted(finals["label"]) == ["ppo algo.gamma=0.9", "ppo algo.gamma=0.99"]


def test_another_metric_names_the_tables_and_has_no_return_references(multirun, tmp_path):
    """``--metric train/lr``: tables say train/lr, and no optimality gap or normalized aggregate is
    computed against return references."""
    out = tmp_path / "out"
    main([str(multirun), "--out", str(out), "--reps", "50", "--metric", "train/lr"])
    assert "of the final train/lr." in (out / "compare_final.md").read_text()
    rliable_md = (out / "compare_rliable.md").read_text()
    assert "### CartPole-v1 (train/lr)" in rliable_md and "episode return" not in rliable_md
    rliable = pd.read_csv(out / "compare_rliable.csv")
    assert stats.AGGREGATE not in set(rliable["env"]) and rliable["optimality_gap"].isna().all()
    assert rliable["mean"].tolist() == pytest.approx([1e-3] * len(rliable))


def test_an_algorithm_is_labelled_by_its_config_name(tmp_path):
    """A run of ``algo=actor_critic`` (class QActorCritic, older summaries say qactorcritic)."""
    fake_run(tmp_path / "r", "qactorcritic", "CartPole-v1", 1, [1, 2], 2.0)
    config = yaml.safe_load((tmp_path / "r" / ".hydra" / "config.yaml").read_text())
    config["algo"]["_target_"] = "rlcamp.algos.QActorCritic"
    (tmp_path / "r" / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    _, finals = load_runs([tmp_path / "r"])
    assert finals["label"].tolist() == ["actor_critic"]


def test_cli_reports_a_missing_directory_in_one_line(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        main([str(tmp_path / "nope")])


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("metrics.csv", b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00binary", "CSV"),
        ("metrics.csv", b"", "CSV"),
        ("summary.json", b'{"status": "compl', "JSON"),
    ],
    ids=["binary_metrics", "empty_metrics", "truncated_summary"],
)
def test_cli_names_a_damaged_run_file_in_one_line(multirun, tmp_path, name, content, kind):
    damaged = multirun / "1" / name
    damaged.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        main([str(multirun), "--out", str(tmp_path / "out")])
    message = str(exit_info.value)
    assert message.startswith(f"rlcamp-compare: {damaged} is not readable {kind} (") and "\n" not in message
    assert message.endswith("; repair or delete it, or leave its run out")


def test_cli_on_wandb_without_a_login_says_how_to_log_in(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    with pytest.raises(SystemExit) as exit_info:
        main(["--wandb", "e/p", "--out", str(tmp_path / "out")])
    message = str(exit_info.value)
    assert message.startswith("rlcamp-compare: --wandb e/p: ") and "\n" not in message
    assert message.endswith("(wandb login, or WANDB_API_KEY in .env)")


class FakeWandbRun:
    """A run with ``wandb.Api().runs()``'s surface: config, group, id, path, state, summary, history."""

    def __init__(self, seed: int, values: list[float], group: str = "paper", env: str = "Hopper-v5"):
        self.config = {"algo": {"_target_": "rlcamp.algos.PPO"}, "env": {"id": env}, "seed": seed}
        self.group, self.id, self.path, self.state = (
            group,
            f"{group}{seed}",
            ["e", "p", f"{group}{seed}"],
            "finished",
        )
        self.summary = {"rollout/ep_return_mean": values[-1], "env_steps": 2048 * len(values)}
        self._rows = [
            {"env_steps": 2048 * (i + 1), "rollout/ep_return_mean": v} for i, v in enumerate(values)
        ]

    def scan_history(self, keys):
        return iter(self._rows)


class FakeWandbApi:
    def __init__(self, runs: list[FakeWandbRun]):
        self._runs = runs

    def runs(self, path, filters):
        assert path == "e/p"
        return self._runs


def test_wandb_runs_are_read_through_the_public_api_shape():
    """``load_wandb`` against an object with ``wandb.Api``'s surface (runs, config, history, summary)."""
    api = FakeWandbApi([FakeWandbRun(1, [1.0, 5.0]), FakeWandbRun(2, [2.0, 9.0])])
    curves, finals = load_wandb("e/p", api=api)
    table = final_table(finals)
    assert table[["env", "label", "mean", "n_seeds"]].values.tolist() == [["Hopper-v5", "ppo paper", 7.0, 2]]
    assert curves["return"].tolist() == [1.0, 5.0, 2.0, 9.0]


def test_cli_on_wandb_writes_the_rliable_tables(tmp_path, monkeypatch):
    """``rlcamp-compare --wandb`` end to end through a fake ``wandb.Api``: two groups, three seeds."""
    import wandb

    runs = [FakeWandbRun(s, [10.0 * s, 1000.0 * s], "paper") for s in (1, 2, 3)]
    runs += [FakeWandbRun(s, [5.0 * s, 500.0 * s], "small_lr") for s in (1, 2, 3)]
    monkeypatch.setattr(wandb, "Api", lambda: FakeWandbApi(runs))
    out = tmp_path / "out"
    main(["--wandb", "e/p", "--out", str(out), "--reps", "100"])
    table = pd.read_csv(out / "compare_rliable.csv").set_index(["env", "label"])
    hopper = stats.NORMALIZATION["Hopper-v5"]
    assert table.loc[("Hopper-v5", "ppo paper"), "mean"] == pytest.approx(2000.0)
    assert table.loc[(stats.AGGREGATE, "ppo paper"), "mean"] == pytest.approx(
        hopper(np.array([1e3, 2e3, 3e3])).mean()
    )
    improvement = pd.read_csv(out / "compare_improvement.csv").set_index(["env", "x", "y"])
    # {1000, 2000, 3000} against {500, 1000, 1500}: 7 of 9 pairs win, 1000 = 1000 ties: (7 + 0.5) / 9
    assert improvement.loc[("Hopper-v5", "ppo paper", "ppo small_lr"), "p"] == pytest.approx(7.5 / 9)
    for name in ("compare_profiles.png", "compare_iqm_curves.png", "compare_runs.csv"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.slow
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


# ----------------------------------------------------------------------------- rliable statistics
def test_env_estimates_against_scipy_numpy_and_hand_values():
    """IQM of [1..7, 100]: the middle four (3, 4, 5, 6) average 4.5; optimality gap below 6:
    6 − mean(1, 2, 3, 4, 5, 6, 6, 6) = 6 − 33/8."""
    x = np.array([7.0, 1, 100, 3, 2, 6, 4, 5])
    est = stats.env_estimates(x, reps=200, seed=0, reference=6.0)
    assert est["iqm"].value == pytest.approx(4.5) == scipy_stats.trim_mean(x, 0.25)
    assert est["median"].value == pytest.approx(np.median(x))
    assert est["mean"].value == pytest.approx(x.mean())
    assert est["optimality_gap"].value == pytest.approx(6 - 33 / 8)
    assert "optimality_gap" not in stats.env_estimates(x, reps=50, seed=0)


def test_aggregate_equals_rliable_on_the_matrix_and_numpy_by_hand():
    """Equal run counts: the per-env columns give rliable's matrix metrics; numpy is the reference."""
    m = np.random.default_rng(3).normal(0.6, 0.4, size=(6, 3))
    point = stats.aggregate_point(*(m[:, [j]] for j in range(3)))
    rliable_matrix = [
        metrics.aggregate_iqm(m),
        metrics.aggregate_median(m),
        metrics.aggregate_mean(m),
        metrics.aggregate_optimality_gap(m),
    ]
    by_hand = [
        np.sort(m.ravel())[4:14].mean(),  # 18 scores: trim_mean(0.25) cuts int(4.5) = 4 from each end
        np.median(m.mean(0)),
        m.mean(),
        1 - np.minimum(m, 1).mean(),
    ]
    np.testing.assert_allclose(point, rliable_matrix, rtol=1e-12)
    np.testing.assert_allclose(point, by_hand, rtol=1e-12)


def test_aggregate_with_unequal_runs_pools_iqm_and_weighs_envs_equally_in_the_mean():
    a, b = np.array([0.0, 1.0]), np.array([0.2, 0.4, 0.6, 0.8])
    iqm, median, mean, gap = stats.aggregate_point(a[:, None], b[:, None])
    assert iqm == pytest.approx(scipy_stats.trim_mean(np.r_[a, b], 0.25))  # mean of 0.2, 0.4, 0.6, 0.8
    assert mean == pytest.approx((0.5 + 0.5) / 2) and median == pytest.approx(0.5)
    assert gap == pytest.approx(1 - np.r_[a, b].mean())


def test_the_interval_holds_the_point_and_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    widths = []
    for n in (10, 40, 160):
        est = stats.env_estimates(rng.normal(10.0, 2.0, size=n), reps=500, seed=1)
        for e in est.values():
            assert e.low <= e.value <= e.high
        widths.append(est["iqm"].high - est["iqm"].low)
    # the width falls like 1/√n, 4× from 10 to 160 runs (measured 2.4–6.3× over data seeds 0–3)
    assert widths[0] > widths[1] > widths[2] and widths[2] < widths[0] / 2


def test_the_seed_makes_intervals_reproducible_and_leaves_numpys_global_rng_alone():
    x = np.random.default_rng(1).normal(size=7)
    state = np.random.get_state()[1].copy()
    first, again = (stats.env_estimates(x, reps=300, seed=5) for _ in range(2))
    other = stats.env_estimates(x, reps=300, seed=6)
    assert first == again and first != other
    runs = [x[:4], x[4:]]
    assert stats.improvement(runs, runs, reps=300, seed=5) == stats.improvement(runs, runs, reps=300, seed=5)
    assert stats.aggregate_estimates(runs, reps=300, seed=5) == stats.aggregate_estimates(
        runs, reps=300, seed=5
    )
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_probability_of_improvement_equals_rliables_mann_whitney():
    rng = np.random.default_rng(2)
    for n_x, n_y in ((3, 5), (6, 6)):
        x, y = rng.integers(0, 4, size=(n_x, 1)), rng.integers(0, 4, size=(n_y, 1))  # with ties
        assert stats.probability_of_improvement(x, y) == pytest.approx(
            metrics.probability_of_improvement(x, y)
        )


def test_a_dominating_setting_improves_with_probability_one_and_identical_ones_one_half():
    rng = np.random.default_rng(4)
    low = [rng.normal(0, 1, 5), rng.normal(0, 1, 4)]
    high = [s + 100 for s in low]
    assert stats.improvement(high, low, reps=200, seed=0) == stats.Estimate(1.0, 1.0, 1.0)
    same = stats.improvement(low, low, reps=200, seed=0)
    assert same.value == 0.5 and same.low < 0.5 < same.high


def test_profile_is_rliables_score_distribution_with_ci():
    runs = [np.array([0.1, 0.5, 0.9]), np.array([0.3, 0.7])]
    taus = np.linspace(-0.5, 1.5, 9)
    pooled = np.concatenate(runs)[:, None]
    np.testing.assert_allclose(stats.fraction_above(pooled, taus), library.score_distributions(pooled, taus))
    profile, ci = stats.performance_profile(runs, taus, reps=200, seed=0)
    assert profile[0] == 1.0 and profile[-1] == 0.0
    assert profile[4] == pytest.approx(np.mean(pooled > taus[4]))
    assert np.all(ci[0] <= profile) and np.all(profile <= ci[1])


def test_iqm_curve_is_aggregate_iqm_at_every_point():
    ys = np.random.default_rng(5).normal(size=(7, 4))
    iqm, ci = stats.iqm_curve(ys, reps=200, seed=0)
    np.testing.assert_allclose(iqm, [metrics.aggregate_iqm(ys[:, j]) for j in range(4)])
    assert ci.shape == (2, 4) and np.all(ci[0] <= iqm) and np.all(iqm <= ci[1])


def test_normalization_by_hand_and_from_the_command_line():
    np.testing.assert_allclose(
        stats.NORMALIZATION["CartPole-v1"](np.array([25.0, 500.0, 262.5])), [0, 1, 0.5]
    )
    # Pendulum: (−684.7 − (−1197.2)) / (−172.2 − (−1197.2)) = 512.5 / 1025
    assert stats.NORMALIZATION["Pendulum-v1"](-684.7) == pytest.approx(0.5)
    env, normalizer = stats.parse_reference("MyEnv-v0=-100:25")
    assert env == "MyEnv-v0" and normalizer(np.array([-100.0, 25.0])).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="ENV=RANDOM:REFERENCE"):
        stats.parse_reference("MyEnv-v0=-100")
    for normalizer in stats.NORMALIZATION.values():
        assert normalizer.reference > normalizer.random and "reference:" in normalizer.source


@pytest.fixture
def zoo(tmp_path):
    """Two settings × CartPole (4 and 3 seeds), Pendulum (3 seeds each) and an env with no entry."""
    root = tmp_path / "zoo"
    finals = {
        ("ppo", "CartPole-v1"): [500.0, 262.5, 400.0, 25.0],
        ("trpo", "CartPole-v1"): [100.0, 200.0, 300.0],
        ("ppo", "Pendulum-v1"): [-172.2, -684.7, -300.0],
        ("trpo", "Pendulum-v1"): [-1197.2, -900.0, -400.0],
        ("ppo", "MyEnv-v0"): [1.0, 2.0, 3.0],
        ("trpo", "MyEnv-v0"): [0.0, 1.0, 2.0],
    }
    i = 0
    for (algo, env), scores in finals.items():
        for seed, score in enumerate(scores, 1):
            fake_run(root / str(i), algo, env, seed, [score / 2, score], score)
            i += 1
    return root, finals


def test_cli_writes_the_rliable_tables_and_figures(zoo, tmp_path, capsys):
    root, finals = zoo
    out = tmp_path / "out"
    main([str(root), "--out", str(out), "--name", "z", "--reps", "200", "--seed", "3"])
    for name in ("z_profiles.png", "z_iqm_curves.png", "z_iqm_curves.svg", "z.png", "z_runs.csv"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "z_rliable.csv").set_index(["env", "label"])
    assert table.loc[("CartPole-v1", "ppo"), "iqm"] == pytest.approx(
        scipy_stats.trim_mean([500, 262.5, 400, 25], 0.25)
    )
    assert table.loc[("CartPole-v1", "trpo"), "n_runs"] == 3
    assert np.isnan(table.loc[("MyEnv-v0", "ppo"), "optimality_gap"])
    # the aggregate covers CartPole and Pendulum, normalized by hand (MyEnv has no entry)
    cart = (np.array(finals[("ppo", "CartPole-v1")]) - 25) / 475
    pend = (np.array(finals[("ppo", "Pendulum-v1")]) + 1197.2) / 1025
    row = table.loc[(stats.AGGREGATE, "ppo")]
    assert row["normalized"] and row["n_runs"] == 7
    assert row["iqm"] == pytest.approx(scipy_stats.trim_mean(np.r_[cart, pend], 0.25))
    assert row["mean"] == pytest.approx((cart.mean() + pend.mean()) / 2)
    assert row["iqm_low"] <= row["iqm"] <= row["iqm_high"]
    markdown = (out / "z_rliable.md").read_text()
    assert "### all envs (normalized score)" in markdown and "200 stratified bootstrap resamples" in markdown
    assert "aggregate skips MyEnv-v0" in markdown and "--reference MyEnv-v0=RANDOM:REFERENCE" in markdown
    improvement = pd.read_csv(out / "z_improvement.csv").set_index(["env", "x", "y"])
    both = improvement.loc[(stats.AGGREGATE, "ppo", "trpo"), "p"]
    reverse = improvement.loc[(stats.AGGREGATE, "trpo", "ppo"), "p"]
    assert both + reverse == pytest.approx(1)
    assert improvement.loc[("MyEnv-v0", "ppo", "trpo"), "p"] == pytest.approx(
        metrics.probability_of_improvement(np.c_[[1.0, 2, 3]], np.c_[[0.0, 1, 2]])
    )
    assert "| P(row > column) | ppo | trpo |" in (out / "z_improvement.md").read_text()
    assert "warning" not in capsys.readouterr().err  # three seeds or more everywhere


def test_reference_flag_brings_an_env_into_the_aggregate_and_baseline_is_checked(zoo, tmp_path):
    root, _ = zoo
    out = tmp_path / "out"
    main([str(root), "--out", str(out), "--reps", "50", "--reference", "MyEnv-v0=0:3", "--baseline", "trpo"])
    assert "all envs: CartPole-v1, MyEnv-v0, Pendulum-v1" in (out / "compare_rliable.md").read_text()
    improvement = pd.read_csv(out / "compare_improvement.csv")
    assert set(zip(improvement["x"], improvement["y"], strict=True)) == {("ppo", "trpo")}
    with pytest.raises(SystemExit, match="--baseline 'sac' is not a setting here; choose one of: ppo, trpo"):
        main([str(root), "--out", str(out), "--reps", "50", "--baseline", "sac"])
    with pytest.raises(SystemExit):
        main([str(root), "--reference", "MyEnv-v0"])


def test_fewer_than_three_seeds_print_a_warning(multirun, tmp_path, capsys):
    main([str(multirun), "--out", str(tmp_path / "out"), "--reps", "50"])
    err = capsys.readouterr().err
    assert (
        "warning: CartPole-v1 / ppo has 2 run(s): bootstrap CIs from fewer than 3 runs are unreliable" in err
    )
    assert "warning: Pendulum-v1 / ppo has 1 run(s)" in err


def test_iqm_curves_sit_on_the_common_grid(multirun):
    curves, _ = load_runs([multirun])
    iqm = iqm_curves(curves[curves["env"] == "CartPole-v1"], reps=50, seed=0, points=3)
    ppo = iqm[iqm["label"] == "ppo"]
    # two seeds: trim_mean(0.25) cuts int(0.5) = 0 runs, so the IQM is their mean
    assert ppo["env_steps"].tolist() == [1000, 2000, 3000] and ppo["mean"].tolist() == [11, 21, 40]
