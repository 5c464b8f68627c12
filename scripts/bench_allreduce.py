"""What one DDP gradient all-reduce costs on this machine: an optimizer step alone vs under DDP.

    python scripts/bench_allreduce.py                    # the default PPO MLPs (64x64), minibatch 64 and 2048
    python scripts/bench_allreduce.py --batches 64 --hidden 256 256

A DDP rank all-reduces its gradients once per optimizer step, so DDP pays when a rank's compute
between two steps (its share of the rollout plus one minibatch's forward/backward) is large beside
this cost. Each figure is the mean milliseconds of one ``zero_grad → backward → Adam step`` of an
actor-critic-sized MLP on one thread: ``alone`` in one process; ``side by side`` in each of
``--devices`` forked processes at once, without DDP (what sharing the machine costs); ``DDP`` in
each of ``--devices`` forked gloo ranks wrapped in torch's ``DistributedDataParallel`` (as
``trainer=ddp_cpu`` runs it). DDP minus side by side is the all-reduce and the ranks' lockstep.
Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from rlcamp.nn.mlp import mlp


def actor_critic(obs_dim: int, hidden: Sequence[int], n_outputs: int) -> torch.nn.Module:
    """Two MLP bodies with linear heads: the parameter count of ``network=mlp``'s actor and critic."""
    torch.manual_seed(0)
    actor = torch.nn.Sequential(mlp(obs_dim, hidden), torch.nn.Linear(hidden[-1], n_outputs))
    critic = torch.nn.Sequential(mlp(obs_dim, hidden), torch.nn.Linear(hidden[-1], 1))
    return torch.nn.ModuleList([actor, critic])


def step_times(
    model: torch.nn.Module, forward: torch.nn.Module, batch: int, obs_dim: int, steps: int
) -> list[float]:
    """Seconds of each of ``steps`` optimizer steps after 50 warm-up steps."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    obs = torch.randn(batch, obs_dim)
    times = []
    for i in range(steps + 50):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        forward(obs).pow(2).mean().backward()
        optimizer.step()
        if i >= 50:
            times.append(time.perf_counter() - start)
    return times


class Both(torch.nn.Module):
    """Actor and critic outputs summed into one tensor, so one backward reaches every parameter."""

    def __init__(self, model: torch.nn.ModuleList) -> None:
        super().__init__()
        self.model = model

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.model[0](obs).sum(-1) + self.model[1](obs).squeeze(-1)


def rank_main(rank: int, world: int, port: int, args: argparse.Namespace, results: dict) -> None:
    """One process of ``--devices``: every minibatch size side by side (a barrier between), then DDP."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    for batch in args.batches:
        for mode in ("side", "ddp"):
            model = Both(actor_critic(args.obs_dim, args.hidden, args.n_outputs))
            forward = DistributedDataParallel(model) if mode == "ddp" else model
            dist.barrier()
            times = step_times(model, forward, batch, args.obs_dim, args.steps)
            if rank == 0:
                results[mode, batch] = times
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 2048], help="minibatch sizes")
    parser.add_argument("--hidden", nargs="+", type=int, default=[64, 64], help="hidden sizes of each MLP")
    parser.add_argument("--obs-dim", type=int, default=11, help="observation size (Hopper-v5: 11)")
    parser.add_argument("--n-outputs", type=int, default=3, help="actor outputs (Hopper-v5: 3)")
    parser.add_argument("--steps", type=int, default=1000, help="timed optimizer steps")
    parser.add_argument("--devices", type=int, default=2, help="DDP ranks")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_params = sum(p.numel() for p in actor_critic(args.obs_dim, args.hidden, args.n_outputs).parameters())
    print(f"actor + critic MLPs {args.hidden}: {n_params} parameters; ms per optimizer step, mean (median)")
    results = mp.Manager().dict()
    mp.start_processes(
        rank_main, args=(args.devices, free_port(), args, results), nprocs=args.devices, start_method="fork"
    )
    for batch in args.batches:
        model = Both(actor_critic(args.obs_dim, args.hidden, args.n_outputs))
        alone = step_times(model, model, batch, args.obs_dim, args.steps)
        figures = {"alone": alone, "side by side": results["side", batch], "DDP": results["ddp", batch]}
        means = {name: statistics.fmean(times) * 1e3 for name, times in figures.items()}
        cells = ", ".join(
            f"{name} {means[name]:.3f} ({statistics.median(times) * 1e3:.3f})"
            for name, times in figures.items()
        )
        print(f"minibatch {batch:5d}: {cells}; all-reduce +{means['DDP'] - means['side by side']:.3f} ms")


if __name__ == "__main__":
    main()
