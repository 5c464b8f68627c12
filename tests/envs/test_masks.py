"""An info mask moved into the observation (``env.action_mask=info:<key>``)."""

from __future__ import annotations

import pytest

from rlcamp.envs import EnvError, VecEnvFactory
from rlcamp.envs.masks import InfoActionMask
from tests.helpers.envs import CountingEnv, MaskStepEnv


def test_an_info_mask_becomes_a_key_beside_the_observation():
    env = VecEnvFactory(id="tests.helpers.envs:MaskStepEnv", action_mask="info:action_mask").env_fn()()
    assert set(env.observation_space.spaces) == {"obs", "action_mask"}
    obs, _ = env.reset(seed=0)
    assert obs["action_mask"].tolist() == [1, 0, 0, 0] and obs["obs"].tolist() == [0.0]
    obs, *_ = env.step(0)
    assert obs["action_mask"].tolist() == [0, 1, 0, 0] and env.observation_space.contains(obs)


def test_a_dict_observation_keeps_its_keys_and_gains_the_mask():
    env = InfoActionMask(MaskStepEnv(dict_obs=True), "legal")
    assert set(env.observation_space.spaces) == {"count", "action_mask", "legal"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (CountingEnv(), r"the env's info has no 'action_mask' entry \(it has \[\]\); name the info key"),
        (MaskStepEnv(dict_obs=True), "already has a key 'action_mask'; use env.action_mask=obs:action_mask"),
    ],
)
def test_a_mask_the_env_does_not_report_is_refused_in_one_line(env, message):
    with pytest.raises(EnvError, match=message):
        InfoActionMask(env, "action_mask").reset(seed=0)


def test_the_factory_names_the_key_the_network_reads():
    assert VecEnvFactory(id="CartPole-v1").action_mask_key is None
    assert VecEnvFactory(id="CartPole-v1", action_mask="obs:legal").action_mask_key == "legal"
