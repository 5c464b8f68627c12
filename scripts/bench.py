"""Throughput and time-to-solve benchmark for rlcamp's PPO (``make bench``).

Measures, one after another in this process (run it alone: anything else on the machine slows
every number by 1.1-2.2x):

1. PPO training env-steps/s on CartPole-v1 with CleanRL's ``ppo.py`` settings (``~algo_env``) and
   on Hopper-v5 with the PPO paper's settings, from the first rollout to the last (imports and env
   construction excluded);
2. the raw vector-env step rate with random actions on the same envs (same wrappers, same
   ``n_envs``) and the ratio training/raw;
3. the wall-clock time the default run (tuned CartPole) takes to first reach a mean return of 475;
4. with ``--sb3`` and stable-baselines3 importable, SB3's PPO at the same settings, side by side;
5. with EnvPool importable, gymnasium vs EnvPool (``env.backend``) on CartPole-v1 and Hopper-v5: 1. and
   2. again for each backend, the two interleaved seed by seed (``--backends-only``: this section alone);
6. with ``--atari``, only PPO on Atari Pong beside SB3's (``scripts/atari_bench.py``, which takes the
   other arguments).

One torch thread throughout; each figure is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import os
import statistics
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from rlcamp.train import train
from rlcamp.utils.build import compose_config

CARTPOLE_CLEANRL = ["~algo_env", "env=cartpole"]
HOPPER_PAPER = ["env=hopper"]
BACKENDS = ("gymnasium", "envpool")
BACKEND_HEADER = ["setting", "backend", "PPO train steps/s", "raw env steps/s", "vs gymnasium (train / raw)"]
SOLVED = 475.0


def compose_cfg(overrides: list[str], output_dir: str) -> DictConfig:
    """The run's config without loggers and callbacks (``debug=default``): only the timed work."""
    return compose_config(["debug=default", *overrides], output_dir)


class SolveTimer(pl.Callback):
    """Records the wall time since the first rollout at which the mean return first reaches 475."""

    def __init__(self) -> None:
        self.start = 0.0
        self.solved_at: tuple[float, int] | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.solved_at is None and pl_module.last_metrics.get("rollout/ep_return_mean", 0.0) >= SOLVED:
            self.solved_at = (time.perf_counter() - self.start, pl_module.env_steps)
            trainer.should_stop = True


def train_sps(overrides: list[str], steps: int, seed: int, tmp: str) -> float:
    cfg = compose_cfg([*overrides, f"total_env_steps={steps}", f"seed={seed}"], tmp)
    with contextlib.redirect_stdout(io.StringIO()):  # each run's end-of-run table
        _, module = train(cfg)
    return module.last_metrics["time/sps"]


def env_sps(overrides: list[str], steps: int, seed: int, tmp: str) -> float:
    """Random actions through the same vector env and wrappers the collector uses."""
    from hydra.utils import instantiate

    factory = instantiate(compose_cfg(overrides, tmp).env)
    env = factory(seed=seed)
    env.reset(seed=seed)
    n = steps // env.num_envs
    actions = [env.action_space.sample() for _ in range(n)]
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    elapsed = time.perf_counter() - start
    env.close()
    return n * env.num_envs / elapsed


def time_to_solve(seed: int, tmp: str) -> tuple[float, int] | None:
    cfg = compose_cfg([f"seed={seed}"], tmp)  # the default run, budget included (LR/clip annealing)
    timer = SolveTimer()
    from rlcamp.utils.build import build

    module = build(cfg)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=-1,
        logger=False,
        callbacks=[timer],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module)
    return timer.solved_at


def sb3_sps(env_id: str, steps: int, seed: int, cleanrl_cartpole: bool) -> float:
    """SB3 PPO at the same settings; steps/s from SB3's own timer (``time/fps`` excludes set-up)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    if cleanrl_cartpole:
        env = make_vec_env(env_id, n_envs=4, seed=seed)
        kwargs = dict(
            n_steps=128,
            batch_size=128,
            n_epochs=4,
            learning_rate=lambda f: 2.5e-4 * f,
            ent_coef=0.01,
            clip_range_vf=0.2,
        )
    else:
        env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed))
        kwargs = dict(n_steps=2048, batch_size=64, n_epochs=10, learning_rate=3e-4, clip_range_vf=0.2)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model.num_timesteps / (time.perf_counter() - start)


def sb3_time_to_solve(seed: int) -> tuple[float, int] | None:
    """SB3 PPO with rl-zoo's tuned CartPole-v1 settings: wall time until the mean return of the
    last 20 episodes first reaches 475 (checked after every rollout, as for rlcamp)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class Solved(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.start = 0.0
            self.solved_at: tuple[float, int] | None = None

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            returns = [info["r"] for info in list(self.model.ep_info_buffer)[-20:]]
            if self.solved_at is None and len(returns) == 20 and np.mean(returns) >= SOLVED:
                self.solved_at = (time.perf_counter() - self.start, self.model.num_timesteps)
                self.model.num_timesteps = 10**9  # ends learn() after this rollout's update

    def linear(start: float):
        return lambda progress: progress * start

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gamma=0.98,
        gae_lambda=0.8,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        seed=seed,
        device="cpu",
    )
    callback = Solved()
    model.learn(total_timesteps=100_000, callback=callback)  # rl-zoo's n_timesteps (sets the annealing)
    return callback.solved_at


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def backend_rows(
    cases: list[tuple], seeds: list[int], tmp: str, results: dict[str, float]
) -> list[list[str]]:
    """PPO training and raw env steps/s of each case on gymnasium and on EnvPool, same settings."""
    rows = []
    for label, overrides, steps, env_id, _ in cases:
        figures: dict[str, dict[str, list[float]]] = {b: {"train": [], "env": []} for b in BACKENDS}
        for seed in seeds:  # interleaved, so that a change in the machine's load hits both backends
            for backend in BACKENDS:
                backend_overrides = [*overrides, f"env.backend={backend}"]
                figures[backend]["train"].append(train_sps(backend_overrides, steps, seed, tmp))
                figures[backend]["env"].append(env_sps(backend_overrides, min(steps, 50_000), seed, tmp))
        key = env_id.split("-")[0].lower()
        base = {kind: median(figures["gymnasium"][kind]) for kind in ("train", "env")}
        for backend in BACKENDS:
            train, raw = (median(figures[backend][kind]) for kind in ("train", "env"))
            results[f"{key}_{backend}_train_sps"], results[f"{key}_{backend}_env_sps"] = train, raw
            rows.append(
                [
                    label,
                    backend,
                    f"{train:,.0f}",
                    f"{raw:,.0f}",
                    f"{train / base['train']:.2f}x / {raw / base['env']:.2f}x",
                ]
            )
            print(f"  measured {label} on {backend}: train {train:,.0f}/s, env {raw:,.0f}/s", file=sys.stderr)
    return rows


def print_table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    if "--atari" in sys.argv[1:]:
        import atari_bench  # scripts/, on the path of the script being run

        sys.argv.remove("--atari")
        atari_bench.main()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cartpole-steps", type=int, default=100_000)
    parser.add_argument("--hopper-steps", type=int, default=20_480)
    parser.add_argument("--sb3", action="store_true", help="also time stable-baselines3 PPO (if installed)")
    parser.add_argument("--skip-hopper", action="store_true")
    parser.add_argument("--backends-only", action="store_true", help="only gymnasium vs EnvPool (section 5)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    torch.set_num_threads(1)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("rlcamp").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    tmp = "/tmp/rlcamp-bench"
    seeds = list(range(1, args.repeats + 1))
    results: dict[str, float] = {}
    rows = []

    cases = [
        ("CartPole-v1 (CleanRL ppo.py settings)", CARTPOLE_CLEANRL, args.cartpole_steps, "CartPole-v1", True)
    ]
    if not args.skip_hopper:
        cases.append(("Hopper-v5 (PPO paper settings)", HOPPER_PAPER, args.hopper_steps, "Hopper-v5", False))
    if importlib.util.find_spec("envpool") is None:
        print("no gymnasium vs EnvPool rows: pip install -e '.[envpool]'", file=sys.stderr)
        backend_table = []
    else:
        backend_table = backend_rows(cases, seeds, tmp, results)
    if args.backends_only:
        print_table(BACKEND_HEADER, backend_table)
        print(f"torch {torch.__version__}, envpool {version('envpool')}, 1 thread, repeats {args.repeats}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return
    for label, overrides, steps, env_id, cleanrl in cases:
        ours = median([train_sps(overrides, steps, s, tmp) for s in seeds])
        raw = median([env_sps(overrides, min(steps, 50_000), s, tmp) for s in seeds])
        key = env_id.split("-")[0].lower()
        results[f"{key}_train_sps"], results[f"{key}_env_sps"] = ours, raw
        row = [label, f"{ours:,.0f}", f"{raw:,.0f}", f"{ours / raw:.2f}"]
        if args.sb3:
            sb3 = median([sb3_sps(env_id, steps, s, cleanrl) for s in seeds])
            results[f"{key}_sb3_sps"] = sb3
            row.append(f"{sb3:,.0f} ({ours / sb3:.2f}x)")
        rows.append(row)
        print(f"  measured {label}: train {ours:,.0f}/s, env {raw:,.0f}/s", file=sys.stderr)

    solves = [time_to_solve(s, tmp) for s in seeds]
    solved = [s for s in solves if s is not None]
    results["solve_seconds"] = median([t for t, _ in solved])
    results["solve_env_steps"] = median([float(n) for _, n in solved])
    results["solved_runs"] = len(solved)
    if args.sb3:
        sb3_solved = [s for s in (sb3_time_to_solve(seed) for seed in seeds) if s is not None]
        results["sb3_solve_seconds"] = median([t for t, _ in sb3_solved])
        results["sb3_solve_env_steps"] = median([float(n) for _, n in sb3_solved])

    header = ["setting", "PPO train steps/s", "raw env steps/s", "train/raw"] + (
        ["SB3 PPO steps/s (ours/SB3)"] if args.sb3 else []
    )
    print_table(header, rows)
    if backend_table:
        print()
        print_table(BACKEND_HEADER, backend_table)
    print(
        f"\nDefault run (tuned CartPole): mean return {SOLVED:.0f} reached in "
        f"{results['solve_seconds']:.1f} s (median over {len(solved)}/{len(seeds)} seeds that reached it), "
        f"at ~{results['solve_env_steps']:,.0f} env steps"
    )
    if args.sb3:
        print(
            f"SB3 PPO, rl-zoo's tuned CartPole settings: {SOLVED:.0f} reached in "
            f"{results['sb3_solve_seconds']:.1f} s at ~{results['sb3_solve_env_steps']:,.0f} env steps "
            f"(rlcamp/SB3 time: {results['solve_seconds'] / results['sb3_solve_seconds']:.2f})"
        )
    print(f"torch {torch.__version__}, 1 thread, numpy {np.__version__}, repeats {args.repeats} (medians)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
