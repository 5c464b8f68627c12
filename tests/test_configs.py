"""Every algo × env in conf/ composes to its family's settings and builds the module it describes.

What is checked is read from conf/ (its algos, envs, families and tuning files), so an algorithm or
env added as docs/extending.md says is checked like the shipped ones; only the papers' settings of
the shipped algorithms are written out by hand."""

from __future__ import annotations

import copy
import functools
import importlib.util
from pathlib import Path

import gymnasium as gym
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from rlcamp.envs.factory import resolve_entry_point
from rlcamp.errors import ConfigError
from rlcamp.train import CONF_DIR, build
from tests.helpers.config import config_options, without_progress_bar

MUJOCO_ENVS = {
    "halfcheetah",
    "hopper",
    "walker2d",
    "swimmer",
    "reacher",
    "inverted_pendulum",
    "inverted_double_pendulum",
    "ant",
}
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
ALGOS, ENVS = config_options("algo"), config_options("env")
# What each shipped algorithm must get on a family's envs without a per-env tuning, written out by
# hand from the papers' protocols (conf/algo_family/ must agree with this table, not the reverse).
PPO_MUJOCO = {"n_envs": 1, "n_steps": 2048, "update_epochs": 10, "n_minibatches": 32, "lr": 3e-4}
NATURAL_MUJOCO = {"n_envs": 1, "n_steps": 2048, "value_epochs": 10, "value_minibatches": 32, "lr": 1e-3}
PPO_MINATAR = {"n_envs": 8, "n_steps": 128, "update_epochs": 4, "n_minibatches": 4, "lr": 2.5e-4}
# the image families' settings (conf/algo_family/<algo>_minatar.yaml and _atari.yaml: the peers' Atari ones)
IMAGE_FAMILY = {
    "ppo": PPO_MINATAR | {"clip_range": 0.1, "ent_coef": 0.01},
    "ppo_kl": PPO_MINATAR,
    "npg": {"n_envs": 8, "n_steps": 512, "value_epochs": 10, "value_minibatches": 16, "lr": 1e-3},
    "trpo": {"n_envs": 8, "n_steps": 512, "value_epochs": 10, "value_minibatches": 16, "lr": 1e-3},
    "a2c": {"n_envs": 16, "n_steps": 5, "gae_lambda": 1.0, "ent_coef": 0.01, "vf_coef": 0.25, "lr": 7e-4},
    "acktr": {"n_envs": 16, "n_steps": 20, "ent_coef": 0.01, "lr": 0.25, "kl_clip": 0.0005},
    "reinforce": {"n_envs": 8, "n_steps": 500, "lr": 1e-3},
    "actor_critic": {"n_envs": 8, "n_steps": 32, "critic_steps": 20, "lr": 1e-3},
}
CLASSIC = {
    "ppo": {"n_envs": 4, "n_steps": 128, "update_epochs": 4, "n_minibatches": 4, "lr": 2.5e-4},
    "ppo_kl": {"n_envs": 4, "n_steps": 128, "update_epochs": 4, "n_minibatches": 4, "lr": 2.5e-4},
    "npg": {"n_envs": 4, "n_steps": 512, "value_epochs": 10, "value_minibatches": 16, "lr": 1e-3},
    "trpo": {"n_envs": 4, "n_steps": 512, "value_epochs": 10, "value_minibatches": 16, "lr": 1e-3},
    "a2c": {"n_envs": 4, "n_steps": 5, "gae_lambda": 1.0, "lr": 7e-4},
    "acktr": {"n_envs": 4, "n_steps": 5, "gae_lambda": 1.0, "lr": 0.25, "kl_clip": 0.0005},
    "reinforce": {"n_envs": 4, "n_steps": 500, "lr": 1e-3},
    "actor_critic": {"n_envs": 4, "n_steps": 32, "critic_steps": 20, "lr": 1e-3},
}
FAMILY_SETTINGS = {
    "classic": CLASSIC,
    "mujoco": {
        "ppo": PPO_MUJOCO,
        "ppo_kl": PPO_MUJOCO,
        "npg": NATURAL_MUJOCO,
        "trpo": NATURAL_MUJOCO,
        "a2c": {"n_envs": 8, "n_steps": 8, "gae_lambda": 0.95, "lr": 7e-4},
        "acktr": {"n_envs": 8, "n_steps": 8, "gae_lambda": 0.95, "lr": 0.25, "kl_clip": 0.0005},
        "reinforce": {"n_envs": 1, "n_steps": 2048, "lr": 1e-3},
        "actor_critic": {"n_envs": 1, "n_steps": 32, "critic_steps": 20, "lr": 1e-3},
    },
    "minatar": IMAGE_FAMILY,
    "atari": IMAGE_FAMILY
    | {"ppo": PPO_MINATAR | {"clip_range": 0.1, "clip_range_vf": 0.1, "ent_coef": 0.01}},
    # MiniGrid: PPO and A2C at the MiniGrid authors' rl-starter-files settings, the others their own
    # defaults on 8 envs
    "minigrid": {algo: values | {"n_envs": 8} for algo, values in CLASSIC.items()}
    | {
        "ppo": {"n_envs": 16, "n_steps": 128, "update_epochs": 4, "n_minibatches": 8, "lr": 1e-3}
        | {"normalize_advantage": False, "anneal_lr": False, "clip_range_vf": None, "ent_coef": 0.01},
        "a2c": {"n_envs": 16, "n_steps": 5, "gae_lambda": 0.95, "ent_coef": 0.01, "vf_coef": 0.5, "lr": 1e-3},
    },
}
# what a family's images and Dicts refuse, in one line (the Q critic is an MLP on flat observations)
REFUSED = {("actor_critic", "minatar"), ("actor_critic", "atari"), ("actor_critic", "minigrid")}
IMAGE_NETWORKS = {"nature_cnn", "minatar_cnn", "impala_cnn"}
# the env each network is built on in test_network_choice_builds_that_network (else Pendulum)
NETWORK_ENVS = {network: "env.id=tests.helpers.envs:LitCellEnv" for network in IMAGE_NETWORKS} | {
    "minigrid_cnn": "env=minigrid_empty"
}


# the checks of one combination share its composition: pytest_collection_modifyitems (conftest.py)
# runs a module's tests with equal values of these parameters one after another, on one worker
SHARED_PARAMS = ("algo", "env")


def family_of(env: str) -> str:
    """The family ``env``'s config chooses."""
    return compose_choices(f"env={env}")[1].family


@functools.cache
def composed(*overrides: str):
    """``conf/train.yaml`` + ``overrides`` with Hydra's node, composed once per process (a compose
    takes ~0.3 s; every algo × env is read by several checks). Read-only, so no check can change
    what another one reads."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def compose_choices(*overrides: str):
    """The composed config and Hydra's group choices (``family``, ``algo_family``, ``algo_env``)."""
    cfg = composed(*overrides)
    return cfg, cfg.hydra.runtime.choices


def train_config(*overrides: str, output_dir) -> DictConfig:
    """What ``make_cfg(*overrides)`` (``tests.helpers.config.compose_train``) returns, from the shared
    composition: a writable copy without Hydra's node, writing to ``output_dir``, no progress bar
    (test_the_shared_composition_is_what_make_cfg_composes checks the two agree)."""
    cfg = copy.deepcopy(composed(*overrides))
    OmegaConf.set_readonly(cfg, None)
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.paths.output_dir = str(output_dir)
    return without_progress_bar(cfg)


def settings(cfg) -> dict[str, float]:
    values = {"n_envs": cfg.env.n_envs, "lr": cfg.algo.optimizer.lr}
    return values | {k: v for k, v in cfg.algo.items() if not OmegaConf.is_config(v)}


@functools.cache
def family_reference(algo: str, family: str) -> dict[str, float]:
    """The settings ``algo`` composes to on the first env of ``family`` (by name) without a per-env
    tuning: what every other env of the family must get too."""
    env = next(e for e in ENVS if family_of(e) == family)
    return settings(compose_choices(f"algo={algo}", f"env={env}", "~algo_env")[0])


def test_config_groups_exist():
    assert {"cartpole", "acrobot", "pendulum"} | MUJOCO_ENVS <= set(ENVS)
    assert {"mlp", "mlp_shared"} <= set(config_options("network"))
    assert {"csv", "tensorboard", "wandb"} <= set(config_options("logger"))
    assert {"cpu", "gpu"} <= set(config_options("trainer"))
    assert all(set(settings) <= set(ALGOS) for settings in FAMILY_SETTINGS.values())
    assert set(FAMILY_SETTINGS) == set(config_options("family"))


@pytest.mark.parametrize("env", ENVS)
def test_the_env_declares_the_family_of_its_gymnasium_entry_point(env):
    """A MuJoCo env whose config forgets ``_mujoco`` would silently get classic-control settings."""
    cfg, choices = compose_choices(f"env={env}")
    entry_point = str(gym.spec(resolve_entry_point(cfg.env.id)).entry_point)
    family = {
        "gymnasium.envs.mujoco": "mujoco",
        "minatar": "minatar",
        "ale_py": "atari",
        "minigrid": "minigrid",
    }
    assert choices.family == next(
        (f for prefix, f in family.items() if entry_point.startswith(prefix)), "classic"
    )
    if choices.family == "mujoco":
        assert cfg.env.normalize_obs and cfg.env.normalize_reward


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("algo", ALGOS)
def test_every_algo_env_gets_its_family_settings(algo, env):
    cfg, choices = compose_choices(f"algo={algo}", f"env={env}")
    tuned = (Path(CONF_DIR) / "algo_env" / f"{algo}_{env}.yaml").is_file()
    assert choices.algo_family == f"{algo}_{choices.family}"
    if tuned:  # a measured per-env tuning (the tests of each algorithm check its values)
        return
    assert settings(cfg) == family_reference(algo, choices.family)


@pytest.mark.parametrize("family", sorted(FAMILY_SETTINGS))
@pytest.mark.parametrize("algo", sorted(FAMILY_SETTINGS["classic"]))
def test_the_shipped_family_settings_are_the_papers(algo, family):
    expected = FAMILY_SETTINGS[family][algo]
    assert {key: family_reference(algo, family)[key] for key in expected} == expected


@pytest.mark.parametrize("logger", [name for name in config_options("logger") if name != "none"])
def test_every_logger_choice_writes_metrics_csv(make_cfg, logger):
    """The run folder always holds metrics.csv (resume and rlcamp-compare read it), whatever else logs."""
    assert make_cfg(f"logger={logger}").logger.csv._target_ == "pytorch_lightning.loggers.CSVLogger"


def test_every_algo_family_and_algo_env_file_is_used():
    """A misspelled file (``ppo_hoper.yaml``) would never be chosen."""
    families = config_options("family")
    for path in (Path(CONF_DIR) / "algo_family").glob("*.yaml"):
        assert any(path.stem == f"{a}_{f}" for a in ALGOS for f in families), path.name
    for path in (Path(CONF_DIR) / "algo_env").glob("*.yaml"):
        assert any(path.stem == f"{a}_{e}" for a in ALGOS for e in ENVS), path.name


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("algo", ALGOS)
def test_combination_builds_the_module_it_composes(tmp_path, algo, env):
    if env in MUJOCO_ENVS and not HAS_MUJOCO:
        pytest.skip("the mujoco extra is not installed: pip install -e '.[mujoco]'")
    cfg = train_config(f"algo={algo}", f"env={env}", output_dir=tmp_path)
    if (algo, family_of(env)) in REFUSED:
        with pytest.raises(ConfigError):
            build(cfg)
        return
    module = build(cfg)
    assert type(module).__name__ == cfg.algo._target_.rsplit(".", 1)[-1]
    assert module.env_factory.id == cfg.env.id and module.env_factory.n_envs == cfg.env.n_envs
    assert module.hparams.n_steps == cfg.algo.n_steps and module.hparams.gamma == cfg.algo.gamma
    assert module.optimizer_factory.keywords["lr"] == cfg.algo.optimizer.lr
    assert module.num_rollouts == -(-cfg.total_env_steps // (cfg.algo.n_steps * cfg.env.n_envs))


def test_the_shared_composition_is_what_make_cfg_composes(make_cfg, tmp_path):
    """The algo × env checks read one shared composition per combination; it is the config
    ``make_cfg`` (and so ``rlcamp-train``) composes, flags included."""

    def flags(node, path="cfg"):
        yield path, node._get_node_flag("struct"), node._get_node_flag("readonly")
        for key in node.keys() if OmegaConf.is_dict(node) else ():
            if OmegaConf.is_config(child := node._get_node(key)):
                yield from flags(child, f"{path}.{key}")

    for overrides in (
        ("algo=ppo", "env=hopper"),
        ("algo=acktr", "env=breakout"),
        ("algo=trpo", "env=minigrid_empty"),
    ):
        shared, fresh = train_config(*overrides, output_dir=tmp_path), make_cfg(*overrides)
        assert OmegaConf.to_yaml(shared) == OmegaConf.to_yaml(fresh)
        assert OmegaConf.to_container(shared, resolve=True) == OmegaConf.to_container(fresh, resolve=True)
        assert list(flags(shared)) == list(flags(fresh))
    with pytest.raises(Exception, match="read-only"):
        composed("algo=ppo", "env=hopper").seed = 1


@pytest.mark.parametrize("network", config_options("network"))
def test_network_choice_builds_that_network(make_cfg, network):
    cfg = make_cfg(NETWORK_ENVS.get(network, "env=pendulum"), f"network={network}")
    policy = build(cfg).policy
    assert policy.shared == cfg.network.shared and policy.activation == cfg.network.activation
    assert [m.out_features for m in policy.actor_body if hasattr(m, "out_features")] == list(
        cfg.network.hidden_sizes
    )


def test_cartpole_default_is_the_tuned_setting(make_cfg):
    cfg = make_cfg()
    assert cfg.algo.n_steps == 32 and cfg.env.n_envs == 8 and cfg.algo.update_epochs == 10
    assert cfg.network.activation == "relu" and cfg.algo.optimizer.lr == 2e-3


def test_mujoco_family_defaults(make_cfg):
    cfg = make_cfg("env=hopper")
    assert cfg.env.n_envs == 1 and cfg.env.normalize_obs and cfg.env.normalize_reward
    assert (cfg.algo.n_steps, cfg.algo.update_epochs, cfg.algo.n_minibatches) == (2048, 10, 32)
    assert cfg.algo.optimizer.lr == 3e-4


def test_classic_control_defaults_without_tuning(make_cfg):
    cfg = make_cfg("env=acrobot", "~algo_env")
    assert (cfg.env.n_envs, cfg.algo.n_steps, cfg.algo.update_epochs, cfg.algo.n_minibatches) == (
        4,
        128,
        4,
        4,
    )
    assert cfg.algo.optimizer.lr == 2.5e-4


RL_ZOO_ACROBOT_PPO = {"n_envs": 16, "n_steps": 256, "gae_lambda": 0.94, "ent_coef": 0.0, "n_minibatches": 64}
# the measured per-env tunings of docs/zoo.md, as they compose (the family's values elsewhere)
ENV_TUNINGS = {
    ("ppo", "acrobot"): RL_ZOO_ACROBOT_PPO | {"update_epochs": 4, "lr": 3e-4, "anneal_lr": False},
    ("ppo_kl", "acrobot"): RL_ZOO_ACROBOT_PPO | {"update_epochs": 4, "lr": 3e-4, "kl_target": 0.01},
    ("reinforce", "acrobot"): {"n_envs": 4, "n_steps": 1000, "lr": 1e-2, "baseline": "value"},
    ("actor_critic", "acrobot"): {"n_envs": 4, "n_steps": 32, "normalize_advantage": True, "weight": "q"},
    ("reinforce", "inverted_pendulum"): {"n_envs": 1, "n_steps": 2048, "lr": 1e-2},
    ("actor_critic", "inverted_pendulum"): {"n_envs": 4, "n_steps": 32, "normalize_advantage": True},
    ("acktr", "acrobot"): {"n_envs": 8, "n_steps": 5, "kl_clip": 0.01, "ent_coef": 0.02, "lr": 0.25},
}


@pytest.mark.parametrize(("algo", "env"), list(ENV_TUNINGS), ids=lambda x: x)
def test_measured_env_tunings_compose(algo, env):
    cfg, choices = compose_choices(f"algo={algo}", f"env={env}")
    assert choices.algo_env == f"{algo}_{env}"
    expected = ENV_TUNINGS[algo, env]
    assert {key: settings(cfg)[key] for key in expected} == expected
    if env == "acrobot" and algo.startswith("ppo"):
        assert cfg.env.normalize_obs and cfg.env.normalize_reward


def test_debug_group_turns_off_loggers_and_callbacks(make_cfg):
    cfg = make_cfg("debug=default")
    assert not cfg.logger and not cfg.callbacks and cfg.trainer.accelerator == "cpu"
