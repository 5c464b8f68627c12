"""Equivalence of rlcamp's A2C and PPO with Stable-Baselines3's at identical settings on CartPole-v1,
and of its LSTM PPO with sb3-contrib's ``RecurrentPPO`` on CartPole without velocities.

    python scripts/peer_equivalence.py                           # A2C and PPO, seeds 1-10, one process
    python scripts/peer_equivalence.py --algos ppo_lstm --budget 50000 --jobs 2   # RecurrentPPO
    python scripts/peer_equivalence.py --algos ppo --seeds 1-20 --jobs 2 --json docs/figures/x.json
    python scripts/peer_equivalence.py --from-json docs/figures/peer_equivalence.json   # stats only

Each rlcamp run is ``rlcamp-train`` with ``OVERRIDES[algo]`` and ``seed=<s>`` (its CartPole settings,
``conf/algo_env/<algo>_cartpole.yaml``; ``ppo_lstm``: ``env=cartpole_novel network.memory=lstm``
without observation normalization); each SB3 run gets keyword arguments translated from that same
composed config by :func:`sb3_kwargs`, and its envs from the config's own env recipe, so the two
share every hyperparameter and wrapper by construction. The differences that cannot be removed are
listed in :func:`sb3_kwargs`.

Statistics per (algo, statistic), rlcamp as X and SB3 as Y:
- the two-sided Mann-Whitney U test p-value (``scipy.stats.mannwhitneyu``): H0 "X and Y have the
  same distribution";
- the probability of improvement ``P(X better than Y) = U / (n·m)`` (ties count ½; "better" is
  higher for the return, fewer for the steps to 475) with a 95% percentile
  bootstrap CI from ``rliable`` (Agarwal et al. 2021); with one task the stratified bootstrap is
  the ordinary bootstrap over runs;
- the smallest location shift the test detects with 80% power at these sample sizes
  (:func:`detectable_shift`).

Statistics measured: ``final``, the mean return of the last 20 training episodes at the end of the
budget (rlcamp: ``summary["ep_return_mean"]``; SB3: the last 20 entries of ``model.ep_info_buffer``);
and for PPO ``steps_to_475``, the env steps at the end of the first rollout after which that mean is
>= 475 (a run that never reaches it counts as the budget).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
from hydra.utils import get_class
from omegaconf import DictConfig, open_dict

ENV_ID = "CartPole-v1"
SOLVED = 475.0
WINDOW = 20  # episodes in the final-return mean, rlcamp's ``stats_window``
ALGOS = ("a2c", "ppo", "ppo_lstm")
OVERRIDES = {
    "a2c": ["algo=a2c", "env=cartpole"],
    "ppo": ["algo=ppo", "env=cartpole"],
    # sb3-contrib would need VecNormalize for observation normalization: compared without it
    "ppo_lstm": ["algo=ppo", "env=cartpole_novel", "network.memory=lstm", "env.normalize_obs=false"],
}
SOLVE_STATISTICS = ("ppo", "ppo_lstm")  # the algorithms whose steps to 475 are compared too
LIBS = ("rlcamp", "sb3")
LOWER_IS_BETTER = {"steps_to_475": -1.0}  # statistics where fewer is better, by the sign that orders them


def parse_seeds(text: str) -> list[int]:
    """``"1-10"`` or ``"1,2,5"`` (or a mix, ``"1-3,7"``) to a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds {text!r} names no seed: use e.g. 1-10 or 1,2,3")
    return seeds


# ----------------------------------------------------------------------------------------- settings
def compose_cfg(algo: str, seed: int, budget: int, output_dir: str) -> DictConfig:
    """rlcamp's config for ``algo`` on CartPole (its ``algo_env`` file included), as bench.py composes it."""
    from rlcamp.utils.build import compose_config

    overrides = [*OVERRIDES[algo], "logger=csv", "callbacks=none"]
    return compose_config([*overrides, f"seed={seed}", f"total_env_steps={budget}"], output_dir)


def num_rollouts(cfg: DictConfig) -> int:
    """``K = ⌈budget / (n_envs · n_steps)⌉``, the number of rollouts rlcamp runs (and anneals over)."""
    return math.ceil(cfg.total_env_steps / (cfg.env.n_envs * cfg.algo.n_steps))


@dataclass(frozen=True)
class ShiftedLinear:
    """SB3 schedule equal to rlcamp's ``v₀·(1 - k/K)`` at rollout ``k = 0..K-1``.

    SB3 updates ``progress_remaining = 1 - t/T`` *after* collecting rollout ``k``, so with
    ``T = K·B`` it sees ``p = 1 - (k+1)/K`` and ``v₀·(p + 1/K)`` is rlcamp's value. SB3's plain
    ``v₀·p`` would run one rollout ahead (and spend the last rollout at 0).
    """

    start: float
    n_rollouts: int

    def __call__(self, progress_remaining: float) -> float:
        return self.start * min(progress_remaining + 1.0 / self.n_rollouts, 1.0)


def sb3_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """SB3 ``A2C``/``PPO`` keyword arguments equal to rlcamp's composed ``cfg``, every one explicit.

    Equal by construction: n_envs, n_steps, γ, λ, entropy and value coefficients, gradient clip,
    advantage normalization, the optimizer class and its arguments (RMSprop α/eps, Adam eps and
    ``fused``), the learning-rate and clip schedules, separate actor and critic MLPs with the same
    hidden sizes, activation and orthogonal init (SB3's gains √2 / 0.01 / 1, as rlcamp's), no
    observation or reward normalization, no value clipping (PPO), PPO's epochs and minibatch size.

    Translated, not copied:
    - the value loss: rlcamp minimizes ``c_v·½·E[(V - R)²]``, SB3 ``c_v·E[(V - R)²]``
      (``F.mse_loss``), so SB3 gets ``vf_coef = c_v / 2`` for the same objective;
    - the schedules: :class:`ShiftedLinear` removes SB3's one-rollout annealing offset, and SB3
      learns for exactly ``K`` rollouts (``total_timesteps = K·n_envs·n_steps``, as rlcamp does).

    Not removable (the reason only distributions, not per-seed runs, can be compared):
    - random streams: the same seed gives other initial weights, action samples and minibatch
      orders in the two libraries (rlcamp samples by Gumbel-max from its own generator);
    - float arithmetic order (fused vs. unfused kernels, batched vs. per-env value passes).

    Equal by both libraries' design, nothing to set: timeouts bootstrap ``r + γV(s_final)`` on a
    time-limit truncation (never on termination), with the rollout's policy; SB3's DummyVecEnv and
    rlcamp's SAME_STEP autoreset both return the next episode's first observation on the step that
    ends one; env ``i`` is seeded ``seed + i``.

    A recurrent network (``network.memory=lstm``) maps to ``RecurrentPPO``'s ``MlpLstmPolicy`` with
    the same LSTM size and a critic LSTM of its own. Not removable there: sb3-contrib pads each
    minibatch's sequences at episode starts and masks the padding, rlcamp replays whole env columns
    and resets the state inside them (the same gradients up to the mean's weighting), and sb3-contrib
    keeps PyTorch's default LSTM initialization where rlcamp's is orthogonal.
    """
    from torch import nn

    algo, network, env = cfg.algo, cfg.network, cfg.env
    unsupported = [
        (network.shared, "network.shared=true (SB3's MlpPolicy here has separate actor and critic)"),
        (env.normalize_obs or env.normalize_reward, "env normalization (would need SB3's VecNormalize)"),
        (algo._target_.endswith("PPOKL"), "algo=ppo_kl (SB3 has only the clipped objective)"),
        (algo.get("clip_range_vf") is not None, "clip_range_vf (this script assumes no value clipping)"),
        (network.memory not in ("none", "lstm"), "network.memory=gru (sb3-contrib has LSTM policies only)"),
        (algo.get("seq_len") is not None, "algo.seq_len (sb3-contrib cuts sequences at episode starts)"),
    ]
    for flag, what in unsupported:
        if flag:
            raise ValueError(f"{what} has no SB3 equivalent in this script: compare without it")
    n_rollouts = num_rollouts(cfg)
    opt = {k: v for k, v in algo.optimizer.items() if k not in ("_target_", "_partial_", "lr")}
    lr = float(algo.optimizer.lr)
    kwargs: dict[str, Any] = dict(
        n_steps=int(algo.n_steps),
        gamma=float(algo.gamma),
        gae_lambda=float(algo.gae_lambda),
        ent_coef=float(algo.ent_coef),
        vf_coef=float(algo.vf_coef) / 2.0,
        max_grad_norm=float(algo.max_grad_norm),
        normalize_advantage=bool(algo.normalize_advantage),
        learning_rate=ShiftedLinear(lr, n_rollouts) if algo.anneal_lr else lr,
        policy_kwargs=dict(
            net_arch=dict(pi=list(network.hidden_sizes), vf=list(network.hidden_sizes)),
            activation_fn={"tanh": nn.Tanh, "relu": nn.ReLU}[network.activation],
            ortho_init=bool(network.ortho_init),
            optimizer_class=get_class(algo.optimizer._target_),
            optimizer_kwargs=opt,
        ),
    )
    if network.memory == "lstm":
        kwargs["policy_kwargs"].update(
            lstm_hidden_size=int(network.memory_size),
            n_lstm_layers=1,
            shared_lstm=bool(network.memory_shared),
            enable_critic_lstm=not network.memory_shared,
        )
    if cfg.algo._target_.endswith("PPO"):
        clip = float(algo.clip_range)
        kwargs.update(
            n_epochs=int(algo.update_epochs),
            batch_size=int(algo.n_steps) * int(env.n_envs) // int(algo.n_minibatches),
            clip_range=ShiftedLinear(clip, n_rollouts) if algo.anneal_clip else clip,
            clip_range_vf=None,
            target_kl=algo.target_kl,
        )
    return kwargs


def schedule_text(value: float | ShiftedLinear) -> str:
    if isinstance(value, ShiftedLinear):
        return f"{value.start}·(progress_remaining + 1/{value.n_rollouts})"
    return f"{value} constant"


def settings_rows(cfg: DictConfig) -> list[tuple[str, str, str]]:
    """(setting, rlcamp, SB3) rows of the settings table for one algorithm."""
    kw = sb3_kwargs(cfg)
    pk = kw["policy_kwargs"]
    algo, env = cfg.algo, cfg.env
    sched = lambda on, v: f"{v}·(1 − k/K), K = {num_rollouts(cfg)}" if on else f"{v} constant"
    rows = [
        ("envs × steps", f"{env.n_envs} × {algo.n_steps}", f"{env.n_envs} × {kw['n_steps']}"),
        ("γ, λ", f"{algo.gamma}, {algo.gae_lambda}", f"{kw['gamma']}, {kw['gae_lambda']}"),
        ("entropy coef", f"{algo.ent_coef}", f"{kw['ent_coef']}"),
        ("value loss", f"{algo.vf_coef}·½·E[(V−R)²]", f"{kw['vf_coef']}·E[(V−R)²]"),
        ("grad clip", f"{algo.max_grad_norm}", f"{kw['max_grad_norm']}"),
        ("advantage normalization", f"{algo.normalize_advantage}", f"{kw['normalize_advantage']}"),
        (
            "optimizer",
            f"{algo.optimizer._target_.rsplit('.', 1)[-1]} {dict(kw['policy_kwargs']['optimizer_kwargs'])}",
            f"{kw['policy_kwargs']['optimizer_class'].__name__} {kw['policy_kwargs']['optimizer_kwargs']}",
        ),
        ("learning rate", sched(algo.anneal_lr, algo.optimizer.lr), schedule_text(kw["learning_rate"])),
        (
            "network",
            f"{list(cfg.network.hidden_sizes)} {cfg.network.activation}, separate actor/critic, ortho init"
            f", memory={cfg.network.memory}",
            f"pi={pk['net_arch']['pi']}, vf={pk['net_arch']['vf']}, {pk['activation_fn'].__name__}, "
            f"ortho_init={pk['ortho_init']}, lstm_hidden_size={pk.get('lstm_hidden_size')}",
        ),
    ]
    if "n_epochs" in kw:
        rows += [
            ("epochs × minibatch", f"{algo.update_epochs} × {kw['batch_size']}", f"{kw['n_epochs']} × same"),
            ("clip ε", sched(algo.anneal_clip, algo.clip_range), schedule_text(kw["clip_range"])),
            ("value clipping", f"clip_range_vf={algo.clip_range_vf}", f"clip_range_vf={kw['clip_range_vf']}"),
        ]
    return rows


# ----------------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class RunResult:
    lib: str
    algo: str
    seed: int
    final: float
    steps_to_475: int
    env_steps: int


def first_solved(env_steps: Sequence[int], returns: Sequence[float], budget: int) -> int:
    """Env steps at the first rollout whose 20-episode mean return is >= 475; ``budget`` if none."""
    for steps, ret in zip(env_steps, returns, strict=True):
        if ret >= SOLVED:
            return int(steps)
    return budget


def run_rlcamp(algo: str, seed: int, budget: int) -> RunResult:
    import pandas as pd

    from rlcamp.train import train

    with tempfile.TemporaryDirectory(prefix="rlcamp-peer-") as out:
        cfg = compose_cfg(algo, seed, budget, out)
        with open_dict(cfg):
            cfg.num_threads = 1
        summary, _ = train(cfg)
        metrics = pd.read_csv(Path(out) / "metrics.csv")
    curve = metrics[["env_steps", "rollout/ep_return_mean"]].dropna()
    return RunResult(
        "rlcamp",
        algo,
        seed,
        float(summary["ep_return_mean"]),
        first_solved(curve["env_steps"].tolist(), curve["rollout/ep_return_mean"].tolist(), budget),
        int(summary["env_steps"]),
    )


def run_sb3(algo: str, seed: int, budget: int) -> RunResult:
    from hydra.utils import instantiate
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    def window_mean(model: Any) -> float:
        returns = [info["r"] for info in list(model.ep_info_buffer)[-WINDOW:]]
        return float(np.mean(returns)) if returns else float("nan")

    class Solved(BaseCallback):
        """At each rollout's end (after its steps, before its update, as rlcamp's metrics row)."""

        def __init__(self) -> None:
            super().__init__()
            self.steps: list[int] = []
            self.returns: list[float] = []

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            self.steps.append(self.model.num_timesteps)
            self.returns.append(window_mean(self.model))

    with tempfile.TemporaryDirectory(prefix="rlcamp-peer-") as out:
        cfg = compose_cfg(algo, seed, budget, out)
    env = make_vec_env(instantiate(cfg.env).env_fn(), n_envs=int(cfg.env.n_envs), seed=seed)
    if algo == "ppo_lstm":
        from sb3_contrib import RecurrentPPO

        model = RecurrentPPO("MlpLstmPolicy", env, seed=seed, device="cpu", verbose=0, **sb3_kwargs(cfg))
    else:
        cls = {"a2c": A2C, "ppo": PPO}[algo]
        model = cls("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **sb3_kwargs(cfg))
    callback = Solved()
    model.learn(
        total_timesteps=num_rollouts(cfg) * int(cfg.env.n_envs) * int(cfg.algo.n_steps), callback=callback
    )
    env.close()
    return RunResult(
        "sb3",
        algo,
        seed,
        window_mean(model),
        first_solved(callback.steps, callback.returns, budget),
        int(model.num_timesteps),
    )


def run_job(job: tuple[str, str, int, int]) -> RunResult:
    """One run in a worker: one torch thread, libraries quiet."""
    import torch

    torch.set_num_threads(1)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("rlcamp").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    lib, algo, seed, budget = job
    result = (run_rlcamp if lib == "rlcamp" else run_sb3)(algo, seed, budget)
    print(
        f"  {lib:6s} {algo} seed {seed:2d}: final {result.final:6.1f}, 475 at {result.steps_to_475}",
        flush=True,
    )
    return result


# ----------------------------------------------------------------------------------------- statistics
def compare(x: Sequence[float], y: Sequence[float], reps: int = 10_000, seed: int = 0) -> dict[str, float]:
    """Two-sided Mann-Whitney U p-value and ``P(X > Y)`` with rliable's 95% bootstrap CI.

    ``P(X > Y) = U_X / (n·m)``, ties counted ½ (rliable's ``probability_of_improvement``).
    The p-value is exact without ties and the tie-corrected normal approximation with them
    (scipy's ``auto`` would use the approximation already from 9 runs per sample).
    When every score of both samples is the same value the U statistic's variance is zero and
    scipy's p is undefined; the samples are then indistinguishable and the p-value is 1.
    """
    from rliable import library, metrics

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    pooled = np.concatenate([xs, ys])
    if np.all(pooled == pooled[0]):
        p_value = 1.0
    else:
        method = "exact" if len(np.unique(pooled)) == len(pooled) else "asymptotic"
        p_value = float(scipy.stats.mannwhitneyu(xs, ys, alternative="two-sided", method=method).pvalue)
    pairs = {"x,y": (xs[:, None], ys[:, None])}
    # rliable 1.2 draws its resampling indices from numpy's global RNG (``np.random.choice``), not
    # from ``random_state``: seed that for a reproducible interval, and restore it afterwards
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        point, interval = library.get_interval_estimates(pairs, metrics.probability_of_improvement, reps=reps)
    finally:
        np.random.set_state(saved)
    low, high = np.asarray(interval["x,y"]).reshape(-1)
    return {
        "n_x": len(xs),
        "n_y": len(ys),
        "p_value": p_value,
        "prob_improvement": float(point["x,y"]),
        "prob_improvement_ci95": [float(low), float(high)],
    }


def detectable_shift(
    x: Sequence[float], y: Sequence[float], power: float = 0.8, alpha: float = 0.05, sims: int = 400
) -> float:
    """Smallest location shift δ the two-sided U test detects with ``power`` at these ``n, m``.

    Monte-Carlo, under the location model: both samples are drawn (with replacement) from the
    pooled, per-library-centred scores (medians removed, so an existing difference does not count),
    one of them moved by δ; δ is found by bisection on the rejection rate at level ``alpha``.
    Unbounded shifts: a return capped at 500 makes the real figure somewhat larger near the cap.
    ``inf`` when no shift up to 10 IQRs reaches ``power`` (too few runs), ``nan`` when all scores
    are tied within each sample.
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    residuals = np.concatenate([xs - np.median(xs), ys - np.median(ys)])
    scale = float(np.subtract(*np.percentile(residuals, [75, 25])))
    if scale == 0.0:  # all scores tied within each library: no spread to shift
        return math.nan
    rng = np.random.default_rng(0)
    draws_x = rng.choice(residuals, size=(sims, len(xs)))
    draws_y = rng.choice(residuals, size=(sims, len(ys)))

    def rejection_rate(delta: float) -> float:
        p = scipy.stats.mannwhitneyu(draws_x + delta, draws_y, alternative="two-sided", axis=1).pvalue
        return float(np.mean(p < alpha))

    lo, hi = 0.0, 10.0 * scale
    if rejection_rate(hi) < power:  # too few runs: even a huge shift is not detected reliably
        return math.inf
    for _ in range(30):
        mid = (lo + hi) / 2.0
        lo, hi = (lo, mid) if rejection_rate(mid) >= power else (mid, hi)
    return hi


def summarize(scores: Sequence[float]) -> dict[str, float]:
    """Median and interquartile range (25th and 75th percentiles) of one sample."""
    q25, median, q75 = np.percentile(np.asarray(scores, dtype=float), [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75)}


def statistics_table(results: Sequence[RunResult], budget: int) -> tuple[list[dict[str, Any]], str]:
    """Per (algo, statistic): both libraries' sorted scores, median/IQR and :func:`compare`; markdown."""
    rows: list[dict[str, Any]] = []
    for algo in ALGOS:
        stats = ["final", "steps_to_475"] if algo in SOLVE_STATISTICS else ["final"]
        for stat in stats:
            by_lib = {
                lib: sorted(getattr(r, stat) for r in results if r.lib == lib and r.algo == algo)
                for lib in LIBS
            }
            if not all(by_lib.values()):
                continue
            row = {"algo": algo, "statistic": stat, **{f"{lib}_scores": by_lib[lib] for lib in LIBS}}
            row.update({f"{lib}_{k}": v for lib in LIBS for k, v in summarize(by_lib[lib]).items()})
            better = LOWER_IS_BETTER.get(stat, 1.0)  # -1: compare negated scores, so X > Y means "better"
            row.update(compare([better * v for v in by_lib["rlcamp"]], [better * v for v in by_lib["sb3"]]))
            shift = detectable_shift(by_lib["rlcamp"], by_lib["sb3"])
            row["detectable_shift_80"] = shift if math.isfinite(shift) else None  # None: not estimable
            if stat == "steps_to_475":
                row["never_reached"] = {lib: sum(v >= budget for v in by_lib[lib]) for lib in LIBS}
            rows.append(row)
    return rows, markdown_table(rows)


def iqr_text(row: dict[str, Any], lib: str) -> str:
    return f"{row[f'{lib}_median']:.1f} [{row[f'{lib}_q25']:.1f}, {row[f'{lib}_q75']:.1f}]"


def shift_text(shift: float | None) -> str:
    """``—``: no shift reaches 80% power at this n, or the scores are all tied (nothing to shift)."""
    return "—" if shift is None else f"{shift:.0f}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per (algo, statistic) of :func:`statistics_table`."""
    lines = [
        "| algo | statistic | n | rlcamp median [IQR] | SB3 median [IQR] | U-test p "
        "| P(rlcamp better) [95% CI] | shift detectable (80%) |",
        "|---|---|---:|---|---|---:|---|---:|",
    ]
    for r in rows:
        low, high = r["prob_improvement_ci95"]
        poi = f"{r['prob_improvement']:.2f} [{low:.2f}, {high:.2f}]"
        lines.append(
            f"| {r['algo']} | {r['statistic']} | {r['n_x']}/{r['n_y']} | {iqr_text(r, 'rlcamp')} "
            f"| {iqr_text(r, 'sb3')} | {r['p_value']:.3f} | {poi} | {shift_text(r['detectable_shift_80'])} |"
        )
    return "\n".join(lines)


def run_all(jobs: list[tuple[str, str, int, int]], n_workers: int) -> list[RunResult]:
    if n_workers <= 1:
        return [run_job(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=n_workers) as pool:
        return list(pool.map(run_job, jobs))


def merge(old: list[RunResult], new: list[RunResult]) -> list[RunResult]:
    """``new`` replaces runs of ``old`` with the same (lib, algo, seed)."""
    key: Callable[[RunResult], tuple[str, str, int]] = lambda r: (r.lib, r.algo, r.seed)
    merged = {key(r): r for r in old} | {key(r): r for r in new}
    return sorted(merged.values(), key=key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1-10"), help="e.g. 1-10 or 1,2,3")
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS))
    parser.add_argument("--libs", nargs="+", choices=LIBS, default=list(LIBS))
    parser.add_argument("--budget", type=int, default=100_000, help="env steps per run")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one torch thread each)")
    parser.add_argument("--json", type=Path, help="write per-seed scores and the statistics here")
    parser.add_argument(
        "--from-json", type=Path, help="start from this JSON's runs (new runs replace same lib/algo/seed)"
    )
    args = parser.parse_args()

    old: list[RunResult] = []
    if args.from_json:
        old = [RunResult(**r) for r in json.loads(args.from_json.read_text())["runs"]]
        if old and any(r.env_steps < args.budget for r in old):
            raise SystemExit(f"{args.from_json} holds runs of another budget: pass its --budget")
    done = {(r.lib, r.algo, r.seed) for r in old}
    jobs = [
        (lib, algo, seed, args.budget)
        for algo in args.algos
        for seed in args.seeds
        for lib in args.libs
        if (lib, algo, seed) not in done
    ]
    results = merge(old, run_all(jobs, args.jobs))
    rows, table = statistics_table(results, args.budget)

    settings = {}
    with tempfile.TemporaryDirectory() as out:
        for algo in ALGOS:
            settings[algo] = settings_rows(compose_cfg(algo, 1, args.budget, out))
    for algo, algo_rows in settings.items():
        print(f"\n{algo.upper()} settings\n\n| setting | rlcamp | SB3 |\n|---|---|---|")
        for row in algo_rows:
            print("| " + " | ".join(row) + " |")
    print(
        f"\n{ENV_ID} (ppo_lstm: velocities hidden), {args.budget:,} env steps; never reaching {SOLVED:.0f} "
        "counts as the budget\n"
    )
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "env_id": ENV_ID,
            "budget": args.budget,
            "versions": versions(),
            "settings": settings,
            "runs": [asdict(r) for r in results],
            "statistics": rows,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


def versions() -> dict[str, str]:
    """Versions of the libraries whose numbers these are."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("rlcamp", "stable-baselines3", "sb3-contrib", "torch", "gymnasium", "rliable", "scipy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # sb3-contrib: only the recurrent comparison needs it
            continue
    return found


if __name__ == "__main__":
    main()
