"""The checks the config alone decides are written once: ``check_config`` (what ``rlcamp-train``
runs before importing torch) and the classes that own the values refuse the same values with the
same line."""

from __future__ import annotations

import copy
import inspect

import pytest
from omegaconf import OmegaConf

import rlcamp.algos
from rlcamp.algos import OnPolicyAlgorithm
from rlcamp.config_checks import (
    ALGO_CHECKS,
    ENV_TARGETS,
    RECURRENT_ALGOS,
    algo_checks,
    check_config,
    init_parameters,
    source_parameters,
    torch_build,
)
from rlcamp.envs import VecEnvFactory
from rlcamp.errors import VALIDATION_ERRORS
from rlcamp.utils.build import build
from tests.helpers.config import compose_train, config_options

# values a check refuses; a case runs for every algorithm whose config has the key (PPO has
# ent_coef and vf_coef but no check of them: both sides must then pass it)
BAD_VALUES = {
    "algo.gamma": [0, 1.5, "abc"],
    "algo.gae_lambda": [-0.1, 1.2],
    "algo.n_steps": [0, 2.5],
    "algo.update_epochs": [0],
    "algo.n_minibatches": [0, 3],
    "total_env_steps": [0, 1],
    "algo.max_grad_norm": [0],
    "algo.optimizer.lr": [0, -0.001, "fast"],
    "algo.ent_coef": [-0.1],
    "algo.vf_coef": [0],
    "algo.baseline": ["critic"],
    "algo.critic_steps": [-1],
    "algo.weight": ["v"],
    "algo.kl_clip": [0],
    "algo.damping": [-1],
    "algo.decay": [0, 1.0],
    "algo.inverse_every": [0],
    "algo.clip_range": [0, -0.2],
    "algo.clip_range_vf": [0],
    "algo.kl_coef": [-1],
    "algo.kl_target": [0],
    "algo.max_kl": [0],
    "algo.cg_iters": [0],
    "algo.cg_damping": [-1],
    "algo.value_epochs": [0],
    "algo.value_minibatches": [0, 3],
    "algo.line_search_shrink": [0, 1.5],
    "algo.line_search_max_backtracks": [0],
}


def verdict(check, cfg) -> str | None:
    """The one line ``check(cfg)`` refuses ``cfg`` with; None when it passes."""
    try:
        check(cfg)
    except VALIDATION_ERRORS as error:
        return str(error)
    return None


@pytest.mark.parametrize("algo", config_options("algo"))
def test_the_light_checks_and_the_algorithm_give_the_same_verdicts(algo, tmp_path):
    """For every shipped algorithm and every value a check refuses (and the config as shipped), the
    config check and building the module refuse alike, with the same line."""
    base = compose_train([f"algo={algo}", "env.n_envs=2"], tmp_path)
    cases = [(None, None)] + [
        (key, value)
        for key, values in BAD_VALUES.items()
        if OmegaConf.select(base, key, default=None) is not None
        for value in values
    ]
    refused = 0
    for key, value in cases:
        cfg = copy.deepcopy(base)
        if key is not None:
            OmegaConf.update(cfg, key, value)
        light = verdict(check_config, cfg)
        assert light == verdict(build, cfg), (key, value)
        assert key is not None or light is None, "the shipped config passes"
        refused += light is not None
    assert refused >= 10


def test_every_rlcamp_algorithm_has_its_checks_listed():
    """``ALGO_CHECKS`` names every algorithm class rlcamp ships, so a new one cannot skip the light path."""
    classes = {
        name
        for name in rlcamp.algos.__all__
        if inspect.isclass(cls := getattr(rlcamp.algos, name))
        and issubclass(cls, OnPolicyAlgorithm)
        and not inspect.isabstract(cls)
    }
    assert set(ALGO_CHECKS) == classes
    assert algo_checks("rlcamp.algos.ppo.PPOKL") == algo_checks("rlcamp.algos.PPOKL") == ALGO_CHECKS["PPOKL"]
    assert algo_checks("my_algos.PPO") == ()  # another class: its own validate_hparams, once built


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n_envs", 0),
        ("n_envs", 2.5),
        ("vectorization", "parallel"),
        ("nan_policy", "ignore"),
        ("backend", "jax"),
        ("max_episode_steps", 0),
        ("action_mask", "legal"),
        ("action_mask", "obs:"),
    ],
)
def test_the_env_recipe_check_is_the_factorys(key, value, tmp_path):
    cfg = compose_train([f"env.{key}={value}"], tmp_path)
    fields = {k: v for k, v in OmegaConf.to_container(cfg.env).items() if not k.startswith("_")}
    light = verdict(check_config, cfg)
    assert light is not None and light.startswith(f"env.{key}=")
    assert light == verdict(lambda _: VecEnvFactory(**fields), cfg)


def test_an_action_mask_on_envpool_is_refused_before_any_env_is_built(tmp_path):
    cfg = compose_train(["env.backend=envpool", "env.action_mask=info:action_mask"], tmp_path)
    assert verdict(check_config, cfg) == (
        "env.action_mask with env.backend=envpool: EnvPool returns no masks; use env.backend=gymnasium"
    )


@pytest.mark.parametrize("name", sorted(ALGO_CHECKS))
def test_an_algorithms_settings_read_from_its_source_are_its_signatures(name):
    """The light key check reads each algorithm's parameters from its source (no torch); they are
    the parameters of the imported class, through ``**kwargs`` up to the base."""
    cls = getattr(rlcamp.algos, name)
    assert source_parameters(f"rlcamp.algos.{name}") == set(init_parameters(cls))
    assert source_parameters(f"{cls.__module__}.{name}") == set(init_parameters(cls))


SOURCE = """
import collections

from mybases import Base


class Plain:
    def __init__(self, a, b=1, *, c=2):
        pass


class Child(Plain):
    def __init__(self, d=0, **kwargs):
        super().__init__(**kwargs)


class NoInit(Child):
    x = 1


class Outside(collections.OrderedDict):
    def __init__(self, e=0, **kwargs):
        super().__init__(**kwargs)


class Imported(Base):
    def __init__(self, f=0, **kwargs):
        super().__init__(**kwargs)
"""


def test_source_parameters_follow_kwargs_up_the_bases_or_say_they_cannot(tmp_path, monkeypatch):
    """Parameters through ``**kwargs`` up the bases; ``None`` where a base is outside plain source
    (an attribute base, a module that is not there)."""
    (tmp_path / "mysource.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert source_parameters("mysource.Plain") == {"a", "b", "c"}
    assert source_parameters("mysource.Child") == {"a", "b", "c", "d"}
    assert source_parameters("mysource.NoInit") == {"a", "b", "c", "d"}
    assert source_parameters("mysource.Outside") is None
    assert source_parameters("mysource.Imported") is None
    assert source_parameters("mysource.Missing") is None
    assert source_parameters("rlcamp.algos.NoSuchAlgo") is None
    assert source_parameters("my_algos.PPO") is None


def test_an_unknown_algo_key_is_refused_by_the_light_checks_with_the_modules_line(tmp_path):
    cfg = compose_train(["algo=ppo", "+algo.learning_rate=0.1"], tmp_path)
    light = verdict(check_config, cfg)
    assert light is not None and light.startswith("algo.learning_rate is not a setting of PPO; did you mean:")
    from rlcamp.utils.validation import check_algo_keys

    assert light == verdict(check_algo_keys, cfg)


def test_every_env_family_factory_gets_the_recipe_check(tmp_path):
    """``ENV_TARGETS`` holds the ``_target_`` of every env config in ``conf/env``."""
    targets = {str(compose_train([f"env={env}"], tmp_path).env._target_) for env in config_options("env")}
    assert "rlcamp.envs.atari.AtariEnvFactory" in targets
    assert targets <= set(ENV_TARGETS)


def test_the_torch_build_read_from_its_source_is_torchs():
    import torch

    version, gpu = torch_build()
    assert version == torch.__version__
    assert gpu == bool(torch.version.cuda or torch.version.hip)


@pytest.mark.parametrize("algo", config_options("algo"))
def test_a_recurrent_network_is_taken_or_refused_alike_before_and_after_torch(algo, tmp_path):
    """``network.memory=lstm``: A2C, PPO, PPO-KL and REINFORCE take it (REINFORCE with its critic
    passes on whole sequences, ``algo.value_minibatches=1``), every other algorithm refuses it in
    one line, the same before torch and when the module is built (before its env)."""
    whole = ["algo.value_minibatches=1"] if algo == "reinforce" else []
    cfg = compose_train([f"algo={algo}", "network.memory=lstm", *whole], tmp_path)
    light = verdict(check_config, cfg)
    assert light == verdict(build, cfg)
    name = str(cfg.algo._target_).rpartition(".")[2]
    assert (light is None) == (name in RECURRENT_ALGOS), light
    assert getattr(rlcamp.algos, name).takes_memory == (name in RECURRENT_ALGOS)


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["algo.seq_len=8"], "algo.seq_len=8 cuts a recurrent policy's sequences; set network.memory=lstm"),
        (
            ["network.memory=lstm", "algo.seq_len=5"],
            "algo.seq_len=5 must divide algo.n_steps=32; pick a divisor",
        ),
        (
            ["network.memory=gru", "algo.n_minibatches=16"],
            "8 envs x 1 sequences of 32 steps = 8 sequences do not split into algo.n_minibatches=16",
        ),
        (
            ["network.memory=lstm", "+algo.grad_diagnostics=true"],
            "algo.grad_diagnostics=true takes per-sample",
        ),
        (["network.memory=lstmm"], "network.memory='lstmm': choose one of none, lstm, gru"),
        (["network.memory=lstm", "algo.seq_len=8", "algo.n_minibatches=4"], None),
    ],
)
def test_sequence_settings_are_checked_alike(overrides, line, tmp_path):
    """PPO's sequence settings (CartPole's 8 envs x 32 steps): a divisor of ``n_steps`` that fills the
    minibatches, no ``seq_len`` without memory, no per-sample gradients of a recurrent policy."""
    cfg = compose_train(["algo=ppo", *overrides], tmp_path)
    light = verdict(check_config, cfg)
    assert light == verdict(build, cfg)
    assert (light is None) if line is None else light.startswith(line), light
