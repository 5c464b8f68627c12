"""Learning tests as statistical claims: "at least k of these n seeds reach the threshold".

A training run is chaotic in its floating-point rounding, so the same seed follows another
trajectory on another CPU kind; only the distribution over seeds carries over between machines.
Each learning test therefore states a :class:`LearningClaim` whose threshold and ``k`` of ``n``
were chosen from the claim's statistic measured on at least 10 other seeds, and the test's
docstring records that distribution and the failure probability :func:`failure_probability` gives.

A seed passes when its 20-episode mean return reaches the threshold within the run's env-step
budget: the run stops there (Lightning's ``EarlyStopping`` with ``stopping_threshold``), as a
time-to-solve benchmark stops, which spares a passing seed the rest of its budget. Every seed whose
return ends the whole budget at the bar also passes this way (its run is the same step for step up
to the stop), so where a docstring's distribution is of end-of-budget returns its failure
probability is an upper bound ("<="). A negative control, which must stay below a bar, runs its
whole budget (``score(..., stop=False)``; ``--whole-budget`` below).

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

from rlcamp.compare import RETURN as MONITORED


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


RETURN_KEY = "ep_return_mean"
"""The ``summary.json`` key a claim compares with its threshold: the last 20 episodes' mean return,
which a run logs every rollout as ``MONITORED`` (``rlcamp.compare.RETURN``), for ``EarlyStopping``."""


def stop_at(threshold: float) -> tuple[str, ...]:
    """Overrides that end a run once its return exceeds ``threshold`` (Lightning's ``EarlyStopping``).

    Only the threshold stops it: ``patience`` is the budget in env steps (more than the run has
    rollouts), and the return is NaN, not a failure, before the first episode ends."""
    node = "+callbacks.reached"
    return (
        f"{node}._target_=pytorch_lightning.callbacks.EarlyStopping",
        f"{node}.monitor={MONITORED}",
        f"{node}.mode=max",
        f"{node}.stopping_threshold={threshold}",
        f"{node}.patience=${{total_env_steps}}",
        f"{node}.check_finite=false",
        f"{node}.check_on_train_epoch_end=true",
    )


@dataclass(frozen=True)
class LearningClaim:
    """At least ``min_passing`` of ``seeds`` reach ``threshold`` in ``summary["ep_return_mean"]``
    within the env-step budget of ``overrides``; each run stops once it is past the threshold.

    Args:
        overrides: the Hydra overrides of the run (``seed`` is added per seed).
        threshold: the bar one seed's return must reach.
        seeds: the test's seeds, disjoint from the ones the threshold was chosen on.
        min_passing: ``k``; the claim holds when ``k`` of the ``len(seeds)`` seeds pass.
    """

    overrides: tuple[str, ...]
    threshold: float
    seeds: tuple[int, ...]
    min_passing: int

    def run(self, seed: int, output_dir: Path, stop: bool = True) -> dict:
        """One training run with ``seed``, stopped once past the threshold unless ``stop`` is false
        (a negative control, which must stay below the bar, runs its whole budget); its summary."""
        from rlcamp.train import train
        from tests.helpers.config import compose_train

        stops = stop_at(self.threshold) if stop else ()
        overrides = [*self.overrides, f"seed={seed}", "debug=default", *stops]
        summary, _ = train(compose_train(overrides, output_dir))
        return summary

    def score(self, seed: int, output_dir: Path, stop: bool = True) -> float:
        """The return of one run with ``seed``: the first past the threshold, else the budget's last."""
        return float(self.run(seed, output_dir, stop)[RETURN_KEY])

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
            f"{passed} of the seeds reached {RETURN_KEY} >= {self.threshold}, "
            f"{self.min_passing} of {len(self.seeds)} needed; scores by seed: {scores}"
        )

    def failure_probability(self, measured: Sequence[float]) -> float:
        """:func:`failure_probability` of this claim's rule under the ``measured`` distribution."""
        return failure_probability(measured, self.threshold, len(self.seeds), self.min_passing)


def load_claim(reference: str) -> LearningClaim:
    """``"tests.algos.test_a2c:A2C_CARTPOLE"`` → that module's claim."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _run_worker(args: tuple[str, int, str, bool]) -> tuple[int, float, int]:
    import torch

    torch.set_num_threads(1)
    reference, seed, root, stop = args
    summary = load_claim(reference).run(seed, Path(root) / f"seed{seed}", stop)
    return seed, float(summary[RETURN_KEY]), int(summary["env_steps"])


def parse_seeds(text: str) -> list[int]:
    """``"101-120"`` or ``"1,5,9"`` → the seeds."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-"))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def main(argv: Sequence[str] | None = None) -> None:
    """Measure a claim's return on seeds and print its distribution and failure probability."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("claim", help="module:NAME of a LearningClaim")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("101-120"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write {seed: score} to this file")
    parser.add_argument(
        "--whole-budget", action="store_true", help="no stop at the threshold (a negative control's measure)"
    )
    args = parser.parse_args(argv)
    claim = load_claim(args.claim)
    with tempfile.TemporaryDirectory() as root:
        work = [(args.claim, seed, root, not args.whole_budget) for seed in args.seeds]
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            runs = {seed: (score, steps) for seed, score, steps in pool.imap_unordered(_run_worker, work)}
    measured = [runs[seed][0] for seed in args.seeds]
    if args.json:
        args.json.write_text(json.dumps({str(seed): runs[seed][0] for seed in args.seeds}))
    passes = sum(score >= claim.threshold for score in measured)
    steps = [runs[seed][1] for seed in args.seeds]
    where = "the end of the budget" if args.whole_budget else "the stop"
    print(f"{args.claim}: {RETURN_KEY} on seeds {args.seeds[0]}..{args.seeds[-1]} (at {where}, env steps)")
    print("by seed:", ", ".join(f"{seed}: {runs[seed][0]:.1f} ({runs[seed][1]})" for seed in args.seeds))
    print("sorted:", ", ".join(f"{score:.1f}" for score in sorted(measured)))
    print(f">= {claim.threshold}: {passes} of {len(measured)}; env steps run: {sum(steps)} in all")
    rule = f"{claim.min_passing} of {len(claim.seeds)}"
    print(f"P(fewer than {rule} pass) = {claim.failure_probability(measured):.2e}")


if __name__ == "__main__":
    main()
