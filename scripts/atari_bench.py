"""PPO on Atari Pong, side by side (``make bench ARGS=--atari``, or ``python scripts/atari_bench.py``).

Three runs per repeat, interleaved so that a change in the machine's load hits all three, each in its
own process (so its peak RSS is its own), all at CleanRL's ``ppo_atari.py`` settings (8 envs × 128
steps, 4 epochs × 4 minibatches, Adam 2.5e-4, clip 0.1, Nature CNN, one torch thread):

- rlcamp on EnvPool (``env=pong``, the default backend);
- rlcamp on gymnasium + ale-py (``env.backend=gymnasium``);
- stable-baselines3's PPO with ``make_atari_env`` (its ``AtariWrapper``) and ``VecFrameStack(4)`` on
  ``PongNoFrameskip-v4`` (the bench extra: ``pip install -e '.[bench]'``).

Reported: training steps/s (from the first rollout), peak RSS, and where rlcamp's time goes, each
part timed on its own: stepping the envs with random actions, the policy's forward pass on a
rollout's frames, and the rest of a rollout + update (the update's passes, minibatching, logging).
The medians over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

KINDS = ("rlcamp-envpool", "rlcamp-gymnasium", "sb3")
N_ENVS, N_STEPS = 8, 128


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rlcamp_run(backend: str, steps: int, seed: int) -> dict[str, float]:
    """rlcamp's PPO on Pong: training steps/s, then the parts of a rollout timed on their own."""
    import torch
    from hydra.utils import instantiate

    from rlcamp.train import train
    from rlcamp.utils.build import compose_config

    overrides = ["debug=default", "env=pong", f"env.backend={backend}", f"seed={seed}"]
    cfg = compose_config([*overrides, f"total_env_steps={steps}"], "/tmp/rlcamp-atari-bench")
    with contextlib.redirect_stdout(io.StringIO()):
        _, module = train(cfg)
    sps = module.last_metrics["time/sps"]
    env = instantiate(cfg.env)(seed=seed)
    obs, _ = env.reset(seed=seed)
    actions = [env.action_space.sample() for _ in range(N_STEPS)]
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    env_seconds = time.perf_counter() - start
    policy = module.policy
    frames = torch.as_tensor(obs)
    with torch.no_grad():
        policy.act(policy.preprocess(frames))
        start = time.perf_counter()
        for _ in range(N_STEPS):
            policy.act(policy.preprocess(frames))
    forward_seconds = time.perf_counter() - start
    env.close()
    rollout_seconds = N_ENVS * N_STEPS / sps
    return {
        "sps": sps,
        "peak_rss_mib": peak_rss_mib(),
        "env_share": env_seconds / rollout_seconds,
        "forward_share": forward_seconds / rollout_seconds,
    }


def sb3_run(steps: int, seed: int) -> dict[str, float]:
    """SB3's PPO at the same settings; steps/s of ``learn`` (set-up excluded)."""
    import ale_py
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    torch.set_num_threads(1)
    gym.register_envs(ale_py)
    env = VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=N_ENVS, seed=seed), n_stack=4)
    model = PPO(
        "CnnPolicy",
        env,
        n_steps=N_STEPS,
        batch_size=N_ENVS * N_STEPS // 4,
        n_epochs=4,
        learning_rate=lambda f: 2.5e-4 * f,
        clip_range=0.1,
        clip_range_vf=0.1,
        ent_coef=0.01,
        vf_coef=0.5,
        max_grad_norm=0.5,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return {"sps": model.num_timesteps / (time.perf_counter() - start), "peak_rss_mib": peak_rss_mib()}


def one_run(kind: str, steps: int, seed: int) -> dict[str, float]:
    if kind == "sb3":
        return sb3_run(steps, seed)
    return rlcamp_run(kind.removeprefix("rlcamp-"), steps, seed)


def run_in_child(kind: str, steps: int, seed: int) -> dict[str, float]:
    """One run in a fresh process: its JSON line on stdout."""
    command = [sys.executable, __file__, "--child", kind, "--steps", str(steps), "--seed", str(seed)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3072, help="env steps per run (3 rollouts)")
    parser.add_argument("--json", type=Path, help="write the medians as JSON here")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(1)
        logging.disable(logging.WARNING)
        warnings.filterwarnings("ignore")
        print(json.dumps(one_run(args.child, args.steps, args.seed)))
        return
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    for seed in range(1, args.repeats + 1):
        for kind in KINDS:
            runs[kind].append(run_in_child(kind, args.steps, seed))
            print(f"  {kind} seed {seed}: {runs[kind][-1]}", file=sys.stderr)
    medians = {
        kind: {key: statistics.median(run[key] for run in kind_runs) for key in kind_runs[0]}
        for kind, kind_runs in runs.items()
    }
    from bench import print_table  # scripts/, beside this file

    sb3 = medians["sb3"]["sps"]
    rows = [
        [
            kind,
            f"{figures['sps']:,.0f}",
            f"{figures['sps'] / sb3:.2f}x",
            f"{figures['peak_rss_mib']:,.0f}",
            *(f"{figures[k]:.0%}" if k in figures else "-" for k in ("env_share", "forward_share")),
        ]
        for kind, figures in medians.items()
    ]
    print_table(["run", "train steps/s", "vs SB3", "peak RSS MiB", "env share", "forward share"], rows)
    print(f"medians of {args.repeats} interleaved runs of {args.steps} env steps, one torch thread")
    if args.json:
        args.json.write_text(json.dumps(medians, indent=2) + "\n")


if __name__ == "__main__":
    main()
