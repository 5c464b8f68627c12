"""A recurrent core between the encoder and the MLP body (``network.memory=lstm|gru``): its state
resets where an episode starts, inside a rollout as inside an update's sequence.

The state of one env is one flat float row (an LSTM's ``[h, c]`` side by side), so the rollout
stores, slices and gathers it like any other per-step tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# the cores config_checks.MEMORIES names (besides "none")
CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class Sequences:
    """Where a recurrent policy's input rows sit in time: ``L`` steps of ``B`` sequences, time-major
    (row ``t·B + b``), each sequence's state before its first step, and the episode starts that
    reset the state before a step (``h ← (1 − start)·h``, CleanRL's ``ppo_atari_lstm.py``)."""

    state: torch.Tensor  # [B, S] float
    starts: torch.Tensor  # [L, B] float, 1 where an episode starts at that step

    @property
    def length(self) -> int:
        return self.starts.shape[0]

    @classmethod
    def one_step(cls, state: torch.Tensor, starts: torch.Tensor) -> Sequences:
        """A single step of ``B`` envs: ``starts`` is ``[B]``."""
        return cls(state, starts.reshape(1, -1).to(state.dtype))


class RecurrentCore(nn.Module):
    """An LSTM or GRU of one layer whose state is a flat ``[B, S]`` row per sequence.

    ``unroll`` runs ``L`` steps with the state reset at episode starts. Where no episode starts
    after the first step it is one fused ``nn.LSTM`` call (sb3-contrib's fast path). Otherwise each
    sequence is cut at its episode starts into segments, and all segments run in one fused call over
    a ``PackedSequence`` (the first from the sequence's state, the others from zero): a per-step loop
    with a masked state (CleanRL's ``ppo_atari_lstm.py``) computes the same with ``L`` kernel calls
    forward and backward: 10k env steps of CartPole-NoVel PPO (8 envs × 32 steps) took 18.1 s with
    it and 11.5 s packed, profiled. Weights are orthogonal and biases zero (CleanRL).
    """

    def __init__(self, kind: str, in_features: int, hidden_size: int) -> None:
        super().__init__()
        self.kind = kind
        self.hidden_size = hidden_size
        self.rnn = CELLS[kind](in_features, hidden_size)
        for name, param in self.rnn.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param, 1.0)
            else:
                nn.init.zeros_(param)

    @property
    def state_size(self) -> int:
        """``S``: ``2H`` for an LSTM (``h`` and ``c``), ``H`` for a GRU."""
        return 2 * self.hidden_size if self.kind == "lstm" else self.hidden_size

    def _unpack(self, state: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "lstm":
            h, c = state.split(self.hidden_size, dim=-1)
            return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()
        return state.unsqueeze(0).contiguous()

    def _pack(self, hidden: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if self.kind == "lstm":
            return torch.cat([hidden[0][0], hidden[1][0]], dim=-1)
        return hidden[0]

    def unroll(
        self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [L·B, F]`` (time-major rows) → ``(outputs [L·B, H], state after the last step [B, S])``."""
        length, width = starts.shape
        x = x.reshape(length, width, -1)
        state = state * (1.0 - starts[0]).unsqueeze(-1)
        if length == 1 or not bool(starts[1:].any()):
            out, hidden = self.rnn(x, self._unpack(state))
            return out.reshape(length * width, -1), self._pack(hidden)
        return self._unroll_segments(x, state, starts)

    def _unroll_segments(
        self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The episodes inside the sequences as packed segments: segment ``k`` of sequence ``b``
        holds its steps from its ``k``-th start inside (``k = 0``: from step 0, from ``state[b]``)."""
        length, width = starts.shape
        inside = starts.clone()
        inside[0] = 0.0
        per_column = inside.long().cumsum(0)  # [L, B]: which of its column's segments a step is in
        counts = per_column[-1] + 1  # segments per column
        first = torch.cumsum(counts, 0) - counts  # each column's first segment
        segment = first + per_column  # [L, B] global segment of each step
        n_segments = int(counts.sum())
        lengths = torch.bincount(segment.reshape(-1), minlength=n_segments)
        order = segment.T.reshape(-1)  # steps column by column, time inside a column
        steps = torch.arange(length, device=x.device).repeat(width)
        column_start = torch.zeros(n_segments, dtype=torch.long, device=x.device)
        column_start.scatter_reduce_(0, order, steps, reduce="amin", include_self=False)
        position = torch.arange(length, device=x.device)[:, None] - column_start[segment]  # [L, B]
        padded = x.new_zeros(int(lengths.max()), n_segments, x.shape[-1])
        padded[position, segment] = x
        initial = state.new_zeros(n_segments, state.shape[-1])
        initial[first] = state
        packed = nn.utils.rnn.pack_padded_sequence(padded, lengths.cpu(), enforce_sorted=False)
        out, hidden = self.rnn(packed, self._unpack(initial))
        out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=padded.shape[0])
        last = first + counts - 1
        return out[position, segment].reshape(length * width, -1), self._pack(hidden)[last]
