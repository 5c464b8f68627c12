"""rliable statistics for ``rlcamp-compare``: IQM, median, mean and optimality gap with stratified
bootstrap CIs, performance profiles, probability of improvement, IQM learning curves.

Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (NeurIPS 2021), through their
``rliable`` package. Every interval is a 95% percentile interval of ``reps`` stratified bootstrap
resamples: the runs of each env are resampled with replacement within that env (the stratum).

Unequal seed counts. rliable wants a ``[n_runs, n_envs]`` matrix; when envs have different numbers
of runs the scores go to ``rliable.library.get_interval_estimates`` as a list of per-env
``[n_m, 1]`` columns instead, which rliable resamples independently, each with its own ``n_m``
(``StratifiedIndependentBootstrap``). The statistics are then: IQM and optimality gap over all
runs pooled (an env with more runs weighs more), mean and median over the per-env mean scores
(every env weighs the same) — exactly rliable's ``aggregate_*`` on the matrix when the counts are
equal (tested).

Reproducibility. rliable's stratified bootstrap draws its indices from NumPy's global legacy RNG
(``np.random.choice``), not from a generator it is given, so :func:`seeded` seeds that RNG around
each call and restores its state afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from rliable import library, metrics
from scipy import stats

METRICS = ("iqm", "median", "mean", "optimality_gap")
MIN_RELIABLE_RUNS = 3


@dataclass(frozen=True)
class Normalizer:
    """``normalized = (score − random) / (reference − random)``: 0 is random, 1 the reference."""

    random: float
    reference: float
    source: str

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores, float) - self.random) / (self.reference - self.random)


_RANDOM = "random: uniform random actions, mean of 100 episodes (scripts/random_scores.py, gymnasium 1.2)"
_ZOO = "rl-baselines3-zoo benchmark.md, tuned PPO, one agent, deterministic evaluation"
_BASELINES = "OpenAI Baselines benchmarks_mujoco1M, ppo2 at 1M steps, mean of 6 seeds, MuJoCo v2"
_CAP = "the episode cap, reward 1 a step"
_APPROX = "; rewards of MuJoCo v5 differ slightly from that version, so 1 is approximate"
# The random column was measured on the env versions rlcamp ships; the reference is the episode
# cap where an env has one, otherwise a well-tuned PPO from a published benchmark (sources named).
NORMALIZATION: dict[str, Normalizer] = {
    "CartPole-v1": Normalizer(25.0, 500.0, f"{_RANDOM}; reference: {_CAP} (500 steps)"),
    "Acrobot-v1": Normalizer(-500.0, -73.5, f"{_RANDOM}; reference: {_ZOO}, 1M steps"),
    "Pendulum-v1": Normalizer(-1197.2, -172.2, f"{_RANDOM}; reference: {_ZOO}, 100k steps"),
    "InvertedPendulum-v5": Normalizer(5.6, 1000.0, f"{_RANDOM}; reference: {_CAP} (1000 steps)"),
    "InvertedDoublePendulum-v5": Normalizer(50.1, 7102.91, f"{_RANDOM}; reference: {_BASELINES}{_APPROX}"),
    "Reacher-v5": Normalizer(-42.9, -6.71, f"{_RANDOM}; reference: {_BASELINES}{_APPROX}"),
    "Swimmer-v5": Normalizer(3.2, 111.19, f"{_RANDOM}; reference: {_BASELINES}{_APPROX}"),
    "Hopper-v5": Normalizer(17.0, 2316.16, f"{_RANDOM}; reference: {_BASELINES}{_APPROX}"),
    "Walker2d-v5": Normalizer(1.9, 3424.95, f"{_RANDOM}; reference: {_BASELINES}{_APPROX}"),
    "HalfCheetah-v5": Normalizer(-267.7, 1668.58, f"{_RANDOM}; reference: {_BASELINES}{_APPROX}"),
    "Ant-v5": Normalizer(-47.5, 1327.2, f"{_RANDOM}; reference: {_ZOO}, Ant-v3, 1M steps{_APPROX}"),
}


def parse_reference(text: str) -> tuple[str, Normalizer]:
    """``ENV=RANDOM:REFERENCE`` (the ``--reference`` flag) as ``(env, Normalizer)``."""
    try:
        env, scores = text.split("=", 1)
        random, reference = (float(s) for s in scores.split(":"))
    except ValueError:
        raise ValueError(
            f"--reference {text!r}: write ENV=RANDOM:REFERENCE, e.g. MyEnv-v0=-100:250"
        ) from None
    if random == reference:
        raise ValueError(f"--reference {text!r}: the random and reference scores must differ")
    return env, Normalizer(random, reference, "--reference on the command line")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed NumPy's global legacy RNG (which rliable's bootstrap draws from), then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its 95% stratified bootstrap interval."""

    value: float
    low: float
    high: float


def _interval(
    scores: np.ndarray | list[np.ndarray], func: Callable[..., np.ndarray], reps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(point, ci[2, k])`` of a vector-valued ``func``, by ``rliable.library.get_interval_estimates``."""
    with seeded(seed):
        point, interval = library.get_interval_estimates({"x": scores}, func, reps=reps)
    return np.atleast_1d(point["x"]).astype(float), np.asarray(interval["x"], float).reshape(2, -1)


def _estimates(names: Sequence[str], point: np.ndarray, ci: np.ndarray) -> dict[str, Estimate]:
    return {name: Estimate(float(point[i]), float(ci[0, i]), float(ci[1, i])) for i, name in enumerate(names)}


def env_estimates(
    scores: np.ndarray, reps: int, seed: int, reference: float | None = None
) -> dict[str, Estimate]:
    """IQM, median, mean (and optimality gap below ``reference``) of one env's runs, in return units.

    The median is the median over runs (rliable's ``aggregate_median`` is the median of per-env
    means, which over one env is the mean); the optimality gap is ``reference − mean(min(x, reference))``.
    """
    names = [m for m in METRICS if m != "optimality_gap" or reference is not None]
    matrix = np.asarray(scores, float).reshape(-1, 1)

    def func(x: np.ndarray) -> np.ndarray:
        values = [metrics.aggregate_iqm(x), np.median(x), metrics.aggregate_mean(x)]
        if reference is not None:
            values.append(metrics.aggregate_optimality_gap(x, gamma=reference))
        return np.array(values, float)

    return _estimates(names, *_interval(matrix, func, reps, seed))


def _columns(per_env: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(s, float).reshape(-1, 1) for s in per_env]


def aggregate_point(*columns: np.ndarray) -> np.ndarray:
    """``[IQM, median, mean, optimality gap]`` of per-env ``[n_m, 1]`` normalized score columns."""
    pooled = np.concatenate(columns)
    task_means = np.array([[metrics.aggregate_mean(c) for c in columns]])
    return np.array(
        [
            metrics.aggregate_iqm(pooled),
            metrics.aggregate_median(task_means),
            metrics.aggregate_mean(task_means),
            metrics.aggregate_optimality_gap(pooled, gamma=1),
        ],
        float,
    )


def aggregate_estimates(per_env: Sequence[np.ndarray], reps: int, seed: int) -> dict[str, Estimate]:
    """The four aggregate metrics over envs of normalized scores (one array of runs per env)."""
    return _estimates(METRICS, *_interval(_columns(per_env), aggregate_point, reps, seed))


def improvement(x: Sequence[np.ndarray], y: Sequence[np.ndarray], reps: int, seed: int) -> Estimate:
    """P(X > Y): the per-env probability that a run of X beats a run of Y, averaged over envs.

    ``rliable.metrics.probability_of_improvement`` per env (the Mann–Whitney U statistic over
    ``n_x · n_y``, ties counting one half), bootstrapped over the runs of X and Y independently.
    """
    if len(x) != len(y):
        raise ValueError("probability of improvement needs the same envs for both settings")
    n = len(x)

    def func(*columns: np.ndarray) -> np.ndarray:
        return np.array(
            [np.mean([metrics.probability_of_improvement(columns[i], columns[n + i]) for i in range(n)])]
        )

    point, ci = _interval(_columns(x) + _columns(y), func, reps, seed)
    return Estimate(float(point[0]), float(ci[0, 0]), float(ci[1, 0]))


def fraction_above(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of runs with score > τ, for every τ: ``rliable.library.score_distributions`` in one
    array operation (rliable's loops over τ in Python through ``np.vectorize``; tested equal)."""
    return (np.asarray(scores, float).reshape(-1, 1) > np.asarray(taus, float)).mean(0)


def performance_profile(
    per_env: Sequence[np.ndarray], taus: np.ndarray, reps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(profile, ci[2, len(taus)])``: the fraction of all runs (pooled over envs) scoring above τ."""
    return _interval(_columns(per_env), lambda *c: fraction_above(np.concatenate(c), taus), reps, seed)


def iqm_curve(curves: np.ndarray, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(iqm[P], ci[2, P])`` at each of P points of ``curves[n_runs, P]`` (runs resampled per point).

    ``scipy.stats.trim_mean(·, 0.25, axis=0)`` is ``rliable.metrics.aggregate_iqm`` taken per point
    (aggregate_iqm flattens every axis) — the IQM curves of rliable's Atari 100k example.
    """
    matrix = np.asarray(curves, float)[:, None, :]
    return _interval(matrix, lambda x: stats.trim_mean(x[:, 0, :], 0.25, axis=0), reps, seed)
