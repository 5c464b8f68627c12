"""``rlcamp-compare``: learning curves and final-return tables from runs, multiruns or W&B.

    rlcamp-compare logs/train/multiruns/2026-11-25_10-00-00-000000
    rlcamp-compare logs/a/multiruns/X logs/b/multiruns/Y --out docs/figures --name ppo_paper
    rlcamp-compare --wandb my-entity/rlcamp --band std

It reads every run below the given directories (a run is a directory with ``metrics.csv`` or
``summary.json``; its ``.hydra/overrides.yaml`` names the setting) and writes into ``--out``:

- ``<name>_runs.csv``: the tidy table, one row per run × logged row (``run, algo, env, seed,
  setting, label, env_steps, return``), to go on with in pandas;
- ``<name>_final.csv`` and ``<name>_final.md``: final return per env × algo/setting, mean ± std
  over seeds and the seed count ("final" is ``summary.json``'s ``ep_return_mean``, the mean
  return of the last 20 training episodes; a run without one counts its last logged row);
- ``<name>.png`` and ``<name>.svg``: one panel per env, one line per algo/setting, the mean over
  seeds and a band (95% t-interval of the mean by default) against environment steps.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

RETURN = "rollout/ep_return_mean"
COLUMNS = ["run", "algo", "env", "seed", "setting", "label", "env_steps", "return"]
# overrides that identify the run rather than the setting compared
_NOT_SETTING = ("algo", "env", "seed", "experiment", "task_name", "tags", "total_env_steps", "ckpt_path")
_NOT_SETTING_PREFIXES = ("hydra", "paths", "logger", "callbacks", "trainer", "num_threads", "local", "debug")


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


def setting_of(overrides: Sequence[str]) -> str:
    """The overrides that make a setting (``algo.kl_target=0.003``), without algo, env, seed, paths…"""
    kept = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in _NOT_SETTING or key.startswith(_NOT_SETTING_PREFIXES):
            continue
        kept.append(override.lstrip("+~"))
    return " ".join(sorted(kept))


def label_of(algo: str, setting: str) -> str:
    return f"{algo} {setting}" if setting else algo


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def read_run(run_dir: Path, root: Path, metric: str = RETURN) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One run: its tidy curve rows and its final-return record."""
    summary = (
        json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    )
    config = _yaml(run_dir / ".hydra" / "config.yaml") or {}
    overrides = _yaml(run_dir / ".hydra" / "overrides.yaml") or []
    algo_cfg, env_cfg = config.get("algo") or {}, config.get("env") or {}
    algo = summary.get("algo") or str(algo_cfg.get("_target_", "?")).rsplit(".", 1)[-1].lower()
    env = summary.get("env_id") or env_cfg.get("id", "?")
    seed = summary.get("seed", config.get("seed"))
    setting = setting_of([str(o) for o in overrides])
    name = (
        str(Path(root.resolve().name) / run_dir.relative_to(root)) if run_dir != root else root.resolve().name
    )
    ident = {
        "run": name,
        "algo": algo,
        "env": env,
        "seed": seed,
        "setting": setting,
        "label": label_of(algo, setting),
    }
    curve = pd.DataFrame(columns=COLUMNS)
    if (run_dir / "metrics.csv").is_file():
        logged = pd.read_csv(run_dir / "metrics.csv")
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
    return _concat(curves), pd.DataFrame(finals)


def load_wandb(
    project: str, metric: str = RETURN, filters: dict[str, Any] | None = None, api: Any = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(curves, finals)`` from a W&B project (``entity/project``) through ``wandb.Api()``.

    Algo, env and seed come from each run's logged config (``algo._target_``, ``env.id``,
    ``seed``); the setting is the run's W&B group when it has one. Needs network access and a
    W&B login.
    """
    if api is None:
        import wandb

        api = wandb.Api()
    curves, finals = [], []
    for run in api.runs(project, filters=filters or {}):
        config = dict(run.config)
        algo = str((config.get("algo") or {}).get("_target_", "?")).rsplit(".", 1)[-1].lower()
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
            }
        )
    if not finals:
        raise LookupError(f"W&B project {project} has no runs matching {filters or {}}")
    return _concat(curves), pd.DataFrame(finals)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[COLUMNS] if frames else pd.DataFrame(columns=COLUMNS)


# ----------------------------------------------------------------------------- aggregation
def final_table(finals: pd.DataFrame) -> pd.DataFrame:
    """Final return per env × label: mean, sample std (ddof 1; NaN for one seed), seed count."""
    grouped = finals.dropna(subset=["final_return"]).groupby(["env", "label"], sort=True)["final_return"]
    table = grouped.agg(mean="mean", std="std", n_seeds="count", min="min", max="max").reset_index()
    return table


def final_markdown(table: pd.DataFrame) -> str:
    """A Markdown grid: one row per env, one column per label, cells ``mean ± std (n)``."""

    def cell(row: pd.Series) -> str:
        spread = f" ± {row['std']:.1f}" if not math.isnan(row["std"]) else ""
        return f"{row['mean']:.1f}{spread} ({int(row['n_seeds'])})"

    labels = sorted(table["label"].unique())
    lines = ["| env | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for env, rows in table.groupby("env", sort=True):
        cells = {r["label"]: cell(r) for _, r in rows.iterrows()}
        lines.append(f"| {env} | " + " | ".join(cells.get(label, "–") for label in labels) + " |")
    return "\n".join(lines) + "\n\nmean ± std over seeds (seed count) of the final return.\n"


def t_quantile(df: int, level: float = 0.95) -> float:
    """Two-sided Student-t quantile for a ``level`` interval (normal for large ``df``)."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, df))


def aggregate_curves(curves: pd.DataFrame, band: str = "ci95", points: int = 200) -> pd.DataFrame:
    """Mean and band over seeds on a common env-step grid, per env × label.

    Each run is linearly interpolated onto ``points`` steps spanning the range every seed of the
    group covers (so the mean is never over a shrinking set of seeds). ``band``: ``ci95`` (mean ±
    t·std/√n), ``std`` (mean ± std) or ``minmax``.
    """
    out = []
    for (env, label), group in curves.groupby(["env", "label"], sort=True):
        runs = [g.sort_values("env_steps") for _, g in group.groupby("run")]
        lo = max(r["env_steps"].min() for r in runs)
        hi = min(r["env_steps"].max() for r in runs)
        grid = np.linspace(lo, hi, points) if hi > lo else np.array([hi])
        ys = np.stack(
            [np.interp(grid, r["env_steps"].to_numpy(float), r["return"].to_numpy(float)) for r in runs]
        )
        mean, n = ys.mean(0), len(runs)
        std = ys.std(0, ddof=1) if n > 1 else np.zeros_like(mean)
        if band == "std":
            low, high = mean - std, mean + std
        elif band == "minmax":
            low, high = ys.min(0), ys.max(0)
        else:
            half = t_quantile(n - 1) * std / math.sqrt(n) if n > 1 else np.zeros_like(mean)
            low, high = mean - half, mean + half
        out.append(
            pd.DataFrame(
                {
                    "env": env,
                    "label": label,
                    "env_steps": grid,
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "n_seeds": n,
                }
            )
        )
    return pd.concat(out, ignore_index=True)


# ----------------------------------------------------------------------------- plotting
def plot_curves(
    aggregated: pd.DataFrame, stem: str | Path, title: str = "", band: str = "ci95"
) -> list[Path]:
    """The grid of learning curves, one panel per env, saved as ``stem.png`` and ``stem.svg``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        row[0].set_ylabel("episode return")
    handles = [plt.Line2D([], [], color=colors[label], lw=2) for label in labels]
    band_text = {"ci95": "95% CI of the mean", "std": "±1 std", "minmax": "min–max"}[band]
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=min(len(labels), 6),
        frameon=False,
        title=f"mean over seeds, band: {band_text}",
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.12 if nrows == 1 else 0.07, 1, 1))
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, dpi=130)
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------- command line
def compare(
    curves: pd.DataFrame,
    finals: pd.DataFrame,
    out: Path,
    name: str = "compare",
    band: str = "ci95",
    title: str = "",
) -> dict[str, Path]:
    """Write the tidy table, the final-return table (CSV, Markdown) and the figure into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "runs": out / f"{name}_runs.csv",
        "final_csv": out / f"{name}_final.csv",
        "final_md": out / f"{name}_final.md",
    }
    curves.to_csv(paths["runs"], index=False)
    table = final_table(finals)
    table.to_csv(paths["final_csv"], index=False)
    paths["final_md"].write_text(final_markdown(table))
    if len(curves):
        png, svg = plot_curves(aggregate_curves(curves, band), out / name, title, band)
        paths.update(png=png, svg=svg)
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
    args = parser.parse_args(argv)
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
    except (FileNotFoundError, LookupError) as error:
        sys.exit(f"rlcamp-compare: {error}")
    all_curves, all_finals = _concat(curves), pd.concat(finals, ignore_index=True)
    out = args.out or Path(args.paths[0]) / "compare"
    paths = compare(all_curves, all_finals, out, args.name, args.band, args.title)
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(
            f"tidy table ({len(all_curves)} rows from {all_finals['run'].nunique()} runs; "
            f"pd.read_csv('{paths['runs']}')):"
        )
        print(all_curves.head(8).to_string(index=False))
    print()
    print(paths["final_md"].read_text())
    for key, path in paths.items():
        print(f"{key:>9}: {path}")


if __name__ == "__main__":
    main()
