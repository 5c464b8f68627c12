"""The checks of a run's config that need neither torch nor Lightning, written once.

The classes that own the values run them when they are made (``VecEnvFactory``, each algorithm's
``validate_hparams``), and ``rlcamp-train`` runs them on the composed config before it imports
torch (:func:`check_config`), so a refused value is one line in about a second. Each failure names
the config key and the fix (``ConfigError`` or ``EnvError``). A key a config leaves out keeps its
class's default, which is left to the class.
"""

from __future__ import annotations

import ast
import difflib
import importlib.machinery
import importlib.util
import inspect
import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlcamp.errors import ConfigError, EnvError, require

# numpy's and Lightning's seeding take unsigned 32-bit seeds
MAX_SEED = 2**32 - 1
ENV_BACKENDS = ("gymnasium", "envpool")
ACTION_MASK_SOURCES = ("obs", "info")
# the factories whose recipe check_env_recipe checks (every env._target_ in conf/env)
ENV_TARGETS = (
    "rlcamp.envs.VecEnvFactory",
    "rlcamp.envs.factory.VecEnvFactory",
    "rlcamp.envs.atari.AtariEnvFactory",
)
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


def init_parameters(cls: type) -> dict[str, Any]:
    """``{name: type hint}`` of the keyword parameters ``cls(...)`` takes, through ``**kwargs``
    passed up its base classes (``Any`` where a hint cannot be resolved)."""
    params: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # a hint naming a type only imported for type checking
            hints = {}
        signature = inspect.signature(init)
        for name, param in signature.parameters.items():
            if name != "self" and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                params.setdefault(name, hints.get(name, Any))
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return params


def check_value_type(key: str, value: Any, hint: Any) -> None:
    """A value typed ``int`` / ``float`` (or ``X | None``) in the signature must be one."""
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if is_union else ()
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if len(args) == 2 and optional else hint
    if value is None and optional:
        return
    if base in (int, float):
        require_number(key, value, integer=base is int)


def check_key_known(group: str, key: str, params: Any, class_name: str) -> None:
    """``<group>.<key>`` must be one of ``params`` (a setting of ``class_name``), else one line
    naming the closest settings."""
    if key in params:
        return
    close = ", ".join(difflib.get_close_matches(key, list(params), n=3)) or ", ".join(sorted(params))
    raise ConfigError(f"{group}.{key} is not a setting of {class_name}; did you mean: {close}")


def check_node_keys(node: Mapping[str, Any], cls: type, group: str, skip: tuple[str, ...] = ()) -> None:
    """Every key of config group ``group`` is a parameter of ``cls``, with a value of its type."""
    params = init_parameters(cls)
    for key in node:
        if str(key).startswith("_") or key in skip:
            continue
        check_key_known(group, str(key), params, cls.__name__)
        check_value_type(f"{group}.{key}", node[key], params[key])


def module_source(name: str) -> Path | None:
    """The source file of module ``name``, found without importing it or its packages (``None``
    when it is not a plain ``.py`` file)."""
    parts = name.split(".")
    spec = importlib.util.find_spec(parts[0])
    for depth in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(
            ".".join(parts[: depth + 1]), list(spec.submodule_search_locations)
        )
    origin = spec.origin if spec is not None else None
    return Path(origin) if origin and origin.endswith(".py") else None


def source_class(module: str, name: str) -> tuple[str, ast.ClassDef] | None:
    """``(defining module, class node)`` of ``module.name``, following ``from x import name``
    re-exports (a package's ``__init__``) through the source."""
    path = module_source(module)
    if path is None:
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, node
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if any((alias.asname or alias.name) == name for alias in node.names):
                original = next(a.name for a in node.names if (a.asname or a.name) == name)
                return source_class(node.module, original)
    return None


def source_parameters(target: str) -> frozenset[str] | None:
    """The keyword parameters of class ``target``'s ``__init__``, through ``**kwargs`` up its bases,
    read from the source (what :func:`init_parameters` gives for the imported class). Read by hand
    because importing an algorithm imports torch and Lightning (5-10 s) and the names are plain text;
    ``None`` where the source cannot say (a base defined outside plain source, a class made at run
    time): the check then runs on the imported class."""
    module, _, name = target.rpartition(".")
    found = source_class(module, name) if module else None
    params: set[str] = set()
    while found is not None:
        module, node = found
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if init is not None:
            params |= {a.arg for a in (*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs)}
            if init.args.kwarg is None:
                return frozenset(params - {"self"})
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        if len(bases) != len(node.bases) or len(bases) != 1:
            return None
        found = source_class(module, bases[0])
    return None


def check_algo_key_names(algo: Mapping[str, Any]) -> None:
    """Every ``algo.*`` key is a parameter of the rlcamp algorithm ``algo._target_`` names, read
    from its source (:func:`source_parameters`); ``validate_run`` checks other classes, and the
    values' types, on the imported class."""
    target = str(algo.get("_target_", ""))
    params = source_parameters(target) if target.startswith("rlcamp.algos.") else None
    if params is None:
        return
    for key in algo:
        if not str(key).startswith("_"):
            check_key_known("algo", str(key), params, target.rpartition(".")[2])


def torch_build() -> tuple[str, bool] | None:
    """``(version, has_gpu_support)`` of the installed torch, read from ``torch/version.py`` without
    importing torch (about 2 s); ``None`` when torch is not found there."""
    path = module_source("torch.version")
    if path is None:
        return None
    values = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
            values[target.id] = value.value
    return str(values.get("__version__")), any(values.get(key) for key in ("cuda", "hip"))


def no_cuda_error(accelerator: str, version: str) -> ConfigError:
    """The one line for ``trainer.accelerator=gpu`` where torch sees no CUDA device."""
    return ConfigError(
        f"trainer.accelerator={accelerator} but torch {version} sees no CUDA device; "
        "use trainer=cpu, or install a CUDA build of torch on a GPU machine"
    )


def wants_gpu(cfg: DictConfig) -> str | None:
    """``trainer.accelerator`` when it asks for a CUDA device (``gpu``/``cuda``), else None."""
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="cpu")).lower()
    return accelerator if accelerator in ("gpu", "cuda") else None


def check_accelerator_build(cfg: DictConfig) -> None:
    """``trainer=gpu`` with a torch built without CUDA or ROCm cannot run; a GPU build without a
    device is found once torch is imported (``validate_run``)."""
    accelerator, build = wants_gpu(cfg), torch_build()
    if accelerator and build is not None and not build[1]:
        raise no_cuda_error(accelerator, build[0])


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


def parse_action_mask(value: Any) -> tuple[str, str] | None:
    """``env.action_mask`` as ``(source, key)``: None (no mask), ``obs:<key>`` (a key of a ``Dict``
    observation) or ``info:<key>`` (an entry of the ``info`` that ``reset`` and ``step`` return)."""
    if value is None:
        return None
    source, _, key = value.partition(":") if isinstance(value, str) else ("", "", "")
    if source not in ACTION_MASK_SOURCES or not key:
        raise ConfigError(
            f"env.action_mask={value!r}: use null, obs:<key> (a Dict observation's key) or "
            "info:<key> (an info entry), e.g. env.action_mask=info:action_mask"
        )
    return source, key


def check_env_recipe(env: Mapping[str, Any]) -> None:
    """A ``VecEnvFactory``'s ``env.n_envs``, ``env.vectorization``, ``env.nan_policy``, ``env.backend``,
    ``env.max_episode_steps`` and ``env.action_mask`` (EnvPool's own checks need EnvPool:
    ``VecEnvFactory`` runs them)."""
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
    if parse_action_mask(env.get("action_mask")) is not None and backend == "envpool":
        raise EnvError(
            "env.action_mask with env.backend=envpool: EnvPool returns no masks; use env.backend=gymnasium"
        )


@dataclass(frozen=True)
class AlgoSettings:
    """What an algorithm's checks read: its hyperparameters (``algo.*``), ``env.n_envs`` (None where
    the config does not say) and the optimizer's learning rate (None: the optimizer's default)."""

    hparams: Mapping[str, Any]
    n_envs: int | None
    lr: float | None
    memory: str = "none"  # network.memory

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


def check_memory(algo: AlgoSettings, name: str, takes_memory: bool) -> None:
    """A recurrent network (``network.memory``) only for an algorithm that replays sequences
    (``RECURRENT_ALGOS``), without per-sample gradients, and ``algo.seq_len`` cutting each env's
    rollout into chunks that fill ``algo.n_minibatches`` equally."""
    require(algo.memory in MEMORIES, f"network.memory={algo.memory!r}: choose one of {', '.join(MEMORIES)}")
    seq_len = algo.value("seq_len")
    if algo.memory == "none":
        require(
            seq_len in (ABSENT, None),
            f"algo.seq_len={seq_len} cuts a recurrent policy's sequences; set network.memory=lstm (or gru) "
            "or drop algo.seq_len",
        )
        return
    require(
        takes_memory,
        f"network.memory={algo.memory}: {name} cannot train a recurrent policy; use algo=ppo, ppo_kl, "
        "a2c or reinforce, or network.memory=none",
    )
    require(
        algo.value("grad_diagnostics") is not True,
        "algo.grad_diagnostics=true takes per-sample gradients of feed-forward rows; set "
        "algo.grad_diagnostics=false with network.memory",
    )
    n_steps, minibatches = algo.value("n_steps"), algo.value("n_minibatches")
    if not is_int(n_steps) or n_steps < 1:
        return
    if seq_len not in (ABSENT, None):
        require_number("algo.seq_len", seq_len, integer=True)
        require(
            seq_len >= 1 and n_steps % seq_len == 0,
            f"algo.seq_len={seq_len} must divide algo.n_steps={n_steps}; pick a divisor",
        )
    if algo.n_envs is None or not is_int(minibatches) or minibatches < 1:
        return
    length = seq_len if is_int(seq_len) else n_steps
    sequences = algo.n_envs * (n_steps // length)
    require(
        sequences % minibatches == 0,
        f"{algo.n_envs} envs x {n_steps // length} sequences of {length} steps = {sequences} sequences "
        f"do not split into algo.n_minibatches={minibatches}; pick a divisor or set algo.seq_len",
    )


def check_policy_gradient(algo: AlgoSettings) -> None:
    """``PolicyGradient``'s (A2C, REINFORCE, ACKTR, Q actor-critic): the loss weights."""
    algo.check("ent_coef", lambda v: v >= 0, "must be >= 0")
    algo.check("vf_coef", lambda v: v > 0, "must be > 0")


def check_reinforce(algo: AlgoSettings) -> None:
    """``REINFORCE``'s baseline and critic passes; a recurrent critic is fitted on whole sequences."""
    baseline = algo.value("baseline")
    require(
        baseline is ABSENT or baseline in BASELINES,
        f"algo.baseline={baseline!r}: choose one of {', '.join(BASELINES)}",
    )
    algo.check("value_epochs", lambda v: v >= 0, "must be >= 0", integer=True)
    algo.check("value_minibatches", lambda v: v >= 1, "must be >= 1", integer=True)
    minibatches = algo.value("value_minibatches")
    require(
        algo.memory == "none" or minibatches in (ABSENT, 1),
        f"algo.value_minibatches={minibatches} with network.memory={algo.memory}: a recurrent REINFORCE "
        "fits its critic on whole sequences; set algo.value_minibatches=1",
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
    algo.check("signal_z", math.isfinite, "must be a finite z-score or null", optional=True)
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


# the algorithms that train a recurrent policy (their class's ``takes_memory``), and the cores
RECURRENT_ALGOS = ("A2C", "PPO", "PPOKL", "REINFORCE")
MEMORIES = ("none", "lstm", "gru")


def algo_checks(target: str) -> tuple[AlgoCheck, ...]:
    """The checks of the rlcamp algorithm ``target`` names (``rlcamp.algos.PPO``); none for another
    class, whose own ``validate_hparams`` runs when it is built."""
    module, _, name = target.rpartition(".")
    return ALGO_CHECKS.get(name, ()) if module.split(".")[:2] == ["rlcamp", "algos"] else ()


def check_config(cfg: DictConfig) -> None:
    """Every check above on a composed ``rlcamp-train`` config, in ``validate_run``'s order: the run's
    keys, the trainer's build, the env recipe, the algorithm's keys and hyperparameters."""
    check_run_keys(cfg)
    check_accelerator_build(cfg)
    env = cfg.get("env") or {}
    n_envs = None
    if env.get("_target_") in ENV_TARGETS:
        check_env_recipe(env)
        n_envs = env.get("n_envs")
    algo = cfg.get("algo") or {}
    check_algo_key_names(algo)
    lr = OmegaConf.select(cfg, "algo.optimizer.lr", default=None)
    memory = str(OmegaConf.select(cfg, "network.memory", default="none"))
    target = str(algo.get("_target_", ""))
    settings = AlgoSettings(algo, n_envs, lr, memory)
    for check in algo_checks(target):
        check(settings)
    name = target.rpartition(".")[2]
    if algo_checks(target):
        check_memory(settings, name, name in RECURRENT_ALGOS)
