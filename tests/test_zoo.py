"""``experiment=zoo`` and ``scripts/zoo.py``: every row × env composes with its shipped settings and
its budget, the runner skips finished runs and builds the right commands, and the report's numbers
come out of hand-made summaries as scipy computes them."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from rlcamp.errors import ConfigError
from rlcamp.utils.build import CONF_DIR
from tests.helpers.config import compose_train

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("zoo", ROOT / "scripts" / "zoo.py")
zoo = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = zoo  # dataclasses look their module up there
spec.loader.exec_module(zoo)

BUDGETS = {
    "CartPole-v1": 100_000,
    "Acrobot-v1": 100_000,
    "Pendulum-v1": 100_000,
    "InvertedPendulum-v5": 50_000,
}
THRESHOLDS = {"CartPole-v1": 475, "Acrobot-v1": -100, "Pendulum-v1": -200, "InvertedPendulum-v5": 950}


def compose_hydra(*overrides: str):
    """The composed config with its ``hydra`` node (sweeper, run dir, group choices), which
    ``tests.helpers.config.compose_train`` leaves out."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_the_protocol_is_the_experiments_grid():
    protocol = zoo.load_protocol()
    assert protocol.envs == ("cartpole", "acrobot", "pendulum", "inverted_pendulum")
    assert [protocol.env_id(env) for env in protocol.envs] == list(BUDGETS)
    assert protocol.seeds == tuple(range(1, 11))
    assert protocol.budgets == BUDGETS and protocol.thresholds == THRESHOLDS


def test_the_multirun_sweeps_env_first_then_the_algos_and_ten_seeds():
    cfg = compose_hydra("experiment=zoo")
    assert cfg.hydra.mode == RunMode.MULTIRUN and cfg.logger == {} and cfg.callbacks == {}
    params = cfg.hydra.sweeper.params
    assert list(params) == ["env", "algo", "seed"]
    extra_rows = {"reinforce_no_baseline", "reinforce_mean_baseline"}
    assert {*zoo.sweep_values("algo", params.algo), *extra_rows} == set(zoo.ROWS)
    assert [int(s) for s in zoo.sweep_values("seed", params.seed)] == list(range(1, 11))


def test_the_multirun_composes_for_slurm():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs hydra-submitit-launcher")
    cfg = compose_hydra("experiment=zoo", "hydra/launcher=slurm", "algo=reinforce", "algo.baseline=none")
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher") and cfg.algo.baseline == "none"


def test_the_experiment_sets_nothing_an_algorithm_reads_but_the_budget():
    experiment = OmegaConf.load(ROOT / "conf" / "experiment" / "zoo.yaml")
    assert set(experiment) == {"defaults", "task_name", "tags", "total_env_steps", "zoo", "hydra"}
    assert list(experiment.defaults) == [{"override /logger": "none"}, {"override /callbacks": "none"}]


@pytest.fixture
def hydra_config():
    """Hydra's global job config, put back after the test: a test that sets it to a zoo job's (a
    multirun) would otherwise make every later test in the process read as a sweep job."""
    before = HydraConfig.instance().cfg
    yield HydraConfig.instance()
    HydraConfig.instance().cfg = before


@pytest.mark.parametrize("env", ["cartpole", "acrobot", "pendulum", "inverted_pendulum"])
def test_every_row_gets_the_envs_budget_and_its_folder(env, hydra_config):
    """Each row composes with the env's budget, and its run directory is the folder the script reads."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for row, overrides in zoo.ROWS.items():
            cfg = compose(
                "train", ["experiment=zoo", *overrides, f"env={env}", "seed=7"], return_hydra_config=True
            )
            budget = BUDGETS[cfg.env.id]
            assert cfg.total_env_steps == budget and cfg.algo.total_env_steps == budget
            hydra_config.set_config(cfg)
            assert cfg.zoo.row == row
            assert Path(cfg.hydra.run.dir) == zoo.Run(row, env, 7).folder(Path("logs") / "zoo")
            assert Path(cfg.hydra.sweep.dir, cfg.hydra.sweep.subdir) == Path(cfg.hydra.run.dir)


def test_the_budget_is_looked_up_by_the_envs_id(tmp_path):
    changed = "zoo.budgets.Acrobot-v1=12345"
    assert compose_train(["experiment=zoo", "env=acrobot", changed], tmp_path).total_env_steps == 12345
    assert compose_train(["experiment=zoo", "env=cartpole", changed], tmp_path).total_env_steps == 100_000


def test_every_row_keeps_its_shipped_mujoco_settings():
    """On the MuJoCo env (family settings chosen from the env) the algo, env and network nodes are
    those of a plain run with the same budget: the zoo measures what ships."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for row, overrides in zoo.ROWS.items():
            common = [*overrides, "env=inverted_pendulum"]
            cfg = compose("train", ["experiment=zoo", *common], return_hydra_config=True)
            plain = compose("train", [*common, "total_env_steps=50000"], return_hydra_config=True)
            assert cfg.hydra.runtime.choices.algo_family == plain.hydra.runtime.choices.algo_family
            for node in ("algo", "env", "network"):
                zoo_node, plain_node = (OmegaConf.to_container(c[node], resolve=True) for c in (cfg, plain))
                assert zoo_node == plain_node, (row, node)


def test_the_rows_reinforce_baselines(tmp_path):
    assert compose_train(["experiment=zoo", *zoo.ROWS["reinforce"]], tmp_path).algo.baseline == "value"
    no_baseline = compose_train(["experiment=zoo", *zoo.ROWS["reinforce_no_baseline"]], tmp_path)
    assert no_baseline.algo.baseline == "none"
    mean = compose_train(["experiment=zoo", *zoo.ROWS["reinforce_mean_baseline"]], tmp_path)
    assert mean.algo.baseline == "mean"


def write_summary(
    root: Path, row: str, env: str, seed: int, score: float | None, status="completed", steps=100_000
):
    folder = zoo.Run(row, env, seed).folder(root / "zoo")
    folder.mkdir(parents=True)
    summary = {"status": status, "env_steps": steps, "ep_return_mean": score, "wall_seconds": 10.0 + seed}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_the_grid_is_env_major_and_the_runner_skips_finished_runs(tmp_path, capsys):
    runs = zoo.grid(["ppo", "a2c"], ["cartpole", "acrobot"], [1, 2])
    assert [r.env for r in runs] == ["cartpole"] * 4 + ["acrobot"] * 4
    assert runs[:3] == [
        zoo.Run("ppo", "cartpole", 1),
        zoo.Run("ppo", "cartpole", 2),
        zoo.Run("a2c", "cartpole", 1),
    ]
    write_summary(tmp_path, "ppo", "cartpole", 1, 500.0)
    write_summary(tmp_path, "ppo", "cartpole", 2, None, status="failed")
    assert zoo.is_done(runs[0], tmp_path / "zoo", retry_failed=True)
    assert zoo.is_done(runs[1], tmp_path / "zoo", retry_failed=False)
    assert not zoo.is_done(runs[1], tmp_path / "zoo", retry_failed=True)
    assert not zoo.is_done(runs[2], tmp_path / "zoo", retry_failed=False)
    args = [
        "--dry-run",
        "--retry-failed",
        "--log-dir",
        str(tmp_path),
        "--algos",
        "ppo",
        "reinforce_no_baseline",
    ]
    zoo.main([*args, "--envs", "cartpole", "--seeds", "1", "2", "--override", "total_env_steps=5000"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "zoo: 1 of 4 runs done, 3 to run"
    assert [line.split(" -m rlcamp.train ")[1] for line in out[1:]] == [
        f"experiment=zoo hydra.mode=RUN algo=ppo env=cartpole seed=2 paths.log_dir={tmp_path} "
        "num_threads=1 total_env_steps=5000",
        *(
            f"experiment=zoo hydra.mode=RUN algo=reinforce algo.baseline=none env=cartpole seed={s} "
            f"paths.log_dir={tmp_path} num_threads=1 total_env_steps=5000"
            for s in (1, 2)
        ),
    ]
    with pytest.raises(ConfigError, match="--jobs 0 must be >= 1"):
        zoo.main(["--jobs", "0", "--log-dir", str(tmp_path)])


def test_one_tiny_run_writes_its_summary_where_the_report_reads_it(tmp_path):
    run = zoo.Run("a2c", "cartpole", 3)
    assert zoo.execute(run, tmp_path, ["total_env_steps=200"]) == 0, (
        run.folder(tmp_path / "zoo") / "rlcamp-train.out"
    ).read_text()[-2000:]
    finals = zoo.load_summaries(tmp_path / "zoo", zoo.load_protocol())
    assert finals[["row", "env", "env_id", "seed", "status", "env_steps"]].values.tolist() == [
        ["a2c", "cartpole", "CartPole-v1", 3, "completed", 200]
    ]


CARTPOLE = [12.0, 480.0, 500.0, 300.0, 499.0, 475.0, 20.0, 500.0, 250.0, 474.9]  # 5 of 10 reach 475
PENDULUM = [-150.0, -180.0, -900.0, -199.0, -1200.0, -250.0]  # 3 of these 6 (+1 failed) reach -200


def test_the_report_gives_scipys_iqm_the_solve_fraction_and_rewrites_only_its_section(tmp_path):
    for seed, score in enumerate(CARTPOLE, 1):
        write_summary(tmp_path, "ppo", "cartpole", seed, score)
    for seed, score in enumerate(PENDULUM, 1):
        write_summary(tmp_path, "trpo", "pendulum", seed, score)
    write_summary(tmp_path, "trpo", "pendulum", 7, None, status="failed")
    write_summary(tmp_path, "npg", "acrobot", 1, -80.0, steps=10_000)
    doc = tmp_path / "zoo.md"
    doc.write_text(f"# head\n\ntext\n{zoo.START}\nold table\n{zoo.END}\n\n## tail\n")
    body = zoo.report(tmp_path, doc, tmp_path / "figures", reps=200)

    table = pd.read_csv(tmp_path / "figures" / "zoo_table.csv").set_index("row")
    ppo, trpo = table.loc["ppo"], table.loc["trpo"]
    assert ppo["iqm"] == pytest.approx(scipy.stats.trim_mean(CARTPOLE, 0.25))
    assert trpo["iqm"] == pytest.approx(scipy.stats.trim_mean(PENDULUM, 0.25))
    assert ppo["iqm_low"] <= ppo["iqm"] <= ppo["iqm_high"]
    assert (ppo["runs"], ppo["solved_fraction"]) == (10, 0.5)
    assert (trpo["runs"], trpo["failed"], trpo["solved_fraction"]) == (7, 1, pytest.approx(3 / 7))
    assert ppo["median_wall_seconds"] == np.median([10.0 + s for s in range(1, 11)])
    runs = pd.read_csv(tmp_path / "figures" / "zoo_runs.csv")
    assert len(runs) == 18 and runs["solved"].sum() == 9

    text = doc.read_text()
    assert text.startswith("# head\n\ntext\n") and text.endswith(f"{zoo.END}\n\n## tail\n")
    assert "old table" not in text and body in text
    lines = body.splitlines()
    iqm = scipy.stats.trim_mean(CARTPOLE, 0.25)
    assert any(
        line.startswith(f"| PPO (clip) | 10 | {iqm:.1f} [") and line.endswith("| 5/10 | 16 |")
        for line in lines
    )
    assert any(line.startswith("| TRPO | 7 of 10 (1 failed) |") and "| 3/7 |" in line for line in lines)
    assert "| A2C | 0 of 10 | not yet measured | – | – |" in lines
    assert "| NPG | 1 of 10 (1 short of the budget) | -80.0 [-80.0, -80.0] | 1/1 | 11 |" in lines
    assert "### Pendulum-v1: 100k env steps, solved at a final return ≥ -200" in lines
    zoo.report(tmp_path, doc, tmp_path / "figures", reps=200)
    assert doc.read_text() == text  # the seeded bootstrap reproduces every number


def test_the_report_is_the_same_whatever_order_the_runs_are_found_in(tmp_path):
    """Seed folders are found as seed_1, seed_10, seed_2…, the record lists them 1, 2…, 10: one table."""
    for seed, score in enumerate(CARTPOLE, 1):
        write_summary(tmp_path / "logs", "ppo", "cartpole", seed, score)
    found = zoo.report(tmp_path / "logs", tmp_path / "a.md", tmp_path / "a", reps=200)
    recorded = zoo.report(
        tmp_path / "none", tmp_path / "b.md", tmp_path / "b", reps=200, record=tmp_path / "a" / "zoo_runs.csv"
    )
    assert found == recorded


def test_the_report_by_default_writes_into_logs_and_leaves_docs_alone(tmp_path):
    write_summary(tmp_path, "acktr", "acrobot", 1, -90.0)
    before = {p: p.read_bytes() for p in (zoo.DOC, *zoo.FIGURES.glob("zoo_*.csv"))}
    zoo.main(["--report", "--log-dir", str(tmp_path), "--reps", "20"])
    assert {p: p.read_bytes() for p in before} == before
    report = tmp_path / "zoo" / "report"
    assert sorted(p.name for p in report.iterdir()) == ["zoo_runs.csv", "zoo_table.csv", "zoo_table.md"]
    assert "| ACKTR | 10 | " in (report / "zoo_table.md").read_text()  # seed 1 from the logs, 2-10 recorded


@pytest.mark.slow
def test_the_report_from_the_committed_record_reproduces_the_committed_tables(tmp_path):
    """``--report --docs`` on a clone without logs rewrites docs/zoo.md and docs/figures/zoo_*.csv with
    exactly what they hold (~30 s: 2000 resamples per cell)."""
    doc, figures = tmp_path / "zoo.md", tmp_path / "figures"
    figures.mkdir()
    doc.write_bytes(zoo.DOC.read_bytes())
    (figures / "zoo_runs.csv").write_bytes((zoo.FIGURES / "zoo_runs.csv").read_bytes())
    zoo.main(
        ["--report", "--log-dir", str(tmp_path / "no_logs"), "--doc", str(doc), "--figures", str(figures)]
    )
    assert doc.read_text() == zoo.DOC.read_text()
    for name in ("zoo_runs.csv", "zoo_table.csv"):
        assert (figures / name).read_text() == (zoo.FIGURES / name).read_text(), name


def test_a_doc_without_its_markers_is_refused():
    with pytest.raises(ConfigError, match="must hold"):
        zoo.replace_section("# no markers\n", "table")


def test_the_report_runs_from_the_command_line(tmp_path, capsys):
    write_summary(tmp_path, "acktr", "acrobot", 1, -90.0)
    args = [
        "--report",
        "--log-dir",
        str(tmp_path),
        "--doc",
        str(tmp_path / "d.md"),
        "--figures",
        str(tmp_path),
    ]
    zoo.main([*args, "--reps", "50"])
    assert "| ACKTR | 1 of 10 | -90.0 [-90.0, -90.0] | 1/1 | 11 |" in capsys.readouterr().out
    assert (tmp_path / "d.md").read_text().startswith(zoo.START)


def test_the_report_keeps_recorded_runs_the_logs_lack_and_prefers_the_logs(tmp_path):
    figures, doc = tmp_path / "figures", tmp_path / "zoo.md"
    for seed in (1, 2):
        write_summary(tmp_path / "first", "ppo", "cartpole", seed, 100.0 * seed)
    write_summary(tmp_path / "first", "a2c", "acrobot", 1, -90.0)
    zoo.report(tmp_path / "first", doc, figures, reps=50)
    # a second machine reruns PPO's seed 2 only
    write_summary(tmp_path / "second", "ppo", "cartpole", 2, 480.0)
    zoo.report(tmp_path / "second", doc, figures, reps=50)
    runs = pd.read_csv(figures / "zoo_runs.csv").set_index(["row", "env", "seed"])["ep_return_mean"]
    assert runs.to_dict() == {
        ("a2c", "acrobot", 1): -90.0,
        ("ppo", "cartpole", 1): 100.0,
        ("ppo", "cartpole", 2): 480.0,
    }
    assert "| A2C | 1 of 10 | -90.0 [-90.0, -90.0] | 1/1 | 11 |" in doc.read_text()
    zoo.report(tmp_path / "second", doc, figures, reps=50, fresh=True)
    assert list(pd.read_csv(figures / "zoo_runs.csv")["ep_return_mean"]) == [480.0]


def test_a_record_without_the_run_columns_is_refused(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "zoo_runs.csv").write_text("row,env\nppo,cartpole\n")
    with pytest.raises(ConfigError, match="--fresh"):
        zoo.report(tmp_path, tmp_path / "zoo.md", tmp_path / "figures", reps=50)
