"""The zoo (docs/zoo.md): run the grid of conf/experiment/zoo.yaml locally and tabulate it.

    python scripts/zoo.py --jobs 2                                # the missing runs, then the table
    python scripts/zoo.py --envs cartpole --algos ppo a2c --seeds 1 2 3 --jobs 2
    python scripts/zoo.py --report                                # only the table, into logs/zoo/report/
    python scripts/zoo.py --report --docs                         # the same, rewriting docs/zoo.md's table
    python scripts/zoo.py --dry-run                               # print the commands it would run

Running: every run is one ``rlcamp-train experiment=zoo`` subprocess (one torch thread) writing
``logs/zoo/<row>/<env>/seed_<seed>/summary.json``; a run whose summary.json exists is skipped, so
the command resumes (``--retry-failed`` reruns those recorded as failed). Runs are started env by
env (every row × seed of the first env before the next env), so a partial grid leaves complete
env tables. The cluster form writes the same folders (conf/experiment/zoo.yaml).

Report: the runs found under ``logs/zoo`` plus the runs recorded in docs/figures/zoo_runs.csv that
are not there (so a partial rerun, e.g. one env on another machine, updates its cells and keeps the
rest; ``--fresh`` ignores the record). Per row × env, the IQM of the final ``ep_return_mean``
(mean return of the last 20 training episodes) with its 95% stratified bootstrap CI
(``rlcamp.stats.env_estimates``, rliable, seeded, over the sorted scores so the order runs are
found in changes nothing), the fraction of seeds reaching the env's solve threshold, the seed
count and the median training wall seconds. It writes ``zoo_table.md`` (the table section),
``zoo_runs.csv`` (every run) and ``zoo_table.csv`` (every cell) into ``LOG_DIR/zoo/report/``;
with ``--docs`` it rewrites the table section of docs/zoo.md and docs/figures/zoo_runs.csv and
zoo_table.csv instead, and from the committed record alone it reproduces them byte for byte.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from rlcamp import stats
from rlcamp.errors import ConfigError, require

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "conf" / "experiment" / "zoo.yaml"
ENV_CONF = ROOT / "conf" / "env"
DOC = ROOT / "docs" / "zoo.md"
FIGURES = ROOT / "docs" / "figures"
START, END = "<!-- zoo:table:start -->", "<!-- zoo:table:end -->"
REPS, BOOTSTRAP_SEED = 2000, 0

# The ten rows: each a folder under logs/zoo and the overrides that select it (REINFORCE three times:
# without a baseline, with the rollout's mean return and with its shipped learned-V baseline). The
# folder is what the experiment's ``zoo.row`` resolves to for those overrides.
ROWS: dict[str, tuple[str, ...]] = {
    "reinforce_no_baseline": ("algo=reinforce", "algo.baseline=none"),
    "reinforce_mean_baseline": ("algo=reinforce", "algo.baseline=mean"),
    "reinforce": ("algo=reinforce",),
    "actor_critic": ("algo=actor_critic",),
    "a2c": ("algo=a2c",),
    "npg": ("algo=npg",),
    "trpo": ("algo=trpo",),
    "ppo": ("algo=ppo",),
    "ppo_kl": ("algo=ppo_kl",),
    "acktr": ("algo=acktr",),
}
LABELS = {
    "reinforce_no_baseline": "REINFORCE, no baseline",
    "reinforce_mean_baseline": "REINFORCE, mean baseline",
    "reinforce": "REINFORCE, learned V baseline",
    "actor_critic": "actor-critic (Q-weighted)",
    "a2c": "A2C",
    "npg": "NPG",
    "trpo": "TRPO",
    "ppo": "PPO (clip)",
    "ppo_kl": "PPO (adaptive KL)",
    "acktr": "ACKTR",
}

_ZOO = "[rl-zoo](https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md)"
_CLEANRL = "[CleanRL](https://docs.cleanrl.dev/rl-algorithms/ppo/)"
_BASELINES = "[OpenAI Baselines](https://github.com/openai/baselines/blob/master/benchmarks_mujoco1M.htm)"
_TIANSHOU = "[Tianshou](https://github.com/thu-ml/tianshou/blob/master/examples/mujoco/README.md)"
_ONE_AGENT, _TRAINING = "1 agent, deterministic eval", "3 seeds, training episodes"
# Published figures beside each env's table: (env id, source, agent, figure, budget, protocol).
REFERENCES: list[tuple[str, str, str, str, str, str]] = [
    ("CartPole-v1", _ZOO, "SB3 PPO", "500.0 ± 0.0", "100k", _ONE_AGENT),
    ("CartPole-v1", _ZOO, "SB3 A2C", "500.0 ± 0.0", "500k", _ONE_AGENT),
    ("CartPole-v1", _ZOO, "SB3 TRPO", "500.0 ± 0.0", "100k", _ONE_AGENT),
    ("CartPole-v1", _CLEANRL, "ppo.py", "490.04 ± 6.12", "500k", _TRAINING),
    ("Acrobot-v1", _ZOO, "SB3 PPO", "−73.5 ± 18.2", "1M", _ONE_AGENT),
    ("Acrobot-v1", _ZOO, "SB3 A2C", "−83.4 ± 17.2", "500k", _ONE_AGENT),
    ("Acrobot-v1", _ZOO, "SB3 TRPO", "−83.1 ± 18.6", "100k", _ONE_AGENT),
    ("Acrobot-v1", _CLEANRL, "ppo.py", "−86.36 ± 1.32", "500k", _TRAINING),
    ("Pendulum-v1", _ZOO, "SB3 PPO (γ 0.9, gSDE)", "−172.2 ± 104.2", "100k", _ONE_AGENT),
    ("Pendulum-v1", _ZOO, "SB3 A2C", "−163.0 ± 103.2", "1M", _ONE_AGENT),
    ("Pendulum-v1", _ZOO, "SB3 TRPO", "−174.6 ± 127.6", "100k", _ONE_AGENT),
    ("InvertedPendulum-v5", _CLEANRL, "ppo_continuous_action.py (v4)", "963.09 ± 22.20", "1M", _TRAINING),
    ("InvertedPendulum-v5", _BASELINES, "ppo2 / trpo_mpi (v2)", "809.43 / 905.1", "1M", "mean of 6 seeds"),
    (
        "InvertedPendulum-v5",
        _TIANSHOU,
        "REINFORCE, A2C, PPO, TRPO, NPG (v2)",
        "1000 ± 0 each",
        "1M (REINFORCE 10M)",
        "10 seeds, max over training of deterministic test return",
    ),
]


# ----------------------------------------------------------------------------- the protocol
@dataclass(frozen=True)
class Protocol:
    """The grid and its rules, read from conf/experiment/zoo.yaml (one source for both forms)."""

    envs: tuple[str, ...]  # env config names, in the sweep's order
    env_ids: dict[str, str]  # config name -> gymnasium id
    seeds: tuple[int, ...]
    budgets: dict[str, int]  # gymnasium id -> total_env_steps
    thresholds: dict[str, float]  # gymnasium id -> solve threshold

    def env_id(self, env: str) -> str:
        return self.env_ids[env]


def sweep_values(key: str, value: str) -> list[str]:
    """The values of one sweep parameter (``a,b,c`` or ``range(1,11)``), by Hydra's own parser."""
    return list(OverridesParser.create().parse_override(f"{key}={value}").sweep_string_iterator())


def load_protocol(path: Path = EXPERIMENT) -> Protocol:
    """The zoo's envs, seeds, budgets and thresholds from the experiment file."""
    conf = OmegaConf.load(path)
    params = conf.hydra.sweeper.params
    envs = tuple(sweep_values("env", params.env))
    return Protocol(
        envs=envs,
        env_ids={env: str(OmegaConf.load(ENV_CONF / f"{env}.yaml").id) for env in envs},
        seeds=tuple(int(s) for s in sweep_values("seed", params.seed)),
        budgets={k: int(v) for k, v in conf.zoo.budgets.items()},
        thresholds={k: float(v) for k, v in conf.zoo.solve_thresholds.items()},
    )


# ----------------------------------------------------------------------------- running
@dataclass(frozen=True)
class Run:
    """One run of the grid: a row, an env config name and a seed."""

    row: str
    env: str
    seed: int

    def folder(self, root: Path) -> Path:
        return root / self.row / self.env / f"seed_{self.seed}"


def grid(rows: Sequence[str], envs: Sequence[str], seeds: Sequence[int]) -> list[Run]:
    """Every run, env-major: all rows × seeds of the first env, then the next env."""
    return [Run(row, env, seed) for env in envs for row in rows for seed in seeds]


def is_done(run: Run, root: Path, retry_failed: bool) -> bool:
    """A run is done when its summary.json exists (and, with ``retry_failed``, did not fail)."""
    path = run.folder(root) / "summary.json"
    if not path.is_file():
        return False
    return not retry_failed or json.loads(path.read_text()).get("status") != "failed"


def command(run: Run, log_dir: Path, extra: Sequence[str] = ()) -> list[str]:
    """The ``rlcamp-train`` command line of ``run`` (``python -m rlcamp.train`` is the same entry point)."""
    return [
        sys.executable,
        "-m",
        "rlcamp.train",
        "experiment=zoo",
        "hydra.mode=RUN",
        *ROWS[run.row],
        f"env={run.env}",
        f"seed={run.seed}",
        f"paths.log_dir={log_dir}",
        "num_threads=1",
        *extra,
    ]


def execute(run: Run, log_dir: Path, extra: Sequence[str]) -> int:
    """Run one training subprocess on one thread; its output goes to ``rlcamp-train.out`` in its folder."""
    folder = run.folder(log_dir / "zoo")
    folder.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(folder / "rlcamp-train.out", "w") as out:
        return subprocess.run(
            command(run, log_dir, extra), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        ).returncode


def run_grid(runs: Sequence[Run], log_dir: Path, jobs: int, extra: Sequence[str] = ()) -> None:
    """Run ``runs`` with ``jobs`` in parallel, started in order; print each one as it ends."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute, run, log_dir, extra): run for run in runs}
        for done, future in enumerate(as_completed(futures), 1):
            run = futures[future]
            summary_path = run.folder(log_dir / "zoo") / "summary.json"
            summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
            outcome = (
                f"return {summary['ep_return_mean']:.1f} in {summary['wall_seconds']:.0f} s"
                if summary.get("status") == "completed" and summary.get("ep_return_mean") is not None
                else f"{summary.get('status', 'no summary.json')} (exit {future.result()}; "
                f"see {summary_path.parent / 'rlcamp-train.out'})"
            )
            print(f"[{done}/{len(runs)}] {run.row} {run.env} seed {run.seed}: {outcome}", flush=True)


# ----------------------------------------------------------------------------- the report
RUN_COLUMNS = [
    "row",
    "env",
    "env_id",
    "seed",
    "status",
    "env_steps",
    "ep_return_mean",
    "solved",
    "wall_seconds",
    "steps_per_second",
]


TABLE_COLUMNS = [
    "row",
    "env_id",
    "runs",
    "failed",
    "short_of_budget",
    "iqm",
    "iqm_low",
    "iqm_high",
    "solved_fraction",
    "median_wall_seconds",
]


def load_summaries(root: Path, protocol: Protocol) -> pd.DataFrame:
    """One record per ``<root>/<row>/<env>/seed_<s>/summary.json`` of a zoo row and env."""
    records = []
    for path in sorted(root.glob("*/*/seed_*/summary.json")):
        row, env = path.parts[-4], path.parts[-3]
        if row not in ROWS or env not in protocol.env_ids:
            continue
        summary = json.loads(path.read_text())
        env_id = protocol.env_id(env)
        score = summary.get("ep_return_mean") if summary.get("status") == "completed" else None
        score = float("nan") if score is None else float(score)
        records.append(
            {
                "row": row,
                "env": env,
                "env_id": env_id,
                "seed": int(path.parts[-2].removeprefix("seed_")),
                "status": summary.get("status"),
                "env_steps": summary.get("env_steps"),
                "ep_return_mean": score,
                "solved": bool(score >= protocol.thresholds[env_id]),
                "wall_seconds": summary.get("wall_seconds"),
                "steps_per_second": summary.get("steps_per_second"),
            }
        )
    return pd.DataFrame(records, columns=RUN_COLUMNS)


def merge_record(found: pd.DataFrame, record: Path) -> pd.DataFrame:
    """``found`` plus the runs of the ``record`` CSV (an earlier report's zoo_runs.csv) it lacks."""
    if not record.is_file():
        return found
    recorded = pd.read_csv(record, float_precision="round_trip")
    missing = set(RUN_COLUMNS) - set(recorded.columns)
    require(not missing, f"{record} lacks the columns {sorted(missing)}; rerun its runs or pass --fresh")
    key = ["row", "env", "seed"]
    known = pd.MultiIndex.from_frame(found[key])
    kept = recorded.loc[~pd.MultiIndex.from_frame(recorded[key]).isin(known), RUN_COLUMNS]
    return pd.concat([found, kept], ignore_index=True) if len(kept) else found


@dataclass(frozen=True)
class Cell:
    """One row × env of the table."""

    runs: int  # summaries found (completed or failed)
    failed: int  # runs without a final return (failed, or no episode finished)
    short: int  # completed runs that stopped before the env's budget (run with another total_env_steps)
    iqm: stats.Estimate | None  # over the runs with a final return
    solved: int  # runs whose final return reaches the threshold (a failed run does not)
    median_wall_seconds: float


def cell(runs: pd.DataFrame, budget: int, reps: int, seed: int) -> Cell:
    """IQM [95% CI] of the final returns (rliable through ``rlcamp.stats``), solves, wall time."""
    scores = np.sort(runs["ep_return_mean"].dropna().to_numpy(float))  # the bootstrap is order-sensitive
    steps = runs.loc[runs["status"] == "completed", "env_steps"].to_numpy(float)
    iqm = stats.env_estimates(scores, reps, seed)["iqm"] if len(scores) else None
    walls = runs["wall_seconds"].dropna().to_numpy(float)
    return Cell(
        runs=len(runs),
        failed=len(runs) - len(scores),
        short=int((steps < budget).sum()),
        iqm=iqm,
        solved=int(runs["solved"].sum()),
        median_wall_seconds=float(np.median(walls)) if len(walls) else math.nan,
    )


def cells(finals: pd.DataFrame, protocol: Protocol, reps: int, seed: int) -> dict[tuple[str, str], Cell]:
    """Every row × env that has at least one summary."""
    return {
        (row, env): cell(
            finals[(finals["row"] == row) & (finals["env"] == env)],
            protocol.budgets[protocol.env_id(env)],
            reps,
            seed,
        )
        for env in protocol.envs
        for row in ROWS
        if ((finals["row"] == row) & (finals["env"] == env)).any()
    }


def _steps(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def env_markdown(env: str, table: dict[tuple[str, str], Cell], protocol: Protocol) -> list[str]:
    """One env's table (a row per algorithm, "not yet measured" where it has no run) and its references."""
    env_id, expected = protocol.env_id(env), len(protocol.seeds)
    threshold = protocol.thresholds[env_id]
    lines = [
        f"### {env_id}: {_steps(protocol.budgets[env_id])} env steps, solved at a final return "
        f"≥ {threshold:g}",
        "",
        "| algorithm | seeds | IQM [95% CI] | solved | median wall s |",
        "|---|---:|---|---:|---:|",
    ]
    for row, label in LABELS.items():
        c = table.get((row, env))
        if c is None:
            lines.append(f"| {label} | 0 of {expected} | not yet measured | – | – |")
            continue
        seeds = f"{c.runs}" if c.runs == expected else f"{c.runs} of {expected}"
        if c.failed:
            seeds += f" ({c.failed} failed)"
        if c.short:
            seeds += f" ({c.short} short of the budget)"
        iqm = "–" if c.iqm is None else f"{c.iqm.value:.1f} [{c.iqm.low:.1f}, {c.iqm.high:.1f}]"
        lines.append(f"| {label} | {seeds} | {iqm} | {c.solved}/{c.runs} | {c.median_wall_seconds:.0f} |")
    references = [r for r in REFERENCES if r[0] == env_id]
    if references:
        lines += [
            "",
            "Published (other protocols, see below):",
            "",
            "| source | agent | score | budget | protocol |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {src} | {agent} | {score} | {budget} | {how} |"
            for _, src, agent, score, budget, how in references
        ]
    return lines + [""]


def report_markdown(table: dict[tuple[str, str], Cell], protocol: Protocol, reps: int, seed: int) -> str:
    """The generated section of docs/zoo.md: one table per env, then how the numbers were made."""
    lines: list[str] = []
    for env in protocol.envs:
        lines += env_markdown(env, table, protocol)
    lines.append(
        f"IQM: mean of the middle 50% of the seeds' final returns (`scipy.stats.trim_mean(x, 0.25)`); "
        f"[95% CI]: percentile interval of {reps} bootstrap resamples of the seeds (rliable, seed {seed}). "
        "solved: seeds whose final return reaches the threshold, out of the seeds run (a failed run "
        "counts as not solved and is left out of the IQM). median wall s: training time of one run, "
        "without the ~8 s of process start-up."
    )
    return "\n".join(lines) + "\n"


def replace_section(text: str, body: str) -> str:
    """``text`` with what lies between the START and END markers replaced by ``body``."""
    require(
        text.count(START) == 1 and text.count(END) == 1 and text.index(START) < text.index(END),
        f"the doc must hold {START} and then {END} once each; add them where the table goes",
    )
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{body}{END}{tail}"


def report(
    log_dir: Path,
    doc: Path,
    figures: Path,
    reps: int = REPS,
    seed: int = BOOTSTRAP_SEED,
    fresh: bool = False,
    record: Path | None = None,
) -> str:
    """Tabulate every summary under ``log_dir/zoo`` and, unless ``fresh``, the recorded runs it lacks
    (``record``, by default ``figures/zoo_runs.csv``): rewrite ``doc``'s table section (a new file
    holds only the section), write the CSVs into ``figures``."""
    protocol = load_protocol()
    finals = load_summaries(log_dir / "zoo", protocol)
    if not fresh:
        finals = merge_record(finals, record or figures / "zoo_runs.csv")
    table = cells(finals, protocol, reps, seed)
    body = report_markdown(table, protocol, reps, seed)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(replace_section(doc.read_text() if doc.is_file() else f"{START}\n{END}\n", body))
    figures.mkdir(parents=True, exist_ok=True)
    finals.sort_values(["env", "row", "seed"]).to_csv(figures / "zoo_runs.csv", index=False)
    rows = [
        {
            "row": row,
            "env_id": protocol.env_id(env),
            "runs": c.runs,
            "failed": c.failed,
            "short_of_budget": c.short,
            "iqm": c.iqm.value if c.iqm else math.nan,
            "iqm_low": c.iqm.low if c.iqm else math.nan,
            "iqm_high": c.iqm.high if c.iqm else math.nan,
            "solved_fraction": c.solved / c.runs,
            "median_wall_seconds": c.median_wall_seconds,
        }
        for (row, env), c in table.items()
    ]
    pd.DataFrame(rows, columns=TABLE_COLUMNS).to_csv(figures / "zoo_table.csv", index=False)
    return body


def main(argv: Sequence[str] | None = None) -> None:
    protocol = load_protocol()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE", help="a Hydra override for every run"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel, one core each (default 1)")
    parser.add_argument("--algos", nargs="+", choices=list(ROWS), default=list(ROWS), metavar="ROW")
    parser.add_argument("--envs", nargs="+", choices=protocol.envs, default=list(protocol.envs))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(protocol.seeds))
    parser.add_argument("--log-dir", type=Path, default=ROOT / "logs", help="runs go to LOG_DIR/zoo/")
    parser.add_argument(
        "--report", action="store_true", help="only build the table (into LOG_DIR/zoo/report/, or --docs)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands of the missing runs")
    parser.add_argument("--retry-failed", action="store_true", help="rerun runs recorded as failed")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="rewrite docs/zoo.md's table and docs/figures/zoo_*.csv (default: LOG_DIR/zoo/report/)",
    )
    parser.add_argument(
        "--doc", type=Path, help="the Markdown file whose table section is rewritten (default: see --docs)"
    )
    parser.add_argument(
        "--figures", type=Path, help="where zoo_runs.csv and zoo_table.csv go (default: see --docs)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="tabulate only LOG_DIR's runs, not those recorded in zoo_runs.csv",
    )
    parser.add_argument("--reps", type=int, default=REPS, help=f"bootstrap resamples (default {REPS})")
    args = parser.parse_args(argv)
    log_dir = args.log_dir.resolve()
    figures = args.figures or (FIGURES if args.docs else log_dir / "zoo" / "report")
    doc = args.doc or (DOC if args.docs else figures / "zoo_table.md")
    # the runs recorded where --figures points, else the committed record
    record = (args.figures or FIGURES) / "zoo_runs.csv"
    if not args.report:
        if args.jobs < 1:
            raise ConfigError(f"--jobs {args.jobs} must be >= 1")
        runs = grid(args.algos, args.envs, args.seeds)
        missing = [run for run in runs if not is_done(run, log_dir / "zoo", args.retry_failed)]
        print(f"zoo: {len(runs) - len(missing)} of {len(runs)} runs done, {len(missing)} to run", flush=True)
        if args.dry_run:
            print("\n".join(" ".join(command(run, log_dir, args.override)) for run in missing))
            return
        run_grid(missing, log_dir, args.jobs, args.override)
    print(report(log_dir, doc, figures, args.reps, fresh=args.fresh, record=record))
    print(f"wrote the table into {doc} and the runs into {figures / 'zoo_runs.csv'}")


if __name__ == "__main__":
    main()
