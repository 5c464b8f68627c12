"""``rlcamp-compare``: learning curves, final-return tables and rliable statistics from runs,
multiruns or W&B.

    rlcamp-compare logs/train/multiruns/2026-11-25_10-00-00-000000
    rlcamp-compare logs/a/multiruns/X logs/b/multiruns/Y --out docs/figures --name ppo_paper
    rlcamp-compare --wandb my-entity/rlcamp --band std --baseline ppo --reps 5000 --seed 1

It reads every run below the given directories (a run is a directory with ``metrics.csv`` or
``summary.json``; the config values that differ between runs name the setting), leaves out the runs whose
status says they ended before their budget (``stopped``, ``preempted``, ``interrupted``,
``failed``; one line counts them) and writes into ``--out``:

- ``<name>_runs.csv``: the tidy table, one row per run × logged row (``run, algo, env, seed,
  setting, label, env_steps, return``), to go on with in pandas;
- ``<name>_final.csv`` and ``<name>_final.md``: final return per env × algo/setting, mean ± std
  over seeds and the seed count ("final" is ``summary.json``'s ``ep_return_mean``, the mean
  return of the last 20 training episodes; a run without one counts its last logged row);
- ``<name>.png`` and ``<name>.svg``: one panel per env, one line per algo/setting, the mean over
  seeds and a band (95% t-interval of the mean by default) against environment steps;
- ``<name>_rliable.csv`` and ``<name>_rliable.md``: IQM, median, mean and optimality gap of the
  final return with 95% stratified bootstrap CIs (``rlcamp.stats``, the ``rliable`` package), per
  env and over envs in normalized score (``rlcamp.stats.NORMALIZATION``, ``--reference``);
- ``<name>_improvement.csv`` and ``<name>_improvement.md``: probability of improvement of every
  setting over every other (or over ``--baseline``), per env and over envs, with CIs;
- ``<name>_profiles.png``: performance profiles (fraction of runs above τ) with CI bands;
- ``<name>_iqm_curves.png`` and ``.svg``: the IQM over seeds and its 95% bootstrap CI against
  environment steps.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from rlcamp import stats
from rlcamp.utils.conf import algo_name

RETURN = "rollout/ep_return_mean"
COLUMNS = ["run", "algo", "env", "seed", "setting", "label", "env_steps", "return"]
# config keys (by first component) and config groups that house or log a run: never a setting
_NOT_CONFIG = (
    "seed",
    "task_name",
    "tags",
    "ckpt_path",
    "resume",
    "optimized_metric",
    "num_threads",
    "paths",
    "hydra",
    "logger",
    "callbacks",
    "trainer",
    "local",
    "debug",
    "hparams_search",
)
# config groups whose choice is compared by name (the algorithm, the env id), not as a setting
_IDENTITY_GROUPS = ("algo", "env")
BUDGET = "total_env_steps"


# ----------------------------------------------------------------------------- reading runs
def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories at or below ``paths``: those holding ``metrics.csv`` or ``summary.json``."""
    runs: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: pass a run or multirun directory")
        for name in ("metrics.csv", "summary.json"):
            runs.update(p.parent for p in path.rglob(name))
    return sorted(runs)


def label_of(algo: str, setting: str) -> str:
    return f"{algo} {setting}" if setting else algo


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"algo.optimizer.lr": "0.001", ...}``: every leaf of a nested config, its value as text."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_config(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def setting_values(
    config: dict[str, Any], choices: dict[str, Any], overrides: Sequence[str]
) -> dict[str, str]:
    """What a run trains, as flat ``key: value`` text: its config and config-group choices
    (``network: mlp_shared``) without seeds and the keys that house or log it (paths, loggers,
    trainer…); an override fills a key the saved config lacks. The budget ``total_env_steps`` is in."""
    values = {
        group: str(choice)
        for group, choice in choices.items()
        if "/" not in group and group not in _IDENTITY_GROUPS
    }
    values.update(flat_config(config))
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key not in _IDENTITY_GROUPS:
            values.setdefault(key, value)
    return {
        key: value
        for key, value in values.items()
        if key.split(".")[0].split("/")[0] not in _NOT_CONFIG
        and key.split(".")[-1] != "seed"
        and value != "None"
    }


def differing_keys(configs: Sequence[dict[str, str]]) -> list[str]:
    """The keys whose value is not the same in every one of ``configs`` (missing counts as a value),
    less those under a differing group choice (``network.hidden`` when ``network`` differs)."""
    keys = sorted({key for config in configs for key in config})
    differ = [key for key in keys if len({config.get(key) for config in configs}) > 1]
    return [key for key in differ if not any(key.startswith(f"{group}.") for group in differ)]


def name_settings(curves: pd.DataFrame, finals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(curves, finals)`` with ``setting`` and ``label`` named by what differs: within each algo ×
    env, the ``config`` keys whose values differ between its runs (after the run's W&B ``group``), so
    runs that trained the same thing with other seeds share a label and no two settings do."""
    finals = finals.copy()
    for _, runs in finals.groupby(["algo", "env"], sort=False):
        keys = differing_keys(list(runs["config"]))
        for index, row in runs.iterrows():
            named = " ".join(f"{key}={row['config'].get(key)}" for key in keys)
            finals.at[index, "setting"] = " ".join(part for part in (row["group"], named) if part)
    finals["label"] = [label_of(a, s) for a, s in zip(finals["algo"], finals["setting"], strict=True)]
    curves = curves.copy()
    for column in ("setting", "label"):
        curves[column] = curves["run"].map(dict(zip(finals["run"], finals[column], strict=True)))
    return curves, finals


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def read_damaged(path: Path, read: Callable[[Path], Any], kind: str) -> Any:
    """``read(path)``; a damaged file (truncated, empty, binary: the ``ValueError`` that json,
    pandas and the UTF-8 decoder raise) becomes one line naming the file and the fix."""
    try:
        return read(path)
    except ValueError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(
            f"{path} is not readable {kind} ({reason}); repair or delete it, or leave its run out"
        ) from None


def read_run(run_dir: Path, root: Path, metric: str = RETURN) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One run: its tidy curve rows and its final record (with ``config``, what it trained, for
    :func:`name_settings`, and ``resumed_from`` for :func:`drop_continued`)."""
    summary_path = run_dir / "summary.json"
    summary = (
        read_damaged(summary_path, lambda p: json.loads(p.read_text()), "JSON")
        if summary_path.is_file()
        else {}
    )
    config = _yaml(run_dir / ".hydra" / "config.yaml") or {}
    overrides = _yaml(run_dir / ".hydra" / "overrides.yaml") or []
    choices = ((_yaml(run_dir / ".hydra" / "hydra.yaml") or {}).get("hydra") or {}).get("runtime", {})
    algo_cfg, env_cfg = config.get("algo") or {}, config.get("env") or {}
    algo = algo_name(algo_cfg["_target_"]) if "_target_" in algo_cfg else summary.get("algo", "?")
    env = summary.get("env_id") or env_cfg.get("id", "?")
    seed = summary.get("seed", config.get("seed"))
    name = (
        str(Path(root.resolve().name) / run_dir.relative_to(root)) if run_dir != root else root.resolve().name
    )
    ident = {"run": name, "algo": algo, "env": env, "seed": seed, "setting": "", "label": algo}
    curve = pd.DataFrame(columns=COLUMNS)
    if (run_dir / "metrics.csv").is_file():
        logged = read_damaged(run_dir / "metrics.csv", pd.read_csv, "CSV")
        if "env_steps" in logged and metric in logged:
            logged = logged[["env_steps", metric]].dropna()
            curve = pd.DataFrame(
                {**ident, "env_steps": logged["env_steps"].to_numpy(), "return": logged[metric].to_numpy()}
            )
    final = summary.get("ep_return_mean") if metric == RETURN else None
    if final is None and len(curve):
        final = float(curve["return"].iloc[-1])
    record = {
        **ident,
        "env_steps": summary.get("env_steps", curve["env_steps"].max() if len(curve) else None),
        "final_return": final,
        "status": summary.get("status", "no summary.json"),
        "group": "",
        "config": setting_values(config, choices.get("choices") or {}, [str(o) for o in overrides]),
        "run_dir": str(run_dir.resolve()),
        "resumed_from": summary.get("resumed_from"),
    }
    return curve[COLUMNS], record


def load_runs(paths: Iterable[str | Path], metric: str = RETURN) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(curves, finals)`` of every run below ``paths``: the tidy table and one record per run."""
    curves, finals = [], []
    for path in map(Path, paths):
        for run_dir in find_runs([path]):
            curve, record = read_run(run_dir, path, metric)
            curves.append(curve)
            finals.append(record)
    if not finals:
        raise FileNotFoundError(
            f"no run (a directory with metrics.csv or summary.json) below {list(map(str, paths))}"
        )
    # two roots can hold runs of one name (logs/zoo/a/cartpole and logs/zoo/b/cartpole both give
    # cartpole/seed_1): those are named by their full path, so no two runs merge into one
    names = Counter(record["run"] for record in finals)
    for curve, record in zip(curves, finals, strict=True):
        if names[record["run"]] > 1:
            record["run"] = record["run_dir"]
            curve["run"] = record["run_dir"]
    return name_settings(_concat(curves), pd.DataFrame(finals))


def load_wandb(
    project: str, metric: str = RETURN, filters: dict[str, Any] | None = None, api: Any = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(curves, finals)`` from a W&B project (``entity/project``) through ``wandb.Api()``.

    Algo, env and seed come from each run's logged config (``algo._target_``, ``env.id``,
    ``seed``); the setting is the run's W&B group when it has one. Needs network access and a
    W&B login: without one, a ``LookupError`` in one line says how to log in.
    """
    if api is None:
        import wandb

        try:
            api = wandb.Api()
        except wandb.errors.Error as err:
            raise LookupError(
                f"--wandb {project}: {str(err).splitlines()[0]} (wandb login, or WANDB_API_KEY in .env)"
            ) from None
    curves, finals = [], []
    for run in api.runs(project, filters=filters or {}):
        config = json.loads(json.dumps(dict(run.config), default=str))
        algo = algo_name(str((config.get("algo") or {}).get("_target_", "?")))
        env = (config.get("env") or {}).get("id", "?")
        setting = run.group or ""
        ident = {
            "run": run.path[-1] if isinstance(run.path, list) else str(run.id),
            "algo": algo,
            "env": env,
            "seed": config.get("seed"),
            "setting": setting,
            "label": label_of(algo, setting),
        }
        rows = [r for r in run.scan_history(keys=["env_steps", metric]) if r.get(metric) is not None]
        curve = pd.DataFrame(
            {**ident, "env_steps": [r["env_steps"] for r in rows], "return": [r[metric] for r in rows]}
        )
        curves.append(curve.reindex(columns=COLUMNS))
        final = run.summary.get(metric)
        finals.append(
            {
                **ident,
                "env_steps": run.summary.get("env_steps"),
                "final_return": final if final is not None else (rows[-1][metric] if rows else None),
                "status": run.state,
                "group": setting,
                "config": setting_values(config, {}, []),
                "run_dir": None,
                "resumed_from": None,
            }
        )
    if not finals:
        raise LookupError(f"W&B project {project} has no runs matching {filters or {}}")
    return name_settings(_concat(curves), pd.DataFrame(finals))


# statuses of runs that did not spend their budget: rlcamp's summary.json, W&B's run states
UNFINISHED = ("stopped", "preempted", "interrupted", "failed", "crashed", "killed")


def drop_unfinished(curves: pd.DataFrame, finals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """``(curves, finals)`` without the runs whose status says they ended before their budget, and a
    one-line note counting them by status (empty when none): a cut-short run would pull its
    setting's final return and curve toward an earlier point of training."""
    unfinished = finals["status"].isin(UNFINISHED)
    if not unfinished.any():
        return curves, finals, ""
    counts = finals.loc[unfinished, "status"].value_counts().sort_index()
    listed = ", ".join(f"{n} {status}" for status, n in counts.items())
    note = (
        f"rlcamp-compare: left out {int(unfinished.sum())} run(s) that did not finish ({listed}); "
        "their summary.json says why"
    )
    kept = finals.loc[~unfinished].reset_index(drop=True)
    return curves[curves["run"].isin(kept["run"])].reset_index(drop=True), kept, note


def _run_of_checkpoint(checkpoint: str) -> str:
    """The run folder a checkpoint path belongs to (``<run>/checkpoints/last.ckpt`` → ``<run>``)."""
    path = Path(checkpoint).resolve()
    return str(path.parent.parent if path.parent.name == "checkpoints" else path.parent)


def drop_continued(curves: pd.DataFrame, finals: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """``(curves, finals)`` without the runs another compared run resumed from (its ``resumed_from``):
    a resumed run's ``metrics.csv`` holds the whole chain, so a chain counts once, as its last folder;
    and a one-line note counting them (empty when none)."""
    continued = {
        _run_of_checkpoint(source)
        for run_dir, source in zip(finals["run_dir"], finals["resumed_from"], strict=True)
        if isinstance(source, str) and _run_of_checkpoint(source) != run_dir
    }
    earlier = finals["run_dir"].isin(continued)
    if not earlier.any():
        return curves, finals, ""
    kept = finals.loc[~earlier].reset_index(drop=True)
    note = (
        f"rlcamp-compare: counted {int(earlier.sum())} resumed run(s) once: left out the earlier "
        "folder(s) a later run resumed from (its metrics.csv holds the whole run)"
    )
    return curves[curves["run"].isin(kept["run"])].reset_index(drop=True), kept, note


def mixed_budgets(finals: pd.DataFrame) -> str:
    """A one-line note when the runs have more than one budget (``total_env_steps``), which then
    name separate settings; empty otherwise."""
    budgets = finals["config"].map(lambda config: config.get(BUDGET)).dropna()
    if budgets.nunique() < 2:
        return ""
    counts = budgets.value_counts().sort_index(key=lambda b: b.map(float))
    listed = ", ".join(f"{n} of {budget}" for budget, n in counts.items())
    return (
        f"rlcamp-compare: runs of {len(counts)} budgets ({listed} env steps) are compared as separate "
        f"settings ({BUDGET}=... in their names); pass runs of one budget to pool them"
    )


def duplicate_seeds(finals: pd.DataFrame) -> str:
    """A one-line warning when a setting counts a seed more than once (the same run in two folders,
    which would pass for more evidence); empty otherwise."""
    counts = finals.dropna(subset=["seed"]).groupby(["env", "label", "seed"]).size()
    repeated = counts[counts > 1]
    if repeated.empty:
        return ""
    listed = ", ".join(f"{env} / {label} seed {seed} ×{n}" for (env, label, seed), n in repeated.items())
    return (
        f"warning: {len(repeated)} seed(s) count more than once in their setting ({listed}): "
        "pass only one folder of each run"
    )


def comparable_runs(
    curves: pd.DataFrame, finals: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """``(curves, finals, notes)``: a resumed chain once, no unfinished run, settings named by what
    differs (budget included), and one line for each of: runs left out, mixed budgets, repeated seeds."""
    curves, finals, continued = drop_continued(curves, finals)
    curves, finals, unfinished = drop_unfinished(curves, finals)
    if finals.empty:
        return curves, finals, [n for n in (continued, unfinished) if n]
    curves, finals = name_settings(curves, finals)
    notes = [continued, unfinished, mixed_budgets(finals), duplicate_seeds(finals)]
    return curves, finals, [note for note in notes if note]


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[COLUMNS] if frames else pd.DataFrame(columns=COLUMNS)


# ----------------------------------------------------------------------------- aggregation
def final_table(finals: pd.DataFrame) -> pd.DataFrame:
    """Final return per env × label: mean, sample std (ddof 1; NaN for one seed), seed count."""
    grouped = finals.dropna(subset=["final_return"]).groupby(["env", "label"], sort=True)["final_return"]
    table = grouped.agg(mean="mean", std="std", n_seeds="count", min="min", max="max").reset_index()
    return table


def final_markdown(table: pd.DataFrame, unit: str = "return") -> str:
    """A Markdown grid: one row per env, one column per label, cells ``mean ± std (n)`` of the final
    ``unit`` (the compared metric)."""

    def cell(row: pd.Series) -> str:
        spread = f" ± {row['std']:.1f}" if not math.isnan(row["std"]) else ""
        return f"{row['mean']:.1f}{spread} ({int(row['n_seeds'])})"

    labels = sorted(table["label"].unique())
    lines = ["| env | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for env, rows in table.groupby("env", sort=True):
        cells = {r["label"]: cell(r) for _, r in rows.iterrows()}
        lines.append(f"| {env} | " + " | ".join(cells.get(label, "–") for label in labels) + " |")
    return "\n".join(lines) + f"\n\nmean ± std over seeds (seed count) of the final {unit}.\n"


def t_quantile(df: int, level: float = 0.95) -> float:
    """Two-sided Student-t quantile for a ``level`` interval (normal for large ``df``)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


def runs_on_grid(group: pd.DataFrame, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``(grid, returns[n_runs, points])``: each run of ``group`` linearly interpolated onto ``points``
    env steps spanning the range every run covers (so no statistic is over a shrinking set of runs)."""
    runs = [g.sort_values("env_steps") for _, g in group.groupby("run")]
    lo = max(r["env_steps"].min() for r in runs)
    hi = min(r["env_steps"].max() for r in runs)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([hi])
    ys = np.stack(
        [np.interp(grid, r["env_steps"].to_numpy(float), r["return"].to_numpy(float)) for r in runs]
    )
    return grid, ys


def aggregate_curves(curves: pd.DataFrame, band: str = "ci95", points: int = 200) -> pd.DataFrame:
    """Mean and band over seeds on a common env-step grid (:func:`runs_on_grid`), per env × label.

    ``band``: ``ci95`` (mean ± t·std/√n), ``std`` (mean ± std) or ``minmax``.
    """
    out = []
    for (env, label), group in curves.groupby(["env", "label"], sort=True):
        grid, ys = runs_on_grid(group, points)
        mean, n = ys.mean(0), len(ys)
        std = ys.std(0, ddof=1) if n > 1 else np.zeros_like(mean)
        if band == "std":
            low, high = mean - std, mean + std
        elif band == "minmax":
            low, high = ys.min(0), ys.max(0)
        else:
            half = t_quantile(n - 1) * std / math.sqrt(n) if n > 1 else np.zeros_like(mean)
            low, high = mean - half, mean + half
        out.append(_curve_frame(env, label, grid, mean, low, high, n))
    return pd.concat(out, ignore_index=True)


def iqm_curves(curves: pd.DataFrame, reps: int, seed: int, points: int = 100) -> pd.DataFrame:
    """IQM over seeds and its 95% stratified bootstrap CI (:func:`rlcamp.stats.iqm_curve`) at each
    of ``points`` env steps, per env × label; the IQM is in the ``mean`` column :func:`plot_curves` reads."""
    out = []
    for (env, label), group in curves.groupby(["env", "label"], sort=True):
        grid, ys = runs_on_grid(group, points)
        iqm, ci = stats.iqm_curve(ys, reps, seed)
        out.append(_curve_frame(env, label, grid, iqm, ci[0], ci[1], len(ys)))
    return pd.concat(out, ignore_index=True)


def _curve_frame(
    env: str, label: str, grid: np.ndarray, center: np.ndarray, low: np.ndarray, high: np.ndarray, n: int
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "env": env,
            "label": label,
            "env_steps": grid,
            "mean": center,
            "low": low,
            "high": high,
            "n_seeds": n,
        }
    )


# ----------------------------------------------------------------------------- plotting
BAND_TEXT = {
    "ci95": "mean over seeds, band: 95% CI of the mean",
    "std": "mean over seeds, band: ±1 std",
    "minmax": "mean over seeds, band: min–max",
    "iqm": "IQM over seeds, band: 95% stratified bootstrap CI",
}


def _pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    aggregated: pd.DataFrame,
    stem: str | Path,
    title: str = "",
    band: str = "ci95",
    unit: str = "episode return",
) -> list[Path]:
    """The grid of learning curves, one panel per env, saved as ``stem.png`` and ``stem.svg``.

    ``band`` names what ``aggregated`` holds (a key of ``BAND_TEXT``), for the legend; ``unit``
    labels the y-axis (the compared metric)."""
    plt = _pyplot()
    envs = sorted(aggregated["env"].unique())
    labels = sorted(aggregated["label"].unique())
    colors = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    ncols = min(len(envs), 4)
    nrows = math.ceil(len(envs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    for ax, env in zip(axes.flat, envs, strict=False):
        for label, curve in aggregated[aggregated["env"] == env].groupby("label", sort=True):
            ax.plot(
                curve["env_steps"],
                curve["mean"],
                color=colors[label],
                lw=1.5,
                label=f"{label} (n={curve['n_seeds'].iloc[0]})",
            )
            ax.fill_between(
                curve["env_steps"], curve["low"], curve["high"], color=colors[label], alpha=0.2, lw=0
            )
        ax.set_title(env, fontsize=10)
        ax.set_xlabel("environment steps")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(envs) :]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(unit)
    handles = [plt.Line2D([], [], color=colors[label], lw=2) for label in labels]
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False, title=BAND_TEXT[band]
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.12 if nrows == 1 else 0.07, 1, 1))
    return _save(fig, Path(stem), (".png", ".svg"))


def _save(fig: Any, stem: Path, suffixes: Sequence[str]) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + suffix) for suffix in suffixes]
    for path in paths:  # "tight": the canvas grows to hold a legend of long labels instead of cutting it
        fig.savefig(path, dpi=130, bbox_inches="tight")
    _pyplot().close(fig)
    return paths


def plot_profiles(
    finals: pd.DataFrame,
    normalization: dict[str, stats.Normalizer],
    stem: Path,
    reps: int,
    seed: int,
    unit: str = "episode return",
) -> list[Path]:
    """Performance profiles, fraction of runs scoring above τ with 95% CI bands
    (``rliable.plot_utils.plot_performance_profiles``): one panel per env in episode return, and one
    over the aggregated envs in normalized score; saved as ``stem.png``."""
    from rliable import plot_utils

    plt = _pyplot()
    scores = stats.scores_by_env(finals)
    envs, _ = stats.aggregate_envs(scores, normalization)
    panels = [
        (env, {label: [runs] for label, runs in by_label.items()}, unit) for env, by_label in scores.items()
    ]
    if envs:
        labels = sorted(scores[envs[0]])
        normalized = {label: [normalization[env](scores[env][label]) for env in envs] for label in labels}
        panels.append((f"{stats.AGGREGATE} ({len(envs)}, normalized)", normalized, "normalized score"))
    labels = sorted({label for by_label in scores.values() for label in by_label})
    colors = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False)
    for ax, (name, by_label, unit) in zip(axes.flat, panels, strict=False):
        pooled = np.concatenate([np.concatenate(runs) for runs in by_label.values()])
        low, high = pooled.min(), pooled.max()
        if unit == "normalized score":
            low, high = min(low, 0.0), max(high, 1.0)
        taus = np.linspace(low, high, 101) if high > low else np.array([low - 1, low, low + 1])
        profiles, cis = {}, {}
        for label, runs in by_label.items():
            profiles[label], cis[label] = stats.performance_profile(runs, taus, reps, seed)
        plot_utils.plot_performance_profiles(
            profiles,
            taus,
            performance_profile_cis=cis,
            ax=ax,
            colors=colors,
            xlabel=f"{unit} τ",
            ylabel="fraction of runs > τ",
            labelsize="medium",
            ticklabelsize="small",
        )
        ax.set_title(name, fontsize=10)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=colors[label], lw=2) for label in labels]
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=min(len(labels), 6),
        frameon=False,
        title="performance profile, band: 95% stratified bootstrap CI",
    )
    fig.tight_layout(rect=(0, 0.14 if nrows == 1 else 0.07, 1, 1))
    return _save(fig, stem, (".png",))


# ----------------------------------------------------------------------------- command line
def compare(
    curves: pd.DataFrame,
    finals: pd.DataFrame,
    out: Path,
    name: str = "compare",
    band: str = "ci95",
    title: str = "",
    reps: int = 2000,
    seed: int = 0,
    baseline: str | None = None,
    normalization: dict[str, stats.Normalizer] | None = None,
    metric: str = RETURN,
) -> dict[str, Path]:
    """Write the tidy table, the final-value tables, the rliable tables and the figures into ``out``.

    A ``metric`` other than the return labels the axes and tables by its name and has no reference
    scores: no optimality gap and no normalized aggregate over envs."""
    unit = "episode return" if metric == RETURN else metric
    normalization = stats.NORMALIZATION if normalization is None else normalization
    if metric != RETURN:
        normalization = {}
    improvement = stats.improvement_table(finals, reps, seed, baseline)  # first: it checks ``baseline``
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "runs": out / f"{name}_runs.csv",
        "final_csv": out / f"{name}_final.csv",
        "final_md": out / f"{name}_final.md",
        "rliable_csv": out / f"{name}_rliable.csv",
        "rliable_md": out / f"{name}_rliable.md",
        "improvement_csv": out / f"{name}_improvement.csv",
        "improvement_md": out / f"{name}_improvement.md",
    }
    curves.to_csv(paths["runs"], index=False)
    table = final_table(finals)
    table.to_csv(paths["final_csv"], index=False)
    paths["final_md"].write_text(final_markdown(table, "return" if metric == RETURN else metric))
    rliable, notes = stats.rliable_table(finals, normalization, reps, seed)
    if metric != RETURN:
        notes.insert(0, f"{metric} has no reference scores: no optimality gap, no aggregate over envs")
    notes += stats.reliability_warnings(stats.scores_by_env(finals))
    rliable.to_csv(paths["rliable_csv"], index=False)
    paths["rliable_md"].write_text(stats.rliable_markdown(rliable, notes, reps, seed, unit))
    improvement.to_csv(paths["improvement_csv"], index=False)
    paths["improvement_md"].write_text(
        stats.improvement_markdown(improvement, reps, seed)
        if len(improvement)
        else "no two settings share an env: no probability of improvement.\n"
    )
    if len(rliable):
        (paths["profiles"],) = plot_profiles(
            finals, normalization, out / f"{name}_profiles", reps, seed, unit
        )
    if len(curves):
        png, svg = plot_curves(aggregate_curves(curves, band), out / name, title, band, unit)
        iqm_png, iqm_svg = plot_curves(
            iqm_curves(curves, reps, seed), out / f"{name}_iqm_curves", title, "iqm", unit
        )
        paths.update(png=png, svg=svg, iqm_png=iqm_png, iqm_svg=iqm_svg)
    return paths


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rlcamp-compare",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", help="run or multirun directories (searched recursively)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="also read this W&B project (online)")
    parser.add_argument(
        "--wandb-filters",
        metavar="JSON",
        default="{}",
        help='MongoDB-style run filters, e.g. \'{"group": "ppo_paper"}\'',
    )
    parser.add_argument("--out", type=Path, help="output directory (default: <first path>/compare)")
    parser.add_argument("--name", default="compare", help="file-name stem of the outputs")
    parser.add_argument("--metric", default=RETURN, help=f"logged column to plot (default {RETURN})")
    parser.add_argument("--band", choices=["ci95", "std", "minmax"], default="ci95")
    parser.add_argument("--title", default="")
    parser.add_argument(
        "--reps", type=int, default=2000, help="stratified bootstrap resamples per interval (default 2000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument(
        "--baseline",
        metavar="LABEL",
        help="P(improvement) of every setting over this one (default: all pairs)",
    )
    parser.add_argument(
        "--reference",
        metavar="ENV=RANDOM:REFERENCE",
        action="append",
        default=[],
        help="random and reference score that normalize ENV for the aggregate over envs "
        "(adds to or replaces rlcamp.stats.NORMALIZATION; repeatable)",
    )
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error(f"--reps {args.reps}: give a positive number of bootstrap resamples, e.g. 2000")
    try:
        args.normalization = {**stats.NORMALIZATION, **dict(map(stats.parse_reference, args.reference))}
    except ValueError as error:
        parser.error(str(error))
    if not args.paths and not args.wandb:
        parser.error("give at least one run/multirun directory or --wandb ENTITY/PROJECT")
    if args.out is None and not args.paths:
        parser.error("--out is required with --wandb alone")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    curves, finals = [], []
    try:
        if args.paths:
            c, f = load_runs(args.paths, args.metric)
            curves.append(c)
            finals.append(f)
        if args.wandb:
            c, f = load_wandb(args.wandb, args.metric, json.loads(args.wandb_filters))
            curves.append(c)
            finals.append(f)
    except (FileNotFoundError, LookupError, ValueError) as error:
        sys.exit(f"rlcamp-compare: {error}")
    all_curves, all_finals, notes = comparable_runs(_concat(curves), pd.concat(finals, ignore_index=True))
    for note in notes:
        print(note, file=sys.stderr)
    if all_finals.empty:
        sys.exit("rlcamp-compare: no finished run to compare")
    out = args.out or Path(args.paths[0]) / "compare"
    try:
        paths = compare(
            all_curves,
            all_finals,
            out,
            args.name,
            args.band,
            args.title,
            args.reps,
            args.seed,
            args.baseline,
            args.normalization,
            args.metric,
        )
    except ValueError as error:
        sys.exit(f"rlcamp-compare: {error}")
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(
            f"tidy table ({len(all_curves)} rows from {all_finals['run'].nunique()} runs; "
            f"pd.read_csv('{paths['runs']}')):"
        )
        print(all_curves.head(8).to_string(index=False))
    print()
    print(paths["final_md"].read_text())
    print(paths["rliable_md"].read_text())
    print(paths["improvement_md"].read_text())
    for warning in stats.reliability_warnings(stats.scores_by_env(all_finals)):
        print(warning, file=sys.stderr)
    for key, path in paths.items():
        print(f"{key:>15}: {path}")


if __name__ == "__main__":
    main()
