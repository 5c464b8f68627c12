"""The tensors of one rollout, ``[T, N, ...]``, the flat batch the update reads, and the pure
functions between them: GAE batch assembly and minibatching (after SB3's ``RolloutBuffer``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from rlcamp.nn.recurrent import Sequences
from rlcamp.rollout.advantages import gae
from rlcamp.tree import Obs, tree_chunk, tree_map, tree_rows

Evaluate = Callable[[Obs, torch.Tensor, Sequences | None], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
Value = Callable[[Obs, Sequences | None], torch.Tensor]


def normalize(x: torch.Tensor, dim: int = -1, eps: float = 1e-8, center: bool = True) -> torch.Tensor:
    """``(x - mean) / (std + eps)`` along ``dim`` (advantage normalization, PPO detail #7);
    ``x / (std + eps)`` without ``center`` (REINFORCE: a rescaled step that subtracts no baseline)."""
    std = x.std(dim, keepdim=True) + eps
    return (x - x.mean(dim, keepdim=True)) / std if center else x / std


@dataclass
class RolloutMemory:
    """A recurrent policy's state through one rollout (``ActorCritic.recurrent``), one flat row per env.

    ``states[t]`` is the state before step ``t``, not yet reset by ``starts[t]`` (1 where an episode
    starts at ``t``: the env's first step, or the step after an episode ended); the policy resets it
    as it reads it. ``final_states[k]`` is the state after the step that truncated episode ``k``
    (``Rollout.final_index``), the one ``V(s_final)`` continues from.
    """

    states: torch.Tensor  # [T, N, S]
    starts: torch.Tensor  # [T, N] float
    next_state: torch.Tensor  # [N, S] after the rollout's last step
    next_starts: torch.Tensor  # [N] float
    final_states: torch.Tensor  # [K, S]


@dataclass
class Rollout:
    """What the collector recorded: ``T`` steps of ``N`` envs.

    ``obs`` are network inputs in their own dtype (normalized float vectors, or uint8 images), or a
    dict of them, one per key of a ``Dict`` observation space (``rlcamp.tree``).
    ``final_obs[k]`` is the last observation of an episode cut by a time limit at
    ``(t, env) = final_index[k]``; its value is bootstrapped into ``rewards[t, env]``.
    """

    obs: Obs  # [T, N, obs_dim] float32, or [T, N, C, H, W] uint8, or a dict of such
    actions: torch.Tensor  # [T, N] (Discrete) or [T, N, act_dim] (Box)
    rewards: torch.Tensor  # [T, N], scaled when reward scaling is on
    dones: torch.Tensor  # [T, N] float, 1 where the episode ended (terminated or truncated)
    next_obs: Obs  # [N, *obs], s_T
    final_obs: Obs  # [K, *obs]
    final_index: torch.Tensor  # [K, 2] long: (t, env) of each truncation
    memory: RolloutMemory | None = None  # a recurrent policy's states

    @property
    def n_steps(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_envs(self) -> int:
        return self.rewards.shape[1]

    @property
    def flat_obs(self) -> Obs:
        """``obs`` as ``[T·N, *obs]``, time-major (row ``t·N + env``), as ``Batch`` stores it."""
        return tree_map(lambda obs: obs.flatten(0, 1), self.obs)

    @property
    def flat_actions(self) -> torch.Tensor:
        """``actions`` as ``[T·N, ...]``, in the row order of ``flat_obs``."""
        return self.actions.reshape(self.n_steps * self.n_envs, *self.actions.shape[2:])

    @property
    def sequences(self) -> Sequences | None:
        """``flat_obs`` as ``N`` sequences of ``T`` steps from the rollout's first state (None:
        feed-forward)."""
        memory = self.memory
        return None if memory is None else Sequences(memory.states[0], memory.starts)

    @property
    def next_sequences(self) -> Sequences | None:
        """``next_obs`` as one step from the state after the rollout."""
        memory = self.memory
        return None if memory is None else Sequences.one_step(memory.next_state, memory.next_starts)

    @property
    def final_sequences(self) -> Sequences | None:
        """``final_obs`` as one step continuing each truncated episode's state (no reset)."""
        memory = self.memory
        if memory is None:
            return None
        return Sequences.one_step(
            memory.final_states, memory.final_states.new_zeros(len(memory.final_states))
        )

    def batch_memory(self) -> BatchMemory | None:
        """The per-row states and starts of ``flat_obs``, ``N`` sequences wide (None: feed-forward)."""
        memory = self.memory
        if memory is None:
            return None
        return BatchMemory(memory.states.flatten(0, 1), memory.starts.reshape(-1), self.n_envs)


@dataclass
class BatchMemory:
    """A recurrent batch's layout: its rows are ``L`` steps of ``width`` sequences, time-major, with
    the state before each row and whether an episode starts there (``RolloutMemory``)."""

    states: torch.Tensor  # [L·width, S]
    starts: torch.Tensor  # [L·width] float
    width: int

    def sequences(self) -> Sequences:
        """The rows as ``Sequences``: each sequence's first state, every step's start flag."""
        length = len(self.starts) // self.width
        return Sequences(self.states[: self.width], self.starts.view(length, self.width))


@dataclass
class Batch:
    """Flat ``[B, ...]`` training data; the update's minibatches are row subsets of it (of each
    key of a dict ``obs``). A recurrent policy's batch also holds its ``memory`` (``BatchMemory``),
    and its minibatches are whole sequences. ``loss_rows``: where only some rows of whole sequences
    enter the loss (a recurrent REINFORCE's complete episodes), their indices into ``obs`` and
    ``actions``, in the order of ``log_probs``, ``values``, ``advantages`` and ``returns``."""

    obs: Obs
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    memory: BatchMemory | None = None
    loss_rows: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.advantages.shape[0]

    @property
    def sequences(self) -> Sequences | None:
        """The rows as a recurrent policy reads them (None: feed-forward rows)."""
        return None if self.memory is None else self.memory.sequences()

    def index(self, idx: torch.Tensor) -> Batch:
        """Rows ``idx`` of every row field (one gather per field and key), without a memory layout."""
        return Batch(*(tree_rows(getattr(self, name), idx) for name in ROW_FIELDS))

    def split(self, n_chunks: int) -> list[Batch]:
        """``n_chunks`` consecutive equal slices (views, no copy), without a memory layout."""
        columns = [tree_chunk(getattr(self, name), n_chunks) for name in ROW_FIELDS]
        return [Batch(*parts) for parts in zip(*columns, strict=True)]

    def minibatches(
        self,
        epochs: int,
        n: int,
        normalize_advantage: bool,
        seq_len: int | None = None,
        center: bool = True,
    ) -> Iterator[Batch]:
        """``epochs`` shuffled passes of ``n`` minibatches that partition the rows of each pass.

        Each pass gathers the shuffled rows once and standardizes the advantages within each
        minibatch in one vectorized op; the minibatches are views of that gathered copy. A single
        pass of a single minibatch (``epochs = n = 1``, the full-batch methods) is the batch itself,
        unshuffled, its advantages standardized over all of it. A recurrent batch's minibatches are
        sequences of ``seq_len`` steps (``sequence_minibatches``). ``center=False`` only divides the
        advantages by their standard deviation (``normalize``).
        """
        if epochs == 1 and n == 1:
            if normalize_advantage and len(self) > 1:
                self.advantages = normalize(self.advantages, center=center)
            yield self
            return
        if self.memory is not None:
            yield from self.sequence_minibatches(epochs, n, normalize_advantage, seq_len, center)
            return
        for _ in range(epochs):
            shuffled = self.index(torch.randperm(len(self), device=self.advantages.device))
            if normalize_advantage and len(self) // n > 1:
                shuffled.advantages = normalize(shuffled.advantages.view(n, -1), center=center).view(-1)
            yield from shuffled.split(n)

    def sequence_minibatches(
        self, epochs: int, n: int, normalize_advantage: bool, seq_len: int | None, center: bool = True
    ) -> Iterator[Batch]:
        """``epochs`` passes of ``n`` minibatches of whole sequences: each of the ``width`` env columns
        cut into chunks of ``seq_len`` steps (None: the whole column, CleanRL's scheme), each chunk
        replayed from the state stored before its first step and reset where episodes start inside
        it (no padding), the chunks shuffled; advantages standardized within each minibatch.
        """
        memory = self.memory
        width = memory.width
        length = len(self) // width
        seq_len = seq_len or length
        n_seqs = (length // seq_len) * width
        device = self.advantages.device
        steps = torch.arange(length, device=device).view(-1, seq_len).T  # [seq_len, chunks]
        rows = (steps[:, :, None] * width + torch.arange(width, device=device)).reshape(seq_len, n_seqs)
        per = n_seqs // n
        for _ in range(epochs):
            order = torch.randperm(n_seqs, device=device)
            for k in range(n):
                idx = rows[:, order[k * per : (k + 1) * per]].reshape(-1)  # time-major
                minibatch = self.index(idx)
                minibatch.memory = BatchMemory(memory.states[idx], memory.starts[idx], per)
                if normalize_advantage and len(minibatch) > 1:
                    minibatch.advantages = normalize(minibatch.advantages, center=center)
                yield minibatch


ROW_FIELDS = ("obs", "actions", "log_probs", "values", "advantages", "returns")


def bootstrap_truncations(
    rollout: Rollout, value: Callable[[Obs], torch.Tensor], gamma: float
) -> torch.Tensor:
    """Rewards with ``γ·V(s_final)`` added where a time limit cut the episode (not on termination).

    ``value`` estimates ``V(s_final)`` (the critic ``V_φ``, or QActorCritic's ``E_π Q_φ``); it is
    called only when the rollout holds a truncation.
    """
    rewards = rollout.rewards
    if len(rollout.final_index):
        rewards = rewards.clone()
        t, env = rollout.final_index.unbind(1)
        rewards[t, env] += gamma * value(rollout.final_obs)
    return rewards


def gae_batch(rollout: Rollout, evaluate: Evaluate, value: Value, gamma: float, lam: float) -> Batch:
    """The rollout as training data: old log-probs and values in one batched pass, GAE(λ)
    advantages and λ-returns ``A_t + V(s_t)``, time-limit truncations bootstrapped with ``γV``.

    ``evaluate(obs, actions, memory) -> (log π(a|s), H, V(s))`` and ``value(obs, memory) -> V(s)``
    are the policy's; a recurrent policy reads the whole rollout as its ``N`` sequences, and each
    bootstrap from the state its env had there.
    """
    T, N = rollout.n_steps, rollout.n_envs
    flat_obs, flat_actions = rollout.flat_obs, rollout.flat_actions
    log_probs, _, values = evaluate(flat_obs, flat_actions, rollout.sequences)
    values = values.reshape(T, N)
    last_value = value(rollout.next_obs, rollout.next_sequences)
    rewards = bootstrap_truncations(rollout, lambda obs: value(obs, rollout.final_sequences), gamma)
    advantages = gae(rewards, values, rollout.dones, last_value, gamma, lam)
    return Batch(
        obs=flat_obs,
        actions=flat_actions,
        log_probs=log_probs,
        values=values.reshape(-1),
        advantages=advantages.reshape(-1),
        returns=(advantages + values).reshape(-1),
        memory=rollout.batch_memory(),
    )
