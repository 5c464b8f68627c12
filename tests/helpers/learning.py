"""Learning tests as statistical claims: "at least k of these n seeds reach the threshold".

A training run is chaotic in its floating-point rounding, so the same seed follows another
trajectory on another CPU kind; only the distribution over seeds carries over between machines.
Each learning test therefore states a :class:`LearningClaim` whose threshold and ``k`` of ``n``
were chosen from the claim's statistic measured on at least 10 other seeds, and the test's
docstring records that distribution and the failure probability :func:`failure_probability` gives.

A claim stops once ``k`` seeds have passed, so ``k`` is about its cost in runs. The CartPole claim
of each algorithm (PPO, PPO-KL, A2C, ACKTR, REINFORCE, the Q actor-critic, and TRPO for the
natural-gradient family, whose step NPG shares) asks ``k >= 2``, so that one lucky seed cannot
carry it. A claim that adds a setting to one of these (another env, an action space, an
observation kind, a recurrent or pixel network, DDP) may ask ``1 of n``, with ``n`` the smallest
that keeps the failure probability under 1%.

Measure a claim's distribution (seeds not used by the test) with::

    python -m tests.helpers.learning tests.algos.test_a2c:A2C_CARTPOLE --seeds 101-120 --jobs 2
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import multiprocessing
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def beta_binomial_pmf(x: int, n: int, alpha: float, beta: float) -> float:
    """``P(X = x)`` for ``X ~ BetaBinomial(n, α, β) = C(n, x) B(x + α, n − x + β) / B(α, β)``."""

    def log_beta(a: float, b: float) -> float:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    log_choose = math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)
    return math.exp(log_choose + log_beta(x + alpha, n - x + beta) - log_beta(alpha, beta))


def failure_probability(measured: Sequence[float], threshold: float, n: int, k: int) -> float:
    """Probability that fewer than ``k`` of ``n`` fresh seeds reach ``threshold``.

    The per-seed success probability ``p`` is unknown; with ``s`` of the ``N`` measured seeds
    reaching the threshold and a uniform prior, its posterior is ``Beta(s + 1, N − s + 1)``, so the
    number of passing seeds among ``n`` new ones is ``BetaBinomial(n, s + 1, N − s + 1)`` and

        P(fail) = Σ_{x < k} C(n, x) B(x + s + 1, n − x + N − s + 1) / B(s + 1, N − s + 1).

    This accounts for ``p`` being estimated from ``N`` seeds: 20 of 20 measured passes do not make
    ``p = 1``.
    """
    passes = sum(score >= threshold for score in measured)
    alpha, beta = passes + 1, len(measured) - passes + 1
    return sum(beta_binomial_pmf(x, n, alpha, beta) for x in range(k))


@dataclass(frozen=True)
class LearningClaim:
    """At least ``min_passing`` of ``seeds`` reach ``threshold`` in ``summary[statistic]``.

    Args:
        overrides: the Hydra overrides of the run (``seed`` is added per seed).
        threshold: the bar one seed's statistic must reach.
        seeds: the test's seeds, disjoint from the ones the threshold was chosen on.
        min_passing: ``k``; the claim holds when ``k`` of the ``len(seeds)`` seeds pass.
        statistic: the ``summary.json`` key compared with the threshold.
    """

    overrides: tuple[str, ...]
    threshold: float
    seeds: tuple[int, ...]
    min_passing: int
    statistic: str = "ep_return_mean"

    def score(self, seed: int, output_dir: Path) -> float:
        """The statistic of one training run with ``seed``."""
        from rlcamp.train import train
        from tests.helpers.config import compose_train

        overrides = [*self.overrides, f"seed={seed}", "debug=default"]
        summary, _ = train(compose_train(overrides, output_dir))
        return float(summary[self.statistic])

    def check(self, output_root: Path) -> dict[int, float]:
        """Train the seeds in turn until the claim is decided; raise ``AssertionError`` if it fails.

        Stopping once ``k`` seeds passed (or too many failed for ``k`` to be reachable) decides
        exactly as running all ``n`` would, in fewer runs.
        """
        scores: dict[int, float] = {}
        for seed in self.seeds:
            scores[seed] = self.score(seed, output_root / f"seed{seed}")
            passed = sum(score >= self.threshold for score in scores.values())
            failed = len(scores) - passed
            if passed >= self.min_passing:
                return scores
            if failed > len(self.seeds) - self.min_passing:
                break
        raise AssertionError(
            f"{passed} of the seeds reached {self.statistic} >= {self.threshold}, "
            f"{self.min_passing} of {len(self.seeds)} needed; scores by seed: {scores}"
        )

    def failure_probability(self, measured: Sequence[float]) -> float:
        """:func:`failure_probability` of this claim's rule under the ``measured`` distribution."""
        return failure_probability(measured, self.threshold, len(self.seeds), self.min_passing)


def load_claim(reference: str) -> LearningClaim:
    """``"tests.algos.test_a2c:A2C_CARTPOLE"`` → that module's claim."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _score_worker(args: tuple[str, int, str]) -> tuple[int, float]:
    import torch

    torch.set_num_threads(1)
    reference, seed, root = args
    return seed, load_claim(reference).score(seed, Path(root) / f"seed{seed}")


def parse_seeds(text: str) -> list[int]:
    """``"101-120"`` or ``"1,5,9"`` → the seeds."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-"))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def main(argv: Sequence[str] | None = None) -> None:
    """Measure a claim's statistic on seeds and print its distribution and failure probability."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("claim", help="module:NAME of a LearningClaim")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("101-120"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write {seed: score} to this file")
    args = parser.parse_args(argv)
    claim = load_claim(args.claim)
    with tempfile.TemporaryDirectory() as root:
        work = [(args.claim, seed, root) for seed in args.seeds]
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            scores = dict(pool.imap_unordered(_score_worker, work))
    measured = [scores[seed] for seed in args.seeds]
    if args.json:
        args.json.write_text(json.dumps({str(seed): scores[seed] for seed in args.seeds}))
    passes = sum(score >= claim.threshold for score in measured)
    print(f"{args.claim}: {claim.statistic} on seeds {args.seeds[0]}..{args.seeds[-1]}")
    print("by seed:", ", ".join(f"{seed}: {scores[seed]:.1f}" for seed in args.seeds))
    print("sorted:", ", ".join(f"{score:.1f}" for score in sorted(measured)))
    print(f">= {claim.threshold}: {passes} of {len(measured)}")
    rule = f"{claim.min_passing} of {len(claim.seeds)}"
    print(f"P(fewer than {rule} pass) = {claim.failure_probability(measured):.2e}")


if __name__ == "__main__":
    main()
