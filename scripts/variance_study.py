"""Run the fixed-policy bias/variance study (conf/experiment/variance_study.yaml); draw its figure, table.

    python scripts/variance_study.py                          # as configured (about 2 minutes on one core)
    python scripts/variance_study.py variance_study.batches=50 variance_study.reference_env_steps=200000
    python scripts/variance_study.py --plot-only              # redraw from docs/figures/variance_study.csv
    python scripts/variance_study.py --docs                   # the study, rewriting docs/figures/

1. Train the config's PPO run on CartPole-v1 (``rlcamp-train experiment=variance_study``, in-process)
   with ``PolicySnapshots`` saving the policy at the configured env steps; skipped when the
   snapshots exist in ``--out``.
2. Per snapshot, ``rlcamp.algos.bias_variance.run_study``: fit a fresh V (Monte-Carlo regression)
   and a fresh Q (expected-SARSA TD(0)), draw the reference and the ``R`` batches, and measure
   bias², variance, MSE and cosine of every estimator against the reference.
3. The exact softmax bandit beside it: REINFORCE with no, mean and exact-value baseline against
   the exact gradient (``bandit_gradients``, the design of ``tests/algos/test_reinforce.py``).
Writes ``variance_study.csv`` (every number), ``variance_study_table.md`` and ``variance_study.png``
into ``--out`` (default ``logs/variance_study/``, beside the snapshots), or into docs/figures/ with
``--docs``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import hydra
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from rlcamp.algos.bias_variance import (
    StudySettings,
    bandit_exact_gradient,
    bandit_gradients,
    check_study_spaces,
    error_statistics,
    run_study,
)
from rlcamp.callbacks.snapshots import snapshot_path
from rlcamp.nn.q_critic import QCritic
from rlcamp.train import train
from rlcamp.utils.build import compose_config

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
STATS = ("bias2", "variance", "mse", "cosine")
BANDIT_LOGITS = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
BANDIT_MEANS = torch.tensor([10.0, 11.0, 12.5], dtype=torch.float64)  # a large common offset
STAGES = ("early", "middle", "late")


def compose_study(overrides: list[str], output_dir: Path) -> DictConfig:
    """``conf/train.yaml`` with ``experiment=variance_study`` and ``overrides``, writing to ``output_dir``."""
    return compose_config(["experiment=variance_study", *overrides], output_dir)


def train_snapshots(cfg: DictConfig) -> list[Path]:
    """The snapshot files of ``cfg``'s run, training it first unless they all exist."""
    snapshots = cfg.callbacks.snapshots
    paths = [snapshot_path(snapshots.dirpath, s) for s in snapshots.at_env_steps]
    if not all(p.exists() for p in paths):
        summary, _ = train(cfg)
        print(f"trained the snapshot run: {summary['env_steps']} env steps in {summary['wall_seconds']:.0f}s")
    return paths


def snapshot_policy(cfg: DictConfig, path: Path, seed: int) -> tuple[torch.nn.Module, QCritic, dict]:
    """The snapshot's actor with a fresh critic, a fresh ``QCritic`` of the same MLP, and the snapshot."""
    env = hydra.utils.instantiate(cfg.env)
    observation_space, action_space = env.spaces()
    torch.manual_seed(seed)
    policy = hydra.utils.instantiate(cfg.network)(
        observation_space=observation_space,
        action_space=action_space,
        normalize_obs=env.normalize_obs,
        clip_obs=env.clip_obs,
    )
    snapshot = torch.load(path, weights_only=True)
    ids = {id(p) for p in policy.actor_parameters()}
    names = {name for name, p in policy.named_parameters() if id(p) in ids}
    names |= {name for name, _ in policy.named_buffers()}  # the normalization statistics
    actor = {k: v for k, v in snapshot["state_dict"].items() if k in names}
    missing = policy.load_state_dict(actor, strict=False).missing_keys
    assert not names & set(missing) - {name for name, _ in policy.named_buffers()}, missing
    q_critic = QCritic(
        observation_space, action_space, tuple(cfg.network.hidden_sizes), cfg.network.activation
    )
    return policy, q_critic, snapshot


def study_rows(cfg: DictConfig, paths: list[Path]) -> pd.DataFrame:
    """Every snapshot's ``run_study`` rows, plus the bandit's, as one frame."""
    settings = StudySettings(**OmegaConf.to_container(cfg.variance_study, resolve=True))
    env = hydra.utils.instantiate(cfg.env)
    frames = []
    for stage, path in zip(STAGES, paths, strict=False):
        start = time.perf_counter()
        policy, q_critic, snapshot = snapshot_policy(cfg, path, settings.seed)
        info, rows = run_study(policy, q_critic, env, settings)
        frame = pd.DataFrame(rows).assign(
            snapshot=stage,
            env_steps=snapshot["env_steps"],
            train_return=snapshot["ep_return_mean"],
            **info,
        )
        frames.append(frame)
        print(
            f"{stage} snapshot ({snapshot['env_steps']} steps, return {snapshot['ep_return_mean']:.0f}): "
            f"L̄ {info['mean_length']:.0f}, K {info['episodes_per_batch']:.0f}, "
            f"{time.perf_counter() - start:.0f}s"
        )
    frames.append(bandit_rows(settings.n_boot, settings.seed))
    return pd.concat(frames, ignore_index=True)


def bandit_rows(n_boot: int, seed: int, n_batches: int = 4000, batch: int = 8) -> pd.DataFrame:
    """The softmax bandit's REINFORCE (baseline ``none``, ``mean`` or ``value``) vs the exact gradient."""
    exact = bandit_exact_gradient(BANDIT_LOGITS, BANDIT_MEANS)
    rows = []
    for name, baseline in (
        ("REINFORCE", "none"),
        ("REINFORCE + mean baseline", "mean"),
        ("REINFORCE + exact V", "value"),
    ):
        estimates = bandit_gradients(BANDIT_LOGITS, BANDIT_MEANS, baseline, n_batches, batch, seed)
        row: dict[str, float | str] = {"estimator": name}
        for key, (value, low, high) in error_statistics(estimates, exact, 0.0, n_boot, seed).items():
            row.update({key: value, f"{key}_lo": low, f"{key}_hi": high})
        rows.append(row)
    return pd.DataFrame(rows).assign(
        snapshot="bandit", episodes_per_batch=float(batch), g_ref_sq=float(exact @ exact), reference_var=0.0
    )


def relative(frame: pd.DataFrame) -> pd.DataFrame:
    """bias², variance and MSE (with their bounds) divided by ``‖g_ref‖²``."""
    frame = frame.copy()
    for key in STATS[:3]:
        for col in (key, f"{key}_lo", f"{key}_hi"):
            frame[col] = frame[col] / frame["g_ref_sq"]
    return frame


def cell(row: pd.Series, key: str) -> str:
    return f"{row[key]:.3g} [{row[f'{key}_lo']:.2g}, {row[f'{key}_hi']:.2g}]"


def table(frame: pd.DataFrame) -> str:
    """Markdown: one table per snapshot (and the bandit), bias²/variance/MSE relative to ``‖g_ref‖²``."""
    out = []
    for stage, part in relative(frame).groupby("snapshot", sort=False):
        first = part.iloc[0]
        if stage == "bandit":
            out.append(
                f"**Softmax bandit** (3 arms, rewards N(μ, 1), μ = {BANDIT_MEANS.tolist()}; batches of "
                f"{first['episodes_per_batch']:.0f} pulls; R = 4000; reference = the exact gradient, "
                f"‖g‖² = {first['g_ref_sq']:.3g})"
            )
        else:
            out.append(
                f"**{stage.capitalize()} snapshot** (PPO at {first['env_steps']:.0f} env steps, training "
                f"return {first['train_return']:.0f}; mean episode length L̄ = {first['mean_length']:.0f}, "
                f"{first['truncated_fraction']:.0%} of episodes reach the time limit; "
                f"K = {first['episodes_per_batch']:.0f} episodes per batch; "
                f"‖g_ref‖² = {first['g_ref_sq']:.3g}, "
                f"reference variance / ‖g_ref‖² = {first['reference_var'] / first['g_ref_sq']:.2g}; "
                f"explained variance of G_t: V̂ {first['value_explained_variance']:.2f}, "
                f"Q̂ {first['q_explained_variance']:.2f})"
            )
        out += [
            "",
            "| estimator | bias² / ‖g‖² | variance / ‖g‖² | MSE / ‖g‖² | cosine to g_ref |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {row['estimator']} | " + " | ".join(cell(row, k) for k in STATS) + " |"
            for _, row in part.iterrows()
        ]
        out.append("")
    return "\n".join(out)


def plot(frame: pd.DataFrame, path: Path) -> None:
    """bias², variance, MSE (relative, log scale) and cosine per estimator, one series per snapshot.

    A bias² whose interval reaches 0 is drawn as a ▽ at its upper bound (indistinguishable from 0).
    """
    data = relative(frame[frame["snapshot"] != "bandit"])
    names = list(dict.fromkeys(data["estimator"]))
    x = np.arange(len(names))
    fig, axes = plt.subplots(2, 2, figsize=(15, 9), sharex=True)
    titles = {
        "bias2": "bias² ‖E ĝ − g_ref‖² / ‖g_ref‖²",
        "variance": "variance E‖ĝ − E ĝ‖² / ‖g_ref‖²",
        "mse": "MSE E‖ĝ − g_ref‖² / ‖g_ref‖²",
        "cosine": "cosine(ĝ, g_ref), mean over batches",
    }
    stages = list(dict.fromkeys(data["snapshot"]))
    for i, stage in enumerate(stages):
        part = data[data["snapshot"] == stage].set_index("estimator").loc[names]
        offset = x + (i - (len(stages) - 1) / 2) * 0.22
        label = f"{stage} (return {part['train_return'].iloc[0]:.0f})"
        color = plt.get_cmap("tab10")(i)
        for ax, key in zip(axes.flat, STATS, strict=True):
            value, low, high = (
                part[key].to_numpy(),
                part[f"{key}_lo"].to_numpy(),
                part[f"{key}_hi"].to_numpy(),
            )
            resolved = low > 0 if key != "cosine" else np.ones(len(value), dtype=bool)
            ax.errorbar(
                offset[resolved],
                value[resolved],
                yerr=[value[resolved] - low[resolved], high[resolved] - value[resolved]],
                fmt="o",
                color=color,
                capsize=3,
                label=label,
            )
            if (~resolved).any():
                ax.scatter(
                    offset[~resolved], high[~resolved], marker="v", facecolors="none", edgecolors=color
                )
    for ax, key in zip(axes.flat, STATS, strict=True):
        ax.set_title(titles[key])
        ax.grid(alpha=0.3)
        if key != "cosine":
            ax.set_yscale("log")
            ax.axhline(1.0, color="grey", lw=0.7, ls="--")
    for ax in axes[1]:
        ax.set_xticks(x, names, rotation=35, ha="right")
    axes[0, 0].legend(fontsize=9)
    fig.suptitle(
        "Policy-gradient estimators at fixed PPO snapshots on CartPole-v1: R batches of ≈2000 env steps "
        "vs a 10⁶-step reference (95% bootstrap CIs; ▽: bias² below noise, upper bound)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. variance_study.batches=50")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "logs" / "variance_study", help="snapshots and outputs"
    )
    parser.add_argument(
        "--docs", action="store_true", help="write the CSV, table and figure into docs/figures/"
    )
    parser.add_argument(
        "--csv", type=Path, default=FIGURES / "variance_study.csv", help="the rows --plot-only redraws"
    )
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure and table from --csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    dest = FIGURES if args.docs else args.out
    csv, figure, table_md = (dest / f"variance_study{suffix}" for suffix in (".csv", ".png", "_table.md"))
    if args.plot_only:
        frame = pd.read_csv(args.csv)
    else:
        start = time.perf_counter()
        cfg = compose_study(args.overrides, args.out)
        env = hydra.utils.instantiate(cfg.env)
        check_study_spaces(
            *env.spaces(), env.action_mask, cfg.network.memory
        )  # before the snapshot run trains
        frame = study_rows(cfg, train_snapshots(cfg))
        csv.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(csv, index=False)
        print(f"study: {time.perf_counter() - start:.0f}s")
    plot(frame, figure)
    table_md.write_text(table(frame))
    print(table(frame))
    print(f"figure: {figure}\ntable: {table_md}\ndata: {args.csv if args.plot_only else csv}")


if __name__ == "__main__":
    main()
