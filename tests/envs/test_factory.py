"""The vector-env factory: ids, custom envs, seeding and one-line errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlcamp.envs import EnvError, VecEnvFactory
from rlcamp.envs.factory import check_action_space
from rlcamp.envs.normalize import RunningMeanStd


def test_unknown_env_suggests_close_names():
    with pytest.raises(EnvError, match=r"unknown env id 'CartPol-v1'.*CartPole-v1"):
        VecEnvFactory(id="CartPol-v1").spaces()


def test_unsupported_action_space_names_supported_ones():
    with pytest.raises(EnvError, match=r"Tuple; .*Discrete .*Box .*MultiDiscrete .*MultiBinary"):
        VecEnvFactory(id="tests.helpers.envs:TupleActionEnv").spaces()


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (gym.spaces.MultiDiscrete([[2, 3], [4, 5]]), "takes a 1-D nvec with start 0"),
        (gym.spaces.MultiDiscrete([2, 3], start=[1, 0]), "takes a 1-D nvec with start 0"),
    ],
    ids=["2d-nvec", "start"],
)
def test_multidiscrete_the_head_cannot_take_is_refused_in_one_line(space, message):
    with pytest.raises(EnvError, match=message) as err:
        check_action_space("Some-v0", space)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("env_id", "dtype"),
    [("MultiDiscreteTargetEnv", np.int64), ("MultiBinaryTargetEnv", np.int8)],
)
def test_multi_action_spaces_step_a_vector_env(env_id, dtype):
    """MultiDiscrete and MultiBinary envs build and step; MultiBinary envs get int8 actions, as the
    rollout stores them (the env asserts it)."""
    env = VecEnvFactory(id=f"tests.helpers.envs:{env_id}", n_envs=2)(seed=0)
    env.reset(seed=0)
    actions = env.action_space.sample().astype(dtype)
    _, reward, *_ = env.step(actions)
    assert reward.shape == (2,) and ((0 <= reward) & (reward <= 1)).all()


def test_module_class_entry_point():
    obs_space, act_space = VecEnvFactory(id="tests.helpers.envs:CountingEnv").spaces()
    assert obs_space.shape == (1,) and isinstance(act_space, gym.spaces.Discrete)


def test_bad_n_envs():
    with pytest.raises(EnvError, match="n_envs=0"):
        VecEnvFactory(id="CartPole-v1", n_envs=0)


def test_sub_envs_get_distinct_reproducible_seeds():
    factory = VecEnvFactory(id="CartPole-v1", n_envs=3)
    first, _ = factory(seed=5).reset(seed=5)
    again, _ = factory(seed=5).reset(seed=5)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[0], first[1])


def test_box_actions_are_clipped_by_the_env_wrapper():
    env = VecEnvFactory(id="Pendulum-v1", n_envs=1)(seed=0)
    env.reset(seed=0)
    env.step(np.array([[100.0]], dtype=np.float32))
    assert abs(float(env.unwrapped.envs[0].unwrapped.last_u)) <= 2.0


def test_discrete_observations_are_flattened_to_one_hot():
    obs_space, _ = VecEnvFactory(id="FrozenLake-v1").spaces()
    assert isinstance(obs_space, gym.spaces.Box) and obs_space.shape == (16,)


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (1, 7, 50, 3)]
    rms = RunningMeanStd((4,), epsilon=0.0)
    rms.count.fill_(0.0)
    import torch

    for b in batches:
        rms.update(torch.from_numpy(b))
    data = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(0), rtol=1e-10)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-10)


def test_normalizer_state_round_trips_through_state_dict():
    import torch

    from rlcamp.envs.normalize import RunningNormalizer

    source, target = RunningNormalizer((3,)), RunningNormalizer((3,))
    source.update(torch.randn(100, 3) * 4 + 2)
    target.load_state_dict(source.state_dict())
    x = torch.randn(5, 3)
    torch.testing.assert_close(target(x), source(x))
    expected = ((x.double() - source.rms.mean) / torch.sqrt(source.rms.var + 1e-8)).clamp(-10, 10).float()
    torch.testing.assert_close(source(x), expected)


def test_module_colon_registered_id_imports_the_module_and_makes_the_bare_id():
    """gymnasium's ``module:EnvId`` form: a package that only registers on import (as ale_py does)."""
    assert "RegisteredOnImport-v0" not in gym.registry
    factory = VecEnvFactory(id="tests.helpers.registers_env:RegisteredOnImport-v0", n_envs=2)
    observation_space, _ = factory.spaces()
    env = factory(seed=0)
    env.reset(seed=0)
    assert env.unwrapped.envs[0].spec.id == "RegisteredOnImport-v0"
    assert observation_space.shape == (1,)
    env.close()


def test_wrappers_apply_to_every_sub_env_and_to_the_spaces():
    from gymnasium.wrappers import TransformObservation

    def doubled(env: gym.Env) -> gym.Env:
        return TransformObservation(env, lambda obs: obs * 2, env.observation_space)

    factory = VecEnvFactory(id="tests.helpers.envs:CountingEnv", n_envs=2, wrappers=[doubled])
    env = factory(seed=0)
    env.reset(seed=0)
    obs, *_ = env.step(np.zeros(2, dtype=np.int64))
    np.testing.assert_array_equal(obs, [[2.0], [2.0]])
    env.close()
