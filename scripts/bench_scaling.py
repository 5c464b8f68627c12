"""Env steps/s of one run on 1 vs N processes (``trainer=cpu`` vs ``trainer=ddp_cpu``), equal per-rank
settings: each rank has the env config's ``n_envs`` and ``n_steps`` and takes the same number of
rollouts, so the N-process run spends N times the env steps. Run it alone on the machine.

    python scripts/bench_scaling.py --envs cartpole hopper --rollouts 20 --devices 2

``steps/s`` is the run's own figure (``summary.json``: env steps of all ranks / training time);
``start-up`` is the rest of the command's wall time (imports, Hydra, forking and joining the ranks).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from rlcamp.train import CONF_DIR


def rollout_size(env: str) -> int:
    """Transitions per rollout of one rank with the env's tuned PPO settings."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"env={env}"])
    return int(cfg.algo.n_steps) * int(cfg.env.n_envs)


def run(env: str, devices: int, env_steps: int, root: Path, start_method: str = "fork") -> dict[str, float]:
    """One training run in its own process; its summary's steps/s and the command's wall time."""
    trainer = ["trainer=cpu"]
    if devices > 1:
        trainer = ["trainer=ddp_cpu", f"trainer.devices={devices}"]
        trainer.append(f"trainer.strategy.start_method={start_method}")
    out = root / f"{env}-{devices}-{start_method}"
    command = [
        sys.executable,
        "-m",
        "rlcamp.train",
        f"env={env}",
        "debug=default",
        *trainer,
        f"total_env_steps={env_steps}",
        f"hydra.run.dir={out}",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    return {"sps": summary["steps_per_second"], "train_s": summary["wall_seconds"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["cartpole", "hopper"])
    parser.add_argument("--rollouts", type=int, default=20, help="rollouts per rank")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--start-methods", nargs="+", default=["fork"], help="fork and/or spawn")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as root:
        for env in args.envs:
            per_rank = args.rollouts * rollout_size(env)
            runs = [("-", 1, run(env, 1, per_rank, Path(root)))]
            for method in args.start_methods:
                figures = run(env, args.devices, per_rank * args.devices, Path(root), method)
                runs.append((method, args.devices, figures))
            for method, devices, figures in runs:
                speedup = figures["sps"] / runs[0][2]["sps"]
                results.append({"env": env, "processes": devices, "start_method": method, **figures})
                print(
                    f"{env:10s} {devices} process(es) {method:5s}: {figures['sps']:8.0f} steps/s "
                    f"(x{speedup:.2f}), start-up {figures['wall_s'] - figures['train_s']:5.1f} s"
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
