"""Env steps/s of one run on 1 vs N processes (``trainer=cpu`` vs ``trainer=ddp_cpu``), equal per-rank
settings: each rank has the env config's ``n_envs`` and ``n_steps`` and takes the same number of
rollouts, so the N-process run spends N times the env steps. Run it alone on the machine.

    python scripts/bench_scaling.py --envs cartpole hopper --rollouts 20 --devices 2

``steps/s`` is the run's own figure (``summary.json``: env steps of all ranks / training time);
``start-up`` is the rest of the command's wall time (imports, Hydra, forking and joining the ranks).
``independent`` runs N single-process runs at once and sums their steps/s: the ceiling this
machine allows N processes (below N× when the cores are not free), against which DDP's own cost
(the ranks' lockstep and all-reduces) shows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlcamp.utils.build import compose_config


def rollout_size(env: str, extra: tuple[str, ...] = ()) -> int:
    """Transitions per rollout of one rank with the env's tuned PPO settings (and ``extra``)."""
    cfg = compose_config([f"env={env}", *extra], tempfile.gettempdir())
    return int(cfg.algo.n_steps) * int(cfg.env.n_envs)


def command(
    env: str,
    devices: int,
    env_steps: int,
    out: Path,
    start_method: str,
    seed: int = 1,
    extra: tuple[str, ...] = (),
) -> list[str]:
    trainer = ["trainer=cpu"]
    if devices > 1:
        trainer = ["trainer=ddp_cpu", f"trainer.devices={devices}"]
        trainer.append(f"trainer.strategy.start_method={start_method}")
    return [
        sys.executable,
        "-m",
        "rlcamp.train",
        f"env={env}",
        "debug=default",
        *trainer,
        f"total_env_steps={env_steps}",
        f"seed={seed}",
        f"hydra.run.dir={out}",
        *extra,
    ]


def run(
    env: str,
    devices: int,
    env_steps: int,
    root: Path,
    start_method: str = "fork",
    extra: tuple[str, ...] = (),
) -> dict[str, float]:
    """One training run in its own process; its summary's steps/s and the command's wall time."""
    out = root / f"{env}-{devices}-{start_method}"
    start = time.perf_counter()
    subprocess.run(
        command(env, devices, env_steps, out, start_method, extra=extra), check=True, capture_output=True
    )
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    return {"sps": summary["steps_per_second"], "train_s": summary["wall_seconds"], "wall_s": wall}


def run_independent(
    env: str, n: int, env_steps: int, root: Path, extra: tuple[str, ...] = ()
) -> dict[str, float]:
    """``n`` single-process runs (seeds 1..n) at once: the sum of their steps/s."""
    outs = [root / f"{env}-independent-{seed}" for seed in range(1, n + 1)]
    start = time.perf_counter()
    runs = [
        subprocess.Popen(
            command(env, 1, env_steps, out, "-", seed, extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for seed, out in enumerate(outs, start=1)
    ]
    if any(process.wait() != 0 for process in runs):
        raise RuntimeError(f"an independent {env} run failed")
    wall = time.perf_counter() - start
    summaries = [json.loads((out / "summary.json").read_text()) for out in outs]
    train_s = max(summary["wall_seconds"] for summary in summaries)
    return {
        "sps": sum(summary["steps_per_second"] for summary in summaries),
        "train_s": train_s,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["cartpole", "hopper"])
    parser.add_argument("--rollouts", type=int, default=20, help="rollouts per rank")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument(
        "--start-methods", nargs="+", default=["fork", "independent"], help="fork, spawn and/or independent"
    )
    parser.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE", help="a Hydra override for every run"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    extra = tuple(args.override)
    results = []
    with tempfile.TemporaryDirectory() as root:
        for env in args.envs:
            per_rank = args.rollouts * rollout_size(env, extra)
            runs = [("-", 1, run(env, 1, per_rank, Path(root), extra=extra))]
            for method in args.start_methods:
                if method == "independent":
                    figures = run_independent(env, args.devices, per_rank, Path(root), extra)
                else:
                    figures = run(env, args.devices, per_rank * args.devices, Path(root), method, extra)
                runs.append((method, args.devices, figures))
            for method, devices, figures in runs:
                speedup = figures["sps"] / runs[0][2]["sps"]
                results.append({"env": env, "processes": devices, "start_method": method, **figures})
                print(
                    f"{env:10s} {devices} process(es) {method:11s}: {figures['sps']:8.0f} steps/s "
                    f"(x{speedup:.2f}), start-up {figures['wall_s'] - figures['train_s']:5.1f} s"
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
