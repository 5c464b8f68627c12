"""The checks of a run's config that need neither torch nor Lightning, written once.

The classes that own the values run them when they are made (``VecEnvFactory``, each algorithm's
``validate_hparams``), and ``rlcamp-train`` runs them on the composed config before it imports
torch (:func:`check_config`), so a refused value is one line in about a second. Each failure names
the config key and the fix (``ConfigError`` or ``EnvError``). A key a config leaves out keeps its
class's default, which is left to the class.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlcamp.errors import ConfigError, EnvError, require

# numpy's and Lightning's seeding take unsigned 32-bit seeds
MAX_SEED = 2**32 - 1
ENV_BACKENDS = ("gymnasium", "envpool")
ENV_TARGETS = ("rlcamp.envs.VecEnvFactory", "rlcamp.envs.factory.VecEnvFactory")
BASELINES = ("none", "mean", "value")  # REINFORCE's b(s)
WEIGHTS = ("q", "advantage")  # QActorCritic's Ψ
ABSENT = object()  # a key the config leaves out


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_number(key: str, value: Any, integer: bool = False) -> None:
    """``key=value`` must be a number (an integer with ``integer``), else one line saying so."""
    if integer and not is_int(value):
        raise ConfigError(f"{key}={value!r} must be an integer")
    if not is_number(value):
        raise ConfigError(f"{key}={value!r} must be a number")


def check_run_keys(cfg: DictConfig) -> None:
    """``seed`` an integer in [0, ``MAX_SEED``], ``num_threads`` an integer >= 0 (0: torch's default)."""
    seed = cfg.get("seed")
    if not is_int(seed):
        raise ConfigError(f"seed={seed!r} must be an integer, e.g. seed=1")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed={seed} must be in [0, {MAX_SEED}] (an unsigned 32-bit seed), e.g. seed=1")
    threads = cfg.get("num_threads")
    if threads is not None and not (is_int(threads) and threads >= 0):
        raise ConfigError(f"num_threads={threads!r} must be an integer >= 0 (0 keeps torch's default)")


def check_env_recipe(env: Mapping[str, Any]) -> None:
    """A ``VecEnvFactory``'s ``env.n_envs``, ``env.vectorization``, ``env.nan_policy``, ``env.backend``
    and ``env.max_episode_steps`` (EnvPool's own checks need EnvPool: ``VecEnvFactory`` runs them)."""
    n_envs = env.get("n_envs", ABSENT)
    if n_envs is not ABSENT:
        require_number("env.n_envs", n_envs, integer=True)
        if n_envs < 1:
            raise EnvError(f"env.n_envs={n_envs}: need at least 1 environment")
    vectorization = env.get("vectorization", "sync")
    if vectorization not in ("sync", "async"):
        raise EnvError(f"env.vectorization={vectorization!r}: use 'sync' or 'async'")
    nan_policy = env.get("nan_policy", "raise")
    if nan_policy not in ("raise", "terminate"):
        raise EnvError(f"env.nan_policy={nan_policy!r}: use 'raise' or 'terminate'")
    backend = env.get("backend", "gymnasium")
    if backend not in ENV_BACKENDS:
        raise EnvError(f"env.backend={backend!r}: use 'gymnasium' or 'envpool'")
    steps = env.get("max_episode_steps")
    if steps is not None:
        require_number("env.max_episode_steps", steps, integer=True)
        if steps < 1:
            raise ConfigError(f"env.max_episode_steps={steps} must be >= 1 or null (no time limit)")


@dataclass(frozen=True)
class AlgoSettings:
    """What an algorithm's checks read: its hyperparameters (``algo.*``), ``env.n_envs`` (None where
    the config does not say) and the optimizer's learning rate (None: the optimizer's default)."""

    hparams: Mapping[str, Any]
    n_envs: int | None
    lr: float | None

    def value(self, key: str) -> Any:
        return self.hparams.get(key, ABSENT)

    def check(
        self, key: str, ok: Callable[[Any], bool], rule: str, integer: bool = False, optional: bool = False
    ) -> None:
        """``algo.<key>`` must be a number (an integer with ``integer``, or null with ``optional``) for
        which ``ok`` holds, else one line: ``algo.<key>=<value> <rule>``."""
        value = self.value(key)
        if value is ABSENT or (optional and value is None):
            return
        require_number(f"algo.{key}", value, integer)
        require(ok(value), f"algo.{key}={value} {rule}")

    @property
    def rollout_size(self) -> int | None:
        """``n_steps × n_envs`` transitions; None where either is unknown or not a positive integer."""
        n_steps = self.value("n_steps")
        if self.n_envs is None or not is_int(n_steps) or n_steps < 1:
            return None
        return n_steps * self.n_envs


AlgoCheck = Callable[[AlgoSettings], None]


def check_on_policy(algo: AlgoSettings) -> None:
    """``OnPolicyAlgorithm``'s: discount, GAE's λ, rollout and update sizes, budget, clip, learning rate."""
    algo.check("gamma", lambda v: 0.0 < v <= 1.0, "must be in (0, 1]")
    algo.check("gae_lambda", lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]")
    for key in ("n_steps", "update_epochs", "n_minibatches"):
        algo.check(key, lambda v: v >= 1, "must be >= 1", integer=True)
    size, minibatches = algo.rollout_size, algo.value("n_minibatches")
    if size is not None and minibatches is not ABSENT:
        require(
            size % minibatches == 0,
            f"rollout of {algo.value('n_steps')} steps x {algo.n_envs} envs = {size} transitions does not "
            f"split into algo.n_minibatches={minibatches}; pick a divisor",
        )
    budget = algo.value("total_env_steps")
    if budget is not ABSENT:
        require_number("algo.total_env_steps", budget, integer=True)
    if size is not None and budget is not ABSENT:
        require(budget >= size, f"total_env_steps={budget} is smaller than one rollout ({size}); raise it")
    algo.check("max_grad_norm", lambda v: v > 0, "must be > 0 or null", optional=True)
    if algo.lr is not None:
        require_number("algo.optimizer.lr", algo.lr)
        require(algo.lr > 0, f"algo.optimizer.lr={algo.lr} must be > 0")


def check_policy_gradient(algo: AlgoSettings) -> None:
    """``PolicyGradient``'s (A2C, REINFORCE, ACKTR, Q actor-critic): the loss weights."""
    algo.check("ent_coef", lambda v: v >= 0, "must be >= 0")
    algo.check("vf_coef", lambda v: v > 0, "must be > 0")


def check_reinforce(algo: AlgoSettings) -> None:
    """``REINFORCE``'s baseline."""
    baseline = algo.value("baseline")
    require(
        baseline is ABSENT or baseline in BASELINES,
        f"algo.baseline={baseline!r}: choose one of {', '.join(BASELINES)}",
    )


def check_actor_critic(algo: AlgoSettings) -> None:
    """``QActorCritic``'s critic steps and weight ``Ψ``."""
    algo.check("critic_steps", lambda v: v >= 0, "must be >= 0", integer=True)
    weight = algo.value("weight")
    require(
        weight is ABSENT or weight in WEIGHTS,
        f"algo.weight={weight!r} is not a weight: use {' or '.join(WEIGHTS)}",
    )


def check_acktr(algo: AlgoSettings) -> None:
    """``ACKTR``'s K-FAC settings."""
    algo.check("kl_clip", lambda v: v > 0, "must be > 0")
    algo.check("damping", lambda v: v > 0, "must be > 0")
    algo.check("decay", lambda v: 0.0 < v < 1.0, "must be in (0, 1)")
    algo.check("inverse_every", lambda v: v >= 1, "must be >= 1", integer=True)


def check_ppo(algo: AlgoSettings) -> None:
    """``PPO``'s clip ranges."""
    algo.check("clip_range", lambda v: v > 0, "must be > 0")
    algo.check("clip_range_vf", lambda v: v > 0, "must be > 0 or null", optional=True)


def check_ppo_kl(algo: AlgoSettings) -> None:
    """``PPOKL``'s penalty coefficient and KL target."""
    algo.check("kl_coef", lambda v: v >= 0, "must be >= 0")
    algo.check("kl_target", lambda v: v > 0, "must be > 0")


def check_npg(algo: AlgoSettings) -> None:
    """``NPG``'s step size, conjugate gradient and value fit."""
    algo.check("max_kl", lambda v: v > 0, "must be > 0")
    algo.check("cg_iters", lambda v: v >= 1, "must be >= 1", integer=True)
    algo.check("cg_damping", lambda v: v >= 0, "must be >= 0")
    algo.check("value_epochs", lambda v: v >= 1, "must be >= 1", integer=True)
    size, minibatches = algo.rollout_size, algo.value("value_minibatches")
    if size is not None and minibatches is not ABSENT:
        require_number("algo.value_minibatches", minibatches, integer=True)
        require(
            minibatches >= 1 and size % minibatches == 0,
            f"rollout of {size} transitions does not split into algo.value_minibatches={minibatches}; "
            "pick a divisor",
        )


def check_trpo(algo: AlgoSettings) -> None:
    """``TRPO``'s line search."""
    algo.check("line_search_shrink", lambda v: 0.0 < v < 1.0, "must be in (0, 1)")
    algo.check("line_search_max_backtracks", lambda v: v >= 1, "must be >= 1", integer=True)


ON_POLICY: tuple[AlgoCheck, ...] = (check_on_policy,)
POLICY_GRADIENT = (*ON_POLICY, check_policy_gradient)
NATURAL = (*ON_POLICY, check_npg)
# the checks of each rlcamp algorithm, base class first: its validate_hparams runs the same
# (tests/utils/test_config_checks.py compares the verdicts)
ALGO_CHECKS: dict[str, tuple[AlgoCheck, ...]] = {
    "PolicyGradient": POLICY_GRADIENT,
    "A2C": POLICY_GRADIENT,
    "ACKTR": (*POLICY_GRADIENT, check_acktr),
    "REINFORCE": (*POLICY_GRADIENT, check_reinforce),
    "QActorCritic": (*POLICY_GRADIENT, check_actor_critic),
    "PPO": (*ON_POLICY, check_ppo),
    "PPOKL": (*ON_POLICY, check_ppo, check_ppo_kl),
    "NPG": NATURAL,
    "TRPO": (*NATURAL, check_trpo),
}


def algo_checks(target: str) -> tuple[AlgoCheck, ...]:
    """The checks of the rlcamp algorithm ``target`` names (``rlcamp.algos.PPO``); none for another
    class, whose own ``validate_hparams`` runs when it is built."""
    module, _, name = target.rpartition(".")
    return ALGO_CHECKS.get(name, ()) if module.split(".")[:2] == ["rlcamp", "algos"] else ()


def check_config(cfg: DictConfig) -> None:
    """Every check above on a composed ``rlcamp-train`` config, in ``validate_run``'s order: the run's
    keys, the env recipe, the algorithm's hyperparameters."""
    check_run_keys(cfg)
    env = cfg.get("env") or {}
    n_envs = None
    if env.get("_target_") in ENV_TARGETS:
        check_env_recipe(env)
        n_envs = env.get("n_envs")
    algo = cfg.get("algo") or {}
    settings = AlgoSettings(algo, n_envs, OmegaConf.select(cfg, "algo.optimizer.lr", default=None))
    for check in algo_checks(str(algo.get("_target_", ""))):
        check(settings)
