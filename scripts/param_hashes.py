"""Fingerprints of short seeded runs of every algorithm: proof that a refactor kept the numbers.

    python scripts/param_hashes.py > before.txt    # on the old commit
    python scripts/param_hashes.py > after.txt     # on the new one
    diff before.txt after.txt                      # no output: the same weights, the same curves

Each line is one run (algorithm x env x network option, a few rollouts, one torch thread): the
SHA-256 of its final ``state_dict`` (every tensor's bytes, in name order) and of its ``metrics.csv``
without the wall-clock columns. Same machine, same wheels: equal hashes mean bit-identical runs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import logging
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlcamp.train import train  # noqa: E402
from rlcamp.utils.build import compose_config  # noqa: E402

ALGOS = ("a2c", "acktr", "actor_critic", "npg", "ppo", "ppo_kl", "reinforce", "trpo")
CASES: dict[str, list[str]] = {
    "cartpole": ["env=cartpole"],
    "cartpole-shared-normobs": ["env=cartpole", "network=mlp_shared", "env.normalize_obs=true"],
    "pendulum": ["env=pendulum", "env.normalize_obs=true", "env.normalize_reward=true"],
}
# the Q-weighted actor-critic takes Discrete actions only
SKIP = {("actor_critic", "pendulum")}
TIME_COLUMNS = ("time/sps",)


def tensor_hash(state_dict: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def metrics_hash(path: Path) -> str:
    with path.open(newline="") as file:
        rows = [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in csv.DictReader(file)]
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def fingerprint(algo: str, overrides: list[str], steps: int) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config(
            [
                f"algo={algo}",
                *overrides,
                f"total_env_steps={steps}",
                "callbacks=none",
                "logger=csv",
                "seed=3",
            ],
            tmp,
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the end-of-run table
            _, module = train(cfg)
        return tensor_hash(module.state_dict()), metrics_hash(Path(tmp) / "metrics.csv")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=4096, help="env steps per run (default 4096)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    for case, overrides in CASES.items():
        for algo in ALGOS:
            if (algo, case.split("-")[0]) in SKIP:
                continue
            weights, metrics = fingerprint(algo, overrides, args.steps)
            print(f"{algo:13s} {case:24s} weights {weights}  metrics {metrics}", flush=True)


if __name__ == "__main__":
    main()
