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
import pandas as pd
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


_RANDOM = "random: uniform random actions, mean of 100 episodes (scripts/random_scores.py, gymnasium 1.4)"
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


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) on one env: ``(#{x_i > y_j} + ½ #{x_i = y_j}) / (n_x · n_y)``.

    The Mann–Whitney U over ``n_x · n_y`` that ``rliable.metrics.probability_of_improvement`` takes
    from ``scipy.stats.mannwhitneyu`` (tested equal), counted in one array comparison: scipy's call
    costs about 0.5 ms and the bootstrap makes reps × envs × pairs of them (minutes for a zoo).
    """
    x, y = np.asarray(x, float).reshape(-1, 1), np.asarray(y, float).reshape(1, -1)
    return float(np.mean(x > y) + 0.5 * np.mean(x == y))


def improvement(x: Sequence[np.ndarray], y: Sequence[np.ndarray], reps: int, seed: int) -> Estimate:
    """P(X > Y): the per-env probability that a run of X beats a run of Y, averaged over envs,
    bootstrapped over the runs of X and of Y independently within each env."""
    if len(x) != len(y):
        raise ValueError("probability of improvement needs the same envs for both settings")
    n = len(x)

    def func(*columns: np.ndarray) -> np.ndarray:
        return np.array([np.mean([probability_of_improvement(columns[i], columns[n + i]) for i in range(n)])])

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


# ----------------------------------------------------------------------------- tables of runs
def scores_by_env(finals: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """``{env: {label: final returns of its runs}}`` from ``compare``'s one-record-per-run table."""
    finals = finals.dropna(subset=["final_return"])
    return {
        env: {label: g["final_return"].to_numpy(float) for label, g in rows.groupby("label", sort=True)}
        for env, rows in finals.groupby("env", sort=True)
    }


def aggregate_envs(
    scores: dict[str, dict[str, np.ndarray]], normalization: dict[str, Normalizer]
) -> tuple[list[str], list[str]]:
    """``(envs, notes)``: the envs every setting ran that have a normalization entry, and why others
    are left out of the aggregate (an aggregate compares settings only on the same envs)."""
    labels = sorted({label for by_label in scores.values() for label in by_label})
    envs, notes = [], []
    for env, by_label in scores.items():
        if env not in normalization:
            notes.append(
                f"aggregate skips {env}: no random/reference score (pass --reference "
                f"{env}=RANDOM:REFERENCE, or add it to rlcamp.stats.NORMALIZATION)"
            )
        elif missing := [label for label in labels if label not in by_label]:
            notes.append(f"aggregate skips {env}: not run by {', '.join(missing)}")
        else:
            envs.append(env)
    return envs, notes


def reliability_warnings(scores: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """One line per env × setting with fewer than ``MIN_RELIABLE_RUNS`` runs."""
    return [
        f"warning: {env} / {label} has {len(runs)} run(s): bootstrap CIs from fewer than "
        f"{MIN_RELIABLE_RUNS} runs are unreliable (run more seeds)"
        for env, by_label in scores.items()
        for label, runs in by_label.items()
        if len(runs) < MIN_RELIABLE_RUNS
    ]


def _row(env: str, label: str, runs: int, normalized: bool, estimates: dict[str, Estimate]) -> dict:
    row: dict = {"env": env, "label": label, "n_runs": runs, "normalized": normalized}
    for metric in METRICS:
        estimate = estimates.get(metric, Estimate(np.nan, np.nan, np.nan))
        row.update({metric: estimate.value, f"{metric}_low": estimate.low, f"{metric}_high": estimate.high})
    return row


AGGREGATE = "all envs"


def rliable_table(
    finals: pd.DataFrame, normalization: dict[str, Normalizer], reps: int, seed: int
) -> tuple[pd.DataFrame, list[str]]:
    """``(table, notes)``: per env (episode return) and over envs (normalized score) × setting, the
    four metrics with their 95% CIs. The aggregate row's env is ``AGGREGATE``."""
    scores = scores_by_env(finals)
    rows = []
    for env, by_label in scores.items():
        reference = normalization[env].reference if env in normalization else None
        for label, runs in by_label.items():
            rows.append(_row(env, label, len(runs), False, env_estimates(runs, reps, seed, reference)))
    envs, notes = aggregate_envs(scores, normalization)
    if envs:
        labels = sorted(scores[envs[0]])
        for label in labels:
            per_env = [normalization[env](scores[env][label]) for env in envs]
            n_runs = sum(len(s) for s in per_env)
            rows.append(_row(AGGREGATE, label, n_runs, True, aggregate_estimates(per_env, reps, seed)))
        notes.insert(0, f"{AGGREGATE}: {', '.join(envs)}, normalized (score − random) / (reference − random)")
        if len({len(scores[env][label]) for env in envs for label in labels}) > 1:
            notes.append(
                f"{AGGREGATE}: envs have unequal run counts; IQM and optimality gap pool all runs "
                "(an env with more runs weighs more), median and mean weigh every env the same"
            )
    columns = [
        "env",
        "label",
        "n_runs",
        "normalized",
        *(f"{m}{x}" for m in METRICS for x in ("", "_low", "_high")),
    ]
    return pd.DataFrame(rows, columns=columns), notes


def improvement_table(
    finals: pd.DataFrame, reps: int, seed: int, baseline: str | None = None
) -> pd.DataFrame:
    """P(X > Y) with its 95% CI per env and over the envs both settings ran (``AGGREGATE``; P(X > Y)
    is rank-based per env, so it needs no normalization). Every pair, or each setting against
    ``baseline``; P(Y > X) = 1 − P(X > Y) with the mirrored interval."""
    scores = scores_by_env(finals)
    labels = sorted({label for by_label in scores.values() for label in by_label})
    if baseline is not None and baseline not in labels:
        raise ValueError(f"--baseline {baseline!r} is not a setting here; choose one of: {', '.join(labels)}")
    if baseline is None:
        pairs = [(x, y) for i, x in enumerate(labels) for y in labels[i + 1 :]]
    else:
        pairs = [(x, baseline) for x in labels if x != baseline]
    rows = []
    for x, y in pairs:
        common = [env for env, by_label in scores.items() if x in by_label and y in by_label]
        scopes = [(env, [env]) for env in common] + ([(AGGREGATE, common)] if len(common) > 1 else [])
        for scope, envs in scopes:
            xs, ys = [scores[e][x] for e in envs], [scores[e][y] for e in envs]
            p = improvement(xs, ys, reps, seed)
            n_x, n_y = sum(map(len, xs)), sum(map(len, ys))
            rows.append(
                {
                    "env": scope,
                    "x": x,
                    "y": y,
                    "p": p.value,
                    "low": p.low,
                    "high": p.high,
                    "n_x": n_x,
                    "n_y": n_y,
                }
            )
            if baseline is None:
                rows.append(
                    {
                        "env": scope,
                        "x": y,
                        "y": x,
                        "p": 1 - p.value,
                        "low": 1 - p.high,
                        "high": 1 - p.low,
                        "n_x": n_y,
                        "n_y": n_x,
                    }
                )
    return pd.DataFrame(rows, columns=["env", "x", "y", "p", "low", "high", "n_x", "n_y"])


def _cell(value: float, low: float, high: float, digits: int) -> str:
    return "–" if np.isnan(value) else f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _scopes(table: pd.DataFrame) -> list[str]:
    envs = sorted(set(table["env"]) - {AGGREGATE})
    return envs + ([AGGREGATE] if AGGREGATE in set(table["env"]) else [])


def rliable_markdown(
    table: pd.DataFrame, notes: Sequence[str], reps: int, seed: int, unit: str = "episode return"
) -> str:
    """One Markdown table per env (in ``unit``, the compared metric), then the aggregate, then the
    notes and how the CIs were made."""
    names = {"iqm": "IQM", "median": "median", "mean": "mean", "optimality_gap": "optimality gap"}
    lines = [] if len(table) else ["no run has a final return.", ""]
    for env in _scopes(table):
        rows = table[table["env"] == env]
        normalized = bool(rows["normalized"].iloc[0])
        digits = 3 if normalized else 1
        lines += [
            f"### {env} ({'normalized score' if normalized else unit})",
            "",
            "| setting | runs | " + " | ".join(names.values()) + " |",
        ]
        lines.append("|---|---:|" + "---|" * len(names))
        for _, r in rows.iterrows():
            cells = [_cell(r[m], r[f"{m}_low"], r[f"{m}_high"], digits) for m in METRICS]
            lines.append(f"| {r['label']} | {int(r['n_runs'])} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"- {note}" for note in notes]
    lines.append(
        f"- point estimate [95% CI]: percentile intervals of {reps} stratified bootstrap resamples "
        f"(rliable, seed {seed}). IQM: mean of the middle 50% of runs; optimality gap: how far runs "
        "fall short of the reference score (per env) or of 1 (normalized), lower is better; "
        f"over envs, median and mean are of the per-env mean scores."
    )
    return "\n".join(lines) + "\n"


def improvement_markdown(table: pd.DataFrame, reps: int, seed: int) -> str:
    """One grid per env and for all envs: row X, column Y, cell P(X > Y) [95% CI]."""
    lines = []
    for env in _scopes(table):
        rows = table[table["env"] == env]
        xs, ys = sorted(rows["x"].unique()), sorted(rows["y"].unique())
        cells = {(r["x"], r["y"]): _cell(r["p"], r["low"], r["high"], 2) for _, r in rows.iterrows()}
        lines += [
            f"### {env}",
            "",
            "| P(row > column) | " + " | ".join(ys) + " |",
            "|---|" + "---|" * len(ys),
        ]
        lines += [f"| {x} | " + " | ".join(cells.get((x, y), "–") for y in ys) + " |" for x in xs]
        lines.append("")
    lines.append(
        "P(X > Y): the probability that a run of X scores above a run of Y (ties count one half), "
        f"averaged over envs; 95% CIs of {reps} stratified bootstrap resamples (rliable, seed {seed}). "
        "0.5 is no difference."
    )
    return "\n".join(lines) + "\n"
