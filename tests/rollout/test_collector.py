"""The collector on a tiny deterministic env: shapes, autoreset, truncation bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcamp.envs import VecEnvFactory
from rlcamp.envs.normalize import RewardScaler
from rlcamp.errors import NonFiniteEnvError
from rlcamp.nn import ActorCritic
from rlcamp.nn.encoders import MinAtarCNN
from rlcamp.nn.recurrent import Sequences
from rlcamp.rollout import RolloutCollector, bootstrap_truncations
from rlcamp.rollout.buffer import gae_batch


def make_collector(n_steps=7, n_envs=2, **env_kwargs):
    factory = VecEnvFactory(id="tests.helpers.envs:CountingEnv", n_envs=n_envs, **env_kwargs)
    obs_space, act_space = factory.spaces()
    policy = ActorCritic(obs_space, act_space, hidden_sizes=(8,))
    collector = RolloutCollector(factory(seed=0), n_steps=n_steps, seed=0, device=torch.device("cpu"))
    return collector, policy


def test_shapes_and_dtypes():
    collector, policy = make_collector()
    r = collector.collect(policy)
    assert r.obs.shape == (7, 2, 1)
    assert r.actions.shape == (7, 2) and r.actions.dtype == torch.long
    assert r.rewards.shape == r.dones.shape == (7, 2)
    assert r.next_obs.shape == (2, 1)


@pytest.mark.parametrize(
    ("env", "shape", "dtype"),
    [("MultiDiscreteTargetEnv", (3,), torch.int64), ("MultiBinaryTargetEnv", (4,), torch.int8)],
)
def test_multi_actions_are_stored_in_the_heads_shape_and_dtype(env, shape, dtype):
    """MultiDiscrete: int64 per component; MultiBinary: int8 0/1, the space's dtype, which the env
    receives as is (``MultiBinaryTargetEnv`` asserts it); the stored actions are the policy's samples."""
    factory = VecEnvFactory(id=f"tests.helpers.envs:{env}", n_envs=2)
    policy = ActorCritic(*factory.spaces(), hidden_sizes=(8,))
    collector = RolloutCollector(factory(seed=0), n_steps=5, seed=0, device=torch.device("cpu"))
    r = collector.collect(policy)
    assert r.actions.shape == (5, 2, *shape) and r.actions.dtype == dtype
    assert torch.isfinite(policy.evaluate_actions(r.flat_obs, r.flat_actions)[0]).all()


def test_same_step_autoreset_wastes_no_step():
    """Horizon 3: obs 0,1,2 then the reset obs 0 right after the terminal step; rewards 1,2,3."""
    collector, policy = make_collector(kwargs={"horizon": 3})
    r = collector.collect(policy)
    np.testing.assert_array_equal(r.obs[:, 0, 0].numpy(), [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(r.rewards[:, 0].numpy(), [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(r.dones[:, 0].numpy(), [0, 0, 1, 0, 0, 1, 0])
    assert len(r.final_index) == 0, "terminations are never bootstrapped"
    assert collector.stats.episodes == 4  # two envs, two finished episodes each
    assert collector.stats.return_mean == 6.0


def test_truncation_records_final_obs_for_bootstrap():
    """No termination, TimeLimit 4: steps 3 and 7 are truncations whose final obs is [4]."""
    collector, policy = make_collector(n_steps=8, kwargs={"terminate": False}, max_episode_steps=4)
    r = collector.collect(policy)
    assert r.final_index.tolist() == [[3, 0], [3, 1], [7, 0], [7, 1]]
    np.testing.assert_array_equal(r.final_obs[:, 0].numpy(), [4, 4, 4, 4])
    np.testing.assert_array_equal(r.dones[:, 0].numpy(), [0, 0, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(r.obs[4, :, 0].numpy(), [0, 0])


def test_bootstrap_adds_discounted_value_of_final_obs(make_cfg):
    from rlcamp.train import build

    cfg = make_cfg(
        "env.id=tests.helpers.envs:CountingEnv",
        "+env.kwargs.terminate=false",
        "env.max_episode_steps=4",
        "env.n_envs=2",
        "algo.n_steps=8",
        "algo.n_minibatches=2",
        "total_env_steps=16",
    )
    module = build(cfg)
    module.setup("fit")
    rollout = module.collector.collect(module.policy)
    with torch.no_grad():
        rewards = bootstrap_truncations(rollout, module.policy.value, cfg.algo.gamma)
        v_final = module.policy.value(rollout.final_obs)
    gamma = cfg.algo.gamma
    torch.testing.assert_close(rewards[3], rollout.rewards[3] + gamma * v_final[:2])
    torch.testing.assert_close(rewards[:3], rollout.rewards[:3])


def test_rollouts_continue_across_calls():
    collector, policy = make_collector(n_steps=2, kwargs={"horizon": 3})
    first, second = collector.collect(policy), collector.collect(policy)
    np.testing.assert_array_equal(first.obs[:, 0, 0].numpy(), [0, 1])
    np.testing.assert_array_equal(second.obs[:, 0, 0].numpy(), [2, 0])


def test_continuous_actions_are_sampled_unclipped_and_env_gets_clipped():
    factory = VecEnvFactory(id="tests.helpers.envs:CountingEnv", n_envs=2, kwargs={"continuous": True})
    obs_space, act_space = factory.spaces()
    policy = ActorCritic(obs_space, act_space, log_std_init=1.0)
    collector = RolloutCollector(factory(seed=0), n_steps=50, seed=0, device=torch.device("cpu"))
    r = collector.collect(policy)
    assert r.actions.shape == (50, 2, 2) and r.actions.abs().max() > 1.0


def test_nan_observation_raises_with_env_and_step():
    factory = VecEnvFactory(id="tests.helpers.envs:NaNEnv", n_envs=2)
    obs_space, act_space = factory.spaces()
    policy = ActorCritic(obs_space, act_space)
    collector = RolloutCollector(
        factory(seed=0), n_steps=5, seed=0, device=torch.device("cpu"), env_id="NaNEnv"
    )
    # sub-env 0's 2nd step is env step 3: the first vector step took env steps 1 and 2
    with pytest.raises(NonFiniteEnvError, match=r"NaNEnv sub-env 0 .* env step 3;"):
        collector.collect(policy)


@pytest.mark.parametrize("nan_policy", ["raise", "terminate"])
def test_nan_reset_observation_raises_as_a_step_does(nan_policy):
    factory = VecEnvFactory(id="tests.helpers.envs:ResetNaNEnv", n_envs=2)
    with pytest.raises(NonFiniteEnvError, match=r"ResetNaNEnv sub-env 0 .* from reset\(\) after env step 0;"):
        RolloutCollector(
            factory(seed=0),
            n_steps=5,
            seed=0,
            device=torch.device("cpu"),
            env_id="ResetNaNEnv",
            nan_policy=nan_policy,
        )


def test_observation_normalization_uses_fixed_stats_within_a_rollout_then_updates():
    factory = VecEnvFactory(id="tests.helpers.envs:CountingEnv", n_envs=2, kwargs={"horizon": 5})
    obs_space, act_space = factory.spaces()
    policy = ActorCritic(obs_space, act_space, normalize_obs=True)
    collector = RolloutCollector(factory(seed=0), n_steps=40, seed=0, device=torch.device("cpu"))
    first = collector.collect(policy)
    np.testing.assert_allclose(first.obs[:5, 0, 0].numpy(), np.arange(5) / np.sqrt(1 + 1e-8), rtol=1e-6)
    rms = policy.obs_normalizer.rms
    assert abs(float(rms.mean) - 2.0) < 0.05 and abs(float(rms.var) - 2.0) < 0.05  # obs cycle 0..4
    second = collector.collect(policy)
    expected = (np.arange(5) - float(rms.mean)) / np.sqrt(float(rms.var) + 1e-8)
    np.testing.assert_allclose(second.obs[:5, 0, 0].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_reward_scaling_divides_by_the_std_of_discounted_returns():
    factory = VecEnvFactory(id="tests.helpers.envs:CountingEnv", n_envs=1, kwargs={"horizon": 2})
    obs_space, act_space = factory.spaces()
    policy = ActorCritic(obs_space, act_space)
    scaler = RewardScaler(gamma=0.5)
    collector = RolloutCollector(
        factory(seed=0), n_steps=4, seed=0, device=torch.device("cpu"), reward_scaler=scaler
    )
    r = collector.collect(policy)
    # rewards 1, 2, 1, 2; discounted returns G = 1, 0.5 + 2 = 2.5, 1, 2.5
    returns = np.array([1.0, 2.5, 1.0, 2.5])
    n = 4 + 1e-4
    var = (
        1.0 * 1e-4 + returns.var() * 4 + returns.mean() ** 2 * 1e-4 * 4 / n
    ) / n  # merged with the prior N(0, 1) of weight 1e-4
    np.testing.assert_allclose(
        r.rewards[:, 0].numpy(), np.array([1, 2, 1, 2]) / np.sqrt(var + 1e-8), rtol=1e-5
    )


def test_async_vectorization_records_the_same_rollout_as_sync():
    def run(vectorization):
        factory = VecEnvFactory(
            id="tests.helpers.envs:CountingEnv",
            n_envs=2,
            vectorization=vectorization,
            kwargs={"terminate": False},
            max_episode_steps=3,
        )
        obs_space, act_space = factory.spaces()
        torch.manual_seed(0)
        policy = ActorCritic(obs_space, act_space)
        collector = RolloutCollector(factory(seed=0), n_steps=7, seed=0, device=torch.device("cpu"))
        try:
            return collector.collect(policy)
        finally:
            collector.close()

    sync, asynchronous = run("sync"), run("async")
    for name in ("obs", "actions", "rewards", "dones", "final_obs", "final_index"):
        torch.testing.assert_close(getattr(asynchronous, name), getattr(sync, name))


def make_dict_collector(n_steps=8, normalize_obs=False, **env_kwargs):
    factory = VecEnvFactory(id="tests.helpers.envs:DictCountingEnv", n_envs=2, **env_kwargs)
    obs_space, act_space = factory.spaces()
    policy = ActorCritic(obs_space, act_space, encoder=MinAtarCNN, normalize_obs=normalize_obs)
    collector = RolloutCollector(
        factory(seed=0), n_steps=n_steps, seed=0, device=torch.device("cpu"), obs_dtype=policy.input_dtype
    )
    return collector, policy


def test_a_dict_observation_keeps_each_key_in_its_own_dtype_and_shape():
    """``DictCountingEnv``: every key holds the step count ``t`` (horizon 3), in its own dtype."""
    collector, policy = make_dict_collector(kwargs={"horizon": 3})
    r = collector.collect(policy)
    assert {key: (obs.dtype, tuple(obs.shape)) for key, obs in r.obs.items()} == {
        "count": (torch.float32, (8, 2, 1)),
        "frame": (torch.uint8, (8, 2, 1, 3, 3)),
        "phase": (torch.int64, (8, 2)),
    }
    counts = [0, 1, 2, 0, 1, 2, 0, 1]
    assert r.obs["count"][:, 0, 0].tolist() == counts
    assert r.obs["frame"][:, 0, 0, 1, 2].tolist() == counts and r.obs["phase"][:, 0].tolist() == counts
    assert r.next_obs["frame"].shape == (2, 1, 3, 3) and r.next_obs["phase"].tolist() == [2, 2]
    assert r.flat_obs["frame"].shape == (16, 1, 3, 3)


def test_a_dict_observation_keeps_its_final_observations_per_key():
    """A TimeLimit of 4 on a never-ending ``DictCountingEnv``: the final observation of each
    truncation is ``t = 4`` in every key (``phase`` = 4 mod 3)."""
    collector, policy = make_dict_collector(kwargs={"terminate": False}, max_episode_steps=4)
    r = collector.collect(policy)
    assert r.final_index.tolist() == [[3, 0], [3, 1], [7, 0], [7, 1]]
    assert r.final_obs["count"][:, 0].tolist() == [4.0] * 4 and r.final_obs["phase"].tolist() == [1] * 4
    assert r.final_obs["frame"].dtype == torch.uint8 and r.final_obs["frame"][:, 0, 0, 0].tolist() == [4] * 4


def test_dict_normalization_has_one_normalizer_per_vector_key_and_none_for_images():
    collector, policy = make_dict_collector(n_steps=30, normalize_obs=True, kwargs={"horizon": 3})
    assert list(policy.key_normalizers) == ["count"] and policy.running_statistics() == [
        policy.key_normalizers["count"]
    ]
    first = collector.collect(policy)
    assert first.obs["count"][:3, 0, 0].tolist() == pytest.approx([0, 1, 2], rel=1e-6)  # fresh statistics
    rms = policy.key_normalizers["count"].rms
    assert abs(float(rms.mean) - 1.0) < 0.05 and abs(float(rms.var) - 2 / 3) < 0.05  # t cycles 0, 1, 2
    second = collector.collect(policy)
    assert second.obs["frame"].dtype == torch.uint8 and int(second.obs["frame"].max()) == 2  # untouched
    assert float(second.obs["count"].min()) < 0  # centred


@pytest.mark.parametrize("source", ["info", "obs"])
def test_the_rollout_stores_the_mask_each_action_was_sampled_under(source):
    """``MaskStepEnv`` allows only action ``t % 4`` at step ``t`` (it raises on another): the stored
    bool mask of every transition is the one-hot of its own stored count, the action its valid one,
    and a minibatch's rows keep their masks."""
    kwargs = {"dict_obs": True} if source == "obs" else {}
    factory = VecEnvFactory(
        id="tests.helpers.envs:MaskStepEnv", n_envs=2, action_mask=f"{source}:action_mask", kwargs=kwargs
    )
    policy = ActorCritic(*factory.spaces(), hidden_sizes=(8,), action_mask_key=factory.action_mask_key)
    collector = RolloutCollector(
        factory(seed=0), n_steps=20, seed=0, device=torch.device("cpu"), obs_dtype=policy.input_dtype
    )
    rollout = collector.collect(policy)
    count, mask = (
        rollout.flat_obs["count" if source == "obs" else "obs"][:, 0],
        rollout.flat_obs["action_mask"],
    )
    assert mask.dtype == torch.bool
    valid = count.long() % 4
    assert torch.equal(mask, torch.nn.functional.one_hot(valid, 4).bool())
    assert torch.equal(rollout.flat_actions, valid)
    batch = gae_batch(rollout, policy.evaluate_actions, policy.value, 0.99, 0.95)
    for minibatch in batch.minibatches(epochs=1, n=4, normalize_advantage=True):
        assert mask_rows_match(minibatch.obs["action_mask"], minibatch.actions)


def mask_rows_match(mask: torch.Tensor, actions: torch.Tensor) -> bool:
    """Each row's action is valid under its row's mask."""
    return bool(mask.gather(1, actions[:, None]).all())


def recurrent_collector(n_steps=6, n_envs=2):
    """CountingEnv truncated every 4 steps (so ``final_obs`` bootstraps) with an LSTM policy."""
    factory = VecEnvFactory(
        id="tests.helpers.envs:CountingEnv", n_envs=n_envs, max_episode_steps=4, kwargs={"terminate": False}
    )
    obs_space, act_space = factory.spaces()
    torch.manual_seed(0)
    policy = ActorCritic(obs_space, act_space, hidden_sizes=(8,), memory="lstm", memory_size=5)
    collector = RolloutCollector(factory(seed=0), n_steps=n_steps, seed=0, device=torch.device("cpu"))
    return collector, policy


def test_a_recurrent_rollout_records_the_state_before_each_step():
    """``states[t+1]`` is the state ``step`` returns from ``states[t]`` (reset where ``starts[t]``),
    starts follow the ends, each truncation keeps its env's state after the last step, and the next
    rollout continues from ``next_state`` and ``next_starts``."""
    collector, policy = recurrent_collector()
    first = collector.collect(policy)
    memory = first.memory
    assert torch.equal(memory.states[0], torch.zeros(2, policy.state_size))
    assert torch.equal(memory.starts[0], torch.ones(2))
    assert torch.equal(memory.starts[1:], first.dones[:-1])
    after = []
    for t in range(first.n_steps):
        sequences = Sequences.one_step(memory.states[t], memory.starts[t])
        after.append(policy.step(first.obs[t], sequences, policy.noise((2,)))[1])
    after = torch.stack(after)
    torch.testing.assert_close(after[:-1], memory.states[1:])
    torch.testing.assert_close(after[-1], memory.next_state)
    assert len(first.final_index) == 2  # each env truncated at step 3
    t, env = first.final_index.unbind(1)
    torch.testing.assert_close(memory.final_states, after[t, env])
    second = collector.collect(policy)
    assert torch.equal(second.memory.states[0], memory.next_state)
    assert torch.equal(second.memory.starts[0], memory.next_starts)


@pytest.mark.parametrize("seq_len", [None, 2, 3])
def test_replayed_sequences_give_the_rollouts_log_probs(seq_len):
    """Before any update, every sequence minibatch (whole columns or chunks replayed from their
    stored state) re-evaluates to the log-probabilities of the rollout: PPO's first ratio is 1."""
    collector, policy = recurrent_collector()
    collector.collect(policy)  # so the second rollout starts mid-episode from a nonzero state
    rollout = collector.collect(policy)
    batch = gae_batch(rollout, policy.evaluate_actions, policy.value, 0.99, 0.95)
    for minibatch in batch.minibatches(2, 2, normalize_advantage=False, seq_len=seq_len):
        log_prob, _, values = policy.evaluate_actions(minibatch.obs, minibatch.actions, minibatch.sequences)
        torch.testing.assert_close(log_prob, minibatch.log_probs)
        torch.testing.assert_close(values, minibatch.values)
