"""What a rollout of Atari-sized frames holds in memory, and a short pixel run's peak RSS.

    python scripts/rollout_memory.py              # 8 envs x 128 steps of uint8 [4, 84, 84] frames

Collects one rollout through rlcamp's own collector (Nature CNN, ``tests.helpers.envs:LitCellEnv``
at 4 x 84 x 84) and prints the bytes of every tensor the ``Rollout`` holds against the payload of
its frames as uint8 (8 x 128 x 4 x 84 x 84 = 28.9 MB) and as float32 (115.6 MB); then trains the
same setting for a few rollouts in a fresh process and prints that process's peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRAMES = ["env.id=tests.helpers.envs:LitCellEnv", "+env.kwargs.size=84", "+env.kwargs.channels=4"]


def overrides(n_envs: int, n_steps: int) -> list[str]:
    return [*FRAMES, "network=nature_cnn", f"env.n_envs={n_envs}", f"algo.n_steps={n_steps}", "debug=default"]


def rollout_bytes(n_envs: int, n_steps: int) -> dict[str, int]:
    """Bytes of each tensor of one collected ``Rollout``."""
    import torch

    from rlcamp.utils.build import build, compose_config

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        module = build(compose_config(overrides(n_envs, n_steps), tmp))
        module.setup("fit")
        rollout = module.collector.collect(module.policy)
        module.teardown("fit")
    return {f.name: getattr(rollout, f.name).nbytes for f in fields(rollout)}


def peak_rss_of_a_run(n_envs: int, n_steps: int, rollouts: int) -> int:
    """Peak resident memory (bytes) of a fresh process that trains ``rollouts`` rollouts."""
    code = (
        "import resource, sys, contextlib, io; sys.path.insert(0, sys.argv[1]);"
        "from rlcamp.train import train; from rlcamp.utils.build import compose_config;"
        "import tempfile; tmp = tempfile.mkdtemp();"
        "cfg = compose_config(sys.argv[2:], tmp);"
        "out = io.StringIO();"
        "ctx = contextlib.redirect_stdout(out); ctx.__enter__(); train(cfg); ctx.__exit__(None, None, None);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    budget = f"total_env_steps={n_envs * n_steps * rollouts}"
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), *overrides(n_envs, n_steps), budget],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.strip().splitlines()[-1]) * 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=128)
    parser.add_argument("--rollouts", type=int, default=4, help="rollouts of the peak-RSS run (default 4)")
    args = parser.parse_args()
    with contextlib.redirect_stdout(io.StringIO()):
        sizes = rollout_bytes(args.n_envs, args.n_steps)
    payload = args.n_envs * args.n_steps * 4 * 84 * 84
    total = sum(sizes.values())
    print(f"rollout of {args.n_envs} envs x {args.n_steps} steps of uint8 [4, 84, 84] frames:")
    for name, size in sizes.items():
        print(f"  {name:12s} {size / 1e6:9.3f} MB")
    print(f"  total        {total / 1e6:9.3f} MB")
    print(f"uint8 frame payload {payload / 1e6:.1f} MB: the rollout holds {total / payload:.3f} x it")
    print(f"as float32 the frames alone would be {4 * payload / 1e6:.1f} MB")
    rss = peak_rss_of_a_run(args.n_envs, args.n_steps, args.rollouts)
    print(f"peak RSS of a {args.rollouts}-rollout PPO run with the Nature CNN: {rss / 2**20:.0f} MiB")
    collector_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process, after collecting one rollout: {collector_rss:.0f} MiB)")


if __name__ == "__main__":
    main()
