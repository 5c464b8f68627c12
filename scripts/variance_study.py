"""Run the variance study of conf/experiment/variance_study.yaml, then draw its figure and table.

    python scripts/variance_study.py                        # the sweep as configured (8 variants x 5 seeds)
    python scripts/variance_study.py total_env_steps=60000 'variance_study.seeds=[1,2,3]'
    python scripts/variance_study.py --plot-only            # redraw from the runs already in --out

Each run is ``rlcamp-train experiment=variance_study <variant overrides> seed=<s>`` (in-process),
writing ``metrics.csv`` under ``--out/<variant>/seed_<s>``; runs that finished are not rerun.
The figure has three panels against env steps: episode return (mean ± std over seeds), the
per-sample gradient variance ``train/grad_var`` and the SNR ``train/grad_snr`` (means over seeds of
the per-rollout values, smoothed over 5 rollouts). The table gives, per variant, the final return,
the return averaged over training, the geometric mean of ``grad_var`` and the mean ``grad_snr``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from rlcamp.train import CONF_DIR, train

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("rollout/ep_return_mean", "train/grad_var", "train/grad_snr")


def compose_run(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    """``conf/train.yaml`` with ``experiment=variance_study`` and ``overrides``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=variance_study", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir or ROOT / "logs" / "variance_study")
    return cfg


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "_", name.lower()).strip("_")


def run_sweep(study: DictConfig, overrides: list[str], out: Path) -> None:
    for name, variant in study.variants.items():
        for seed in study.seeds:
            run_dir = out / slug(name) / f"seed_{seed}"
            if (run_dir / "summary.json").exists():
                continue
            summary, _ = train(compose_run([*variant, *overrides, f"seed={seed}"], run_dir))
            print(
                f"{name:24s} seed {seed}: return {summary['ep_return_mean']:.1f} "
                f"in {summary['wall_seconds']:.0f}s"
            )


def load_runs(study: DictConfig, out: Path) -> dict[str, list[pd.DataFrame]]:
    """Per variant, one frame per finished seed: ``env_steps`` and ``METRICS``, one row per rollout."""
    runs: dict[str, list[pd.DataFrame]] = {}
    for name in study.variants:
        frames = []
        for seed in study.seeds:
            path = out / slug(name) / f"seed_{seed}" / "metrics.csv"
            if path.exists():
                frame = pd.read_csv(path)
                frames.append(frame[["env_steps", *METRICS]].dropna().reset_index(drop=True))
        if frames:
            runs[name] = frames
    return runs


def on_grid(
    frames: list[pd.DataFrame], column: str, grid: np.ndarray, log: bool = False, smooth: int = 1
) -> np.ndarray:
    """``[seeds, len(grid)]``: each run's ``column`` (log10 if ``log``, rolling mean) on ``grid``."""
    rows = []
    for frame in frames:
        values = np.log10(frame[column].clip(lower=1e-12)) if log else frame[column]
        values = values.rolling(smooth, min_periods=1).mean()
        rows.append(np.interp(grid, frame["env_steps"], values))
    return np.array(rows)


def plot(runs: dict[str, list[pd.DataFrame]], total_steps: int, path: Path) -> None:
    grid = np.linspace(0, total_steps, 200)
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    colors = plt.get_cmap("tab10")
    for i, (name, frames) in enumerate(runs.items()):
        color = colors(i)
        ret = on_grid(frames, METRICS[0], grid)
        axes[0].plot(grid, ret.mean(0), color=color, label=f"{name} ({len(frames)} seeds)")
        axes[0].fill_between(
            grid, ret.mean(0) - ret.std(0), ret.mean(0) + ret.std(0), color=color, alpha=0.12
        )
        axes[1].plot(grid, 10 ** on_grid(frames, METRICS[1], grid, log=True, smooth=5).mean(0), color=color)
        axes[2].plot(grid, on_grid(frames, METRICS[2], grid, smooth=5).mean(0), color=color)
    axes[0].set(title="episode return (mean ± std over seeds)", ylabel="return")
    axes[1].set(title="per-sample gradient variance tr Cov[g_i]", yscale="log")
    axes[2].set(title="per-sample SNR ‖E g‖² / tr Cov[g_i]")
    axes[2].axhline(0.0, color="grey", lw=0.5)
    axes[2].set_yscale("symlog", linthresh=1e-3)
    for ax in axes:
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Policy-gradient estimators on CartPole-v1 (rlcamp experiment=variance_study)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def table(runs: dict[str, list[pd.DataFrame]]) -> str:
    """Markdown: final return (mean of the last 10% of rollouts), mean return, grad_var, grad_snr."""
    lines = [
        "| variant | seeds | final return | mean return over training "
        "| grad_var (geo. mean) | grad_snr (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for name, frames in runs.items():
        final = [f[METRICS[0]].iloc[-max(len(f) // 10, 1) :].mean() for f in frames]
        mean_return = [f[METRICS[0]].mean() for f in frames]
        log_var = [np.log10(f[METRICS[1]].clip(lower=1e-12)).mean() for f in frames]
        snr = [f[METRICS[2]].mean() for f in frames]
        lines.append(
            f"| {name} | {len(frames)} | {np.mean(final):.1f} ± {np.std(final):.1f} | "
            f"{np.mean(mean_return):.1f} ± {np.std(mean_return):.1f} | {10 ** np.mean(log_var):.3g} | "
            f"{np.mean(snr):.2g} ± {np.std(snr):.1g} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides for every run, e.g. total_env_steps=60000"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "logs" / "variance_study")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "variance_study.png")
    parser.add_argument("--table", type=Path, default=ROOT / "docs" / "figures" / "variance_study_table.md")
    parser.add_argument("--plot-only", action="store_true", help="skip training; plot the runs in --out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = compose_run(args.overrides)
    if not args.plot_only:
        run_sweep(cfg.variance_study, args.overrides, args.out)
    runs = load_runs(cfg.variance_study, args.out)
    plot(runs, int(cfg.total_env_steps), args.figure)
    args.table.write_text(table(runs))
    print(table(runs))
    print(f"figure: {args.figure}\ntable: {args.table}")


if __name__ == "__main__":
    main()
