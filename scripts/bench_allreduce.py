"""What one DDP gradient all-reduce costs on this machine: an optimizer step alone vs under DDP.

    python scripts/bench_allreduce.py                       # Hopper's PPO policy, minibatch 64 and 2048
    python scripts/bench_allreduce.py --env cartpole --override network.hidden_sizes=[256,256]

A DDP rank all-reduces its gradients once per optimizer step, so DDP pays when a rank's compute
between two steps (its share of the rollout plus one minibatch's forward/backward) is large beside
this cost. Each figure is the mean milliseconds of one ``zero_grad → backward → Adam step`` of the
run's own policy (``conf/network``, built for the env's spaces as ``rlcamp-train`` builds it) on a
PPO-shaped loss of ``evaluate_actions``, on one thread: ``alone`` in one process; ``side by side``
in each of ``--devices`` forked processes at once, without DDP (what sharing the machine costs);
``DDP`` in each of ``--devices`` forked gloo ranks wrapped in torch's ``DistributedDataParallel``
(as ``trainer=ddp_cpu`` runs it). DDP minus side by side is the all-reduce and the ranks'
lockstep. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from rlcamp.nn.actor_critic import ActorCritic
from rlcamp.utils.build import build, compose_config


def build_policy(env: str, overrides: list[str]) -> ActorCritic:
    """The policy ``rlcamp-train env=<env> <overrides>`` trains, with fixed initial weights."""
    cfg = compose_config([f"env={env}", *overrides], tempfile.gettempdir())
    torch.manual_seed(0)
    return build(cfg).policy


class PolicyLoss(torch.nn.Module):
    """``−log π(a|s) − H + V(s)²`` of a batch: one backward reaches every parameter of the policy."""

    def __init__(self, policy: ActorCritic) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        log_prob, entropy, value = self.policy.evaluate_actions(obs, actions)
        return (value.pow(2) - log_prob - entropy).mean()


def step_times(model: torch.nn.Module, loss: torch.nn.Module, batch: int, steps: int) -> list[float]:
    """Seconds of each of ``steps`` optimizer steps after 50 warm-up steps."""
    policy: ActorCritic = model.policy
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    obs = torch.randn(batch, *policy.observation_space.shape)
    with torch.no_grad():
        actions = policy.act(obs)[0]
    times = []
    for i in range(steps + 50):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss(obs, actions).backward()
        optimizer.step()
        if i >= 50:
            times.append(time.perf_counter() - start)
    return times


def rank_main(rank: int, world: int, port: int, args: argparse.Namespace, results: dict) -> None:
    """One process of ``--devices``: every minibatch size side by side (a barrier between), then DDP."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    for batch in args.batches:
        for mode in ("side", "ddp"):
            model = PolicyLoss(build_policy(args.env, args.override))
            loss = DistributedDataParallel(model) if mode == "ddp" else model
            dist.barrier()
            times = step_times(model, loss, batch, args.steps)
            if rank == 0:
                results[mode, batch] = times
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="hopper", help="env config whose spaces the policy is built for")
    parser.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE", help="a Hydra override (network.*)"
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 2048], help="minibatch sizes")
    parser.add_argument("--steps", type=int, default=1000, help="timed optimizer steps")
    parser.add_argument("--devices", type=int, default=2, help="DDP ranks")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_params = sum(p.numel() for p in build_policy(args.env, args.override).parameters())
    print(
        f"policy of {' '.join([f'env={args.env}', *args.override])}: {n_params} parameters; "
        "ms per optimizer step, mean (median)"
    )
    results = mp.Manager().dict()
    mp.start_processes(
        rank_main, args=(args.devices, free_port(), args, results), nprocs=args.devices, start_method="fork"
    )
    for batch in args.batches:
        model = PolicyLoss(build_policy(args.env, args.override))
        alone = step_times(model, model, batch, args.steps)
        figures = {"alone": alone, "side by side": results["side", batch], "DDP": results["ddp", batch]}
        means = {name: statistics.fmean(times) * 1e3 for name, times in figures.items()}
        cells = ", ".join(
            f"{name} {means[name]:.3f} ({statistics.median(times) * 1e3:.3f})"
            for name, times in figures.items()
        )
        print(f"minibatch {batch:5d}: {cells}; all-reduce +{means['DDP'] - means['side by side']:.3f} ms")


if __name__ == "__main__":
    main()
