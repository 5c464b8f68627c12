"""The recurrent core and the recurrent actor-critic against step-by-step references."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from rlcamp.errors import ConfigError
from rlcamp.nn import ActorCritic
from rlcamp.nn.recurrent import RecurrentCore, Sequences
from tests.helpers.learning import LearningClaim

OBS = gym.spaces.Box(-1.0, 1.0, (3,))


def reference_unroll(core: RecurrentCore, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor):
    """One ``nn.LSTMCell``/``nn.GRUCell`` step at a time with the core's weights, the state zeroed
    wherever an episode starts: what ``unroll`` must compute."""
    length, width = starts.shape
    cell_cls = torch.nn.LSTMCell if core.kind == "lstm" else torch.nn.GRUCell
    cell = cell_cls(x.shape[-1], core.hidden_size)
    cell.load_state_dict({name.removesuffix("_l0"): p for name, p in core.rnn.state_dict().items()})
    hidden = core.hidden_size
    outputs = []
    x = x.reshape(length, width, -1)
    for t in range(length):
        state = state * (1.0 - starts[t]).unsqueeze(-1)
        if core.kind == "lstm":
            h, c = cell(x[t], (state[:, :hidden], state[:, hidden:]))
            state = torch.cat([h, c], -1)
        else:
            h = state = cell(x[t], state)
        outputs.append(h)
    return torch.cat(outputs), state


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("with_starts", [False, True])
def test_unroll_matches_a_cell_by_cell_reference(kind, with_starts):
    """The fused call (no start after the first step) and the masked loop both equal a
    ``LSTMCell``/``GRUCell`` loop that resets the state at each start."""
    torch.manual_seed(0)
    core = RecurrentCore(kind, 5, 4)
    length, width = 6, 3
    x = torch.randn(length * width, 5)
    state = torch.randn(width, core.state_size)
    starts = torch.zeros(length, width)
    starts[0, 1] = 1.0
    if with_starts:
        starts[2, 0] = starts[4, 2] = 1.0
    out, final = core.unroll(x, state, starts)
    ref_out, ref_final = reference_unroll(core, x, state, starts)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(final, ref_final)


def test_a_start_forgets_everything_before_it():
    """After an episode start the outputs do not depend on the state or inputs before it."""
    torch.manual_seed(1)
    core = RecurrentCore("lstm", 2, 3)
    starts = torch.tensor([[0.0], [0.0], [1.0], [0.0]])
    x = torch.randn(4, 2)
    out, _ = core.unroll(x, torch.randn(1, core.state_size), starts)
    other = x.clone()
    other[:2] = torch.randn(2, 2)
    out_other, _ = core.unroll(other, torch.randn(1, core.state_size), starts)
    torch.testing.assert_close(out[2:], out_other[2:])
    assert not torch.allclose(out[:2], out_other[:2])


@pytest.mark.parametrize("shared", [False, True])
def test_sequences_evaluate_as_the_steps_acted(shared):
    """``evaluate_actions`` over whole sequences gives the log-probabilities of the actions ``step``
    sampled one step at a time (the update's first log-ratio is 0), and the state ``step`` returns
    is what the sequence ends with."""
    torch.manual_seed(2)
    policy = ActorCritic(
        OBS, gym.spaces.Discrete(3), hidden_sizes=(8,), memory="lstm", memory_size=6, shared=shared
    )
    length, width = 5, 2
    obs = torch.randn(length, width, 3)
    starts = torch.zeros(length, width)
    starts[0] = 1.0
    starts[3, 1] = 1.0
    state0 = torch.randn(width, policy.state_size)
    state, actions = state0, []
    for t in range(length):
        action, state = policy.step(obs[t], Sequences.one_step(state, starts[t]), policy.noise((width,)))
        actions.append(action)
    actions = torch.stack(actions)
    sequences = Sequences(state0, starts)
    log_prob, _, _ = policy.evaluate_actions(obs.flatten(0, 1), actions.flatten(), sequences)
    dist = torch.distributions.Categorical(logits=policy.actor_params(obs.flatten(0, 1), sequences))
    torch.testing.assert_close(log_prob, dist.log_prob(actions.flatten()))
    step_log_probs = []
    state = state0
    for t in range(length):
        memory = Sequences.one_step(state, starts[t])
        step_log_probs.append(policy.log_prob_entropy(obs[t], actions[t], memory)[0])
        state = policy.step(obs[t], memory, policy.noise((width,)))[1]
    torch.testing.assert_close(log_prob, torch.cat(step_log_probs))


def test_parameter_groups_hold_each_core_once():
    """Separate cores: the actor's in θ, the critic's in φ; every parameter in exactly one group."""
    policy = ActorCritic(OBS, gym.spaces.Discrete(2), memory="gru", memory_size=4)
    actor, critic = policy.actor_parameters(), policy.critic_parameters()
    assert {id(p) for p in actor}.isdisjoint(id(p) for p in critic)
    assert {id(p) for p in actor} | {id(p) for p in critic} == {id(p) for p in policy.parameters()}
    assert policy.state_size == 8
    shared = ActorCritic(OBS, gym.spaces.Discrete(2), memory="lstm", memory_size=4, memory_shared=True)
    assert shared.state_size == 8  # one LSTM: h and c
    assert shared.actor_core is shared.critic_core


def test_a_recurrent_policy_has_no_numpy_actor_and_needs_sequences():
    """The numpy fast path has no recurrence (the torch step runs instead), and rows without
    ``Sequences`` are refused rather than read as unrelated steps."""
    policy = ActorCritic(OBS, gym.spaces.Discrete(2), memory="lstm")
    assert policy.numpy_actor() is None
    with pytest.raises(ValueError, match="pass memory=Sequences"):
        policy.value(torch.zeros(4, 3))


def test_a_feed_forward_policy_has_no_state():
    policy = ActorCritic(OBS, gym.spaces.Discrete(2))
    assert not policy.recurrent and policy.initial_state(3) is None


def test_an_unknown_memory_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="network.memory='lstmm': choose one of none, lstm, gru"):
        ActorCritic(OBS, gym.spaces.Discrete(2), memory="lstmm")


NOVEL = ("env=cartpole_novel", "total_env_steps=50000")
PPO_LSTM_NOVEL = LearningClaim(
    overrides=(*NOVEL, "network.memory=lstm"), threshold=200.0, seeds=(201, 202, 203), min_passing=1
)
PPO_MLP_NOVEL = LearningClaim(overrides=NOVEL, threshold=200.0, seeds=(201, 202, 203, 204), min_passing=2)


@pytest.mark.slow
def test_recurrent_ppo_learns_cartpole_without_velocities(tmp_path):
    """PPO with a 64-unit LSTM on CartPole without its velocities (``env=cartpole_novel``, the tuned
    CartPole PPO) within 50k env steps: at least 1 of 3 seeds reaches a mean return >= 200.

    At the end of the budget, seeds 101-110 (``python -m tests.helpers.learning
    tests.nn.test_recurrent:PPO_LSTM_NOVEL --seeds 101-110 --jobs 2 --whole-budget``): 224.8,
    229.4, 302.6, 362.5, 371.2, 378.5, 467.4, 500.0, 500.0, 500.0, all 10 >= 200; P(none of 3
    passes) <= 0.27% (``failure_probability``; 2 of 4 seeds: 0.88%, at about twice the runs). The
    same settings without memory (``PPO_MLP_NOVEL``, seeds 101-110): 42.2-56.9 at the end, none
    >= 200, so a core that forgot its state would fail the claim.
    """
    PPO_LSTM_NOVEL.check(tmp_path)
