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
    after the first step it is one fused ``nn.LSTM`` call (sb3-contrib's fast path); otherwise it
    steps one time step at a time, as the masking needs. Weights are orthogonal and biases zero
    (CleanRL's ``ppo_atari_lstm.py``).
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
        keep = (1.0 - starts).unsqueeze(-1)  # [L, B, 1]
        x = x.reshape(length, width, -1)
        state = state * keep[0]
        if length == 1 or not bool(starts[1:].any()):
            out, hidden = self.rnn(x, self._unpack(state))
            return out.reshape(length * width, -1), self._pack(hidden)
        outputs = []
        for t in range(length):
            out, hidden = self.rnn(x[t : t + 1], self._unpack(state if t == 0 else state * keep[t]))
            state = self._pack(hidden)
            outputs.append(out)
        return torch.cat(outputs).reshape(length * width, -1), state
