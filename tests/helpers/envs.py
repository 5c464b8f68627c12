"""Tiny deterministic envs with hand-checkable trajectories."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class CountingEnv(gym.Env):
    """Observation ``[t]``, reward ``t + 1`` at step ``t`` (0-based), action ignored.

    Terminates after ``horizon`` steps when ``terminate`` (else runs until a TimeLimit truncates).
    """

    def __init__(self, horizon: int = 3, terminate: bool = True, continuous: bool = False) -> None:
        self.horizon = horizon
        self.terminate = terminate
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = (
            gym.spaces.Box(-1.0, 1.0, (2,), np.float32) if continuous else gym.spaces.Discrete(2)
        )
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        reward = float(self.t + 1)
        self.t += 1
        terminated = self.terminate and self.t >= self.horizon
        return np.array([self.t], dtype=np.float32), reward, terminated, False, {}


class NaNEnv(CountingEnv):
    """A CountingEnv whose observation becomes NaN at step ``nan_at``."""

    def __init__(self, nan_at: int = 2) -> None:
        super().__init__(horizon=100)
        self.nan_at = nan_at

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self.t == self.nan_at:
            obs = np.array([np.nan], dtype=np.float32)
        return obs, reward, terminated, truncated, info


class TupleActionEnv(CountingEnv):
    """An env with an action space rlcamp does not support."""

    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(3)))


class MultiTargetEnv(gym.Env):
    """Match a target shown in the observation, every component at once.

    Each step draws a new target per action component and shows it (one-hot per MultiDiscrete
    component, ±1 per MultiBinary entry); the reward is the fraction of components equal to it, so
    only a policy right on every component earns 1 a step. ``horizon`` steps an episode: a perfect
    policy earns ``horizon``, a uniform one ``horizon · mean_j(1/n_j)``. ``scripted``: the targets
    are a function of the step alone, every episode the same (runs that resume match bit for bit).
    """

    def __init__(self, action_space: gym.Space, horizon: int = 4, scripted: bool = False) -> None:
        self.action_space = action_space
        self.horizon = horizon
        self.scripted = scripted
        self.t = 0
        self.target = np.zeros(action_space.shape, np.int64)

    def _draw(self) -> np.ndarray:
        """New targets (``_targets``) and the observation showing them."""
        raise NotImplementedError

    def _targets(self, high: np.ndarray) -> np.ndarray:
        if self.scripted:
            return (self.t * np.arange(1, high.size + 1)).reshape(high.shape) % high
        return self.np_random.integers(high)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._draw(), {}

    def step(self, action):
        reward = float(np.mean(np.asarray(action) == self.target))
        self.t += 1
        return self._draw(), reward, self.t >= self.horizon, False, {}


class MultiDiscreteTargetEnv(MultiTargetEnv):
    """``MultiTargetEnv`` with MultiDiscrete ``nvec`` actions (uneven: 3, 4, 2); uniform earns 0.36 a step."""

    def __init__(self, nvec: tuple[int, ...] = (3, 4, 2), horizon: int = 4, scripted: bool = False) -> None:
        super().__init__(gym.spaces.MultiDiscrete(list(nvec)), horizon, scripted)
        self.nvec = np.asarray(nvec)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (int(self.nvec.sum()),), np.float32)

    def _draw(self) -> np.ndarray:
        self.target = self._targets(self.nvec)
        obs = np.zeros(self.observation_space.shape, np.float32)
        obs[np.cumsum(np.concatenate([[0], self.nvec[:-1]])) + self.target] = 1.0
        return obs


class MultiBinaryTargetEnv(MultiTargetEnv):
    """``MultiTargetEnv`` with MultiBinary ``shape`` actions (int8 0/1); uniform earns 0.5 a step."""

    def __init__(self, shape: tuple[int, ...] = (4,), horizon: int = 4, scripted: bool = False) -> None:
        super().__init__(gym.spaces.MultiBinary(list(shape)), horizon, scripted)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (int(np.prod(shape)),), np.float32)

    def _draw(self) -> np.ndarray:
        self.target = self._targets(np.full(self.action_space.shape, 2)).astype(np.int8)
        return (2.0 * self.target.reshape(-1) - 1.0).astype(np.float32)

    def step(self, action):
        assert self.action_space.contains(action) and action.dtype == np.int8, action
        return super().step(action)


class TerminalRewardEnv(CountingEnv):
    """Episodes of exactly ``horizon`` steps; reward 1 on the last (terminating) step, 0 before."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, float(terminated), terminated, truncated, info


class EndlessRewardEnv(CountingEnv):
    """Reward 1 on every step, a constant observation and no terminal state: only a time limit
    (``env.max_episode_steps``) ends an episode, so ``V(s) = Σ_k γ^k = 1/(1-γ)``."""

    def __init__(self) -> None:
        super().__init__(terminate=False)

    def step(self, action):
        _, _, terminated, truncated, info = super().step(action)
        return np.array([0.0], dtype=np.float32), 1.0, terminated, truncated, info


class StickyNaNEnv(CountingEnv):
    """A ``CountingEnv`` (horizon 4) whose first episode breaks at step ``nan_at``: from then on its
    observation stays NaN until the env is reset; later episodes are fine."""

    def __init__(self, nan_at: int = 2) -> None:
        super().__init__(horizon=4)
        self.nan_at = nan_at
        self.resets = 0
        self.broken = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.resets += 1
        self.broken = False
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.broken = self.broken or (self.resets == 1 and self.t == self.nan_at)
        if self.broken:
            obs, terminated = np.array([np.nan], dtype=np.float32), False
        return obs, reward, terminated, truncated, info


class TruncatedNaNEnv(CountingEnv):
    """A never-terminating ``CountingEnv`` whose observation is NaN at step ``nan_at``: with
    ``env.max_episode_steps=nan_at`` the NaN is only in the truncated episode's ``final_obs``."""

    def __init__(self, nan_at: int = 3) -> None:
        super().__init__(terminate=False)
        self.nan_at = nan_at

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self.t == self.nan_at:
            obs = np.array([np.nan], dtype=np.float32)
        return obs, reward, terminated, truncated, info


class DictCountingEnv(CountingEnv):
    """A ``CountingEnv`` whose observation is a ``Dict`` of every kind of key, each holding ``t``:
    ``count`` (``float32 [1]``), ``frame`` (``uint8 [1, 3, 3]``), ``phase`` (``Discrete(3)``, ``t % 3``)."""

    def __init__(self, horizon: int = 3, terminate: bool = True) -> None:
        super().__init__(horizon=horizon, terminate=terminate)
        self.observation_space = gym.spaces.Dict(
            {
                "count": gym.spaces.Box(-np.inf, np.inf, (1,), np.float32),
                "frame": gym.spaces.Box(0, 255, (1, 3, 3), np.uint8),
                "phase": gym.spaces.Discrete(3),
            }
        )

    def _obs(self) -> dict[str, np.ndarray | int]:
        frame = np.full((1, 3, 3), self.t, np.uint8)
        return {"count": np.array([self.t], dtype=np.float32), "frame": frame, "phase": self.t % 3}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed, options=options)
        return self._obs(), {}

    def step(self, action):
        _, reward, terminated, truncated, info = super().step(action)
        return self._obs(), reward, terminated, truncated, info


class LitCellEnv(gym.Env):
    """Move toward the light: the answer is only in the pixels.

    A ``uint8 [channels, size, size]`` frame (36: the smallest the Nature CNN takes), dark but for
    one 4×4 patch of 255 (in every channel) at a random place in the left or the right half;
    action 0 (left) or 1 (right); reward 1 for the light's side, else 0; a new frame every step,
    ``horizon`` steps an episode. Reading the frame earns ``horizon``, ignoring it ``horizon / 2``
    on average.
    """

    PATCH = 4

    def __init__(self, horizon: int = 8, scripted: bool = False, size: int = 36, channels: int = 1) -> None:
        self.horizon = horizon
        self.scripted = scripted  # frames a function of the step alone: every episode the same
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (channels, size, size), np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0
        self.side = 0

    def _frame(self) -> np.ndarray:
        half = self.size // 2
        if self.scripted:
            self.side, row, offset = self.t % 2, (5 * self.t) % (self.size - self.PATCH), 3 * self.t % 10
        else:
            self.side = int(self.np_random.integers(2))
            row = int(self.np_random.integers(self.size - self.PATCH + 1))
            offset = int(self.np_random.integers(half - self.PATCH + 1))
        col = self.side * half + offset
        frame = np.zeros(self.observation_space.shape, np.uint8)
        frame[:, row : row + self.PATCH, col : col + self.PATCH] = 255
        return frame

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        reward = float(int(action) == self.side)
        self.t += 1
        return self._frame(), reward, self.t >= self.horizon, False, {}


class ResetNaNEnv(CountingEnv):
    """A ``CountingEnv`` whose ``reset()`` returns a NaN observation."""

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed, options=options)
        return np.array([np.nan], dtype=np.float32), {}


class InfRewardEnv(CountingEnv):
    """A ``CountingEnv`` whose reward is infinite at step 2."""

    def __init__(self) -> None:
        super().__init__(horizon=100)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, float("inf") if self.t == 2 else reward, terminated, truncated, info


class LitSideRuleEnv(gym.Env):
    """A ``Dict`` observation whose two keys are both needed: the image says where the light is,
    the vector says which action points where.

    ``image``: ``uint8 [1, size, size]``, 0 but for one cell of 1 at a random place in the left or
    the right half; ``rule``: ``float32 [2]``, ``[1, 0]`` (action 0 is left, 1 right) or ``[0, 1]``
    (swapped). Reward 1 for the action that points at the light, else 0; a new frame and rule every
    step, ``horizon`` steps an episode. Reading both keys earns ``horizon``; either alone, or
    neither, ``horizon / 2`` on average (the answer is the XOR of the side and the rule).
    ``mission=True`` adds a ``Text`` key no encoder takes (as MiniGrid's).
    """

    def __init__(
        self, horizon: int = 8, size: int = 6, mission: bool = False, scripted: bool = False
    ) -> None:
        self.horizon = horizon
        self.size = size
        self.scripted = scripted  # observations a function of the step alone: every episode the same
        keys: dict[str, gym.Space] = {
            "image": gym.spaces.Box(0, 1, (1, size, size), np.uint8),
            "rule": gym.spaces.Box(0.0, 1.0, (2,), np.float32),
        }
        if mission:
            keys["mission"] = gym.spaces.Text(16)
        self.observation_space = gym.spaces.Dict(keys)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0
        self.target = 0

    def _obs(self) -> dict[str, np.ndarray | str]:
        half = self.size // 2
        if self.scripted:
            side, swap, row, col = self.t % 2, (self.t // 2) % 2, self.t % self.size, self.t % half
        else:
            side, swap = int(self.np_random.integers(2)), int(self.np_random.integers(2))
            row, col = int(self.np_random.integers(self.size)), int(self.np_random.integers(half))
        self.target = side ^ swap
        image = np.zeros((1, self.size, self.size), np.uint8)
        image[0, row, side * half + col] = 1
        obs: dict[str, np.ndarray | str] = {"image": image, "rule": np.eye(2, dtype=np.float32)[swap]}
        if "mission" in self.observation_space.spaces:
            obs["mission"] = "gotothelight"
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self.target)
        self.t += 1
        return self._obs(), reward, self.t >= self.horizon, False, {}


class MaskStepEnv(CountingEnv):
    """A ``CountingEnv`` with ``Discrete(n)`` actions of which only ``t % n`` is valid at step ``t``:
    the bool mask is in ``info["action_mask"]`` and, with ``dict_obs``, also the observation's
    ``action_mask`` key beside ``count``; an invalid action raises (a masked policy never takes one)."""

    def __init__(self, n: int = 4, horizon: int = 7, dict_obs: bool = False) -> None:
        super().__init__(horizon=horizon)
        self.n = n
        self.dict_obs = dict_obs
        self.action_space = gym.spaces.Discrete(n)
        if dict_obs:
            self.observation_space = gym.spaces.Dict(
                {"count": self.observation_space, "action_mask": gym.spaces.MultiBinary(n)}
            )

    def _mask(self) -> np.ndarray:
        return np.arange(self.n) == self.t % self.n

    def _out(self, count: np.ndarray) -> tuple[np.ndarray | dict[str, np.ndarray], dict[str, np.ndarray]]:
        mask = self._mask()
        obs = {"count": count, "action_mask": mask.astype(np.int8)} if self.dict_obs else count
        return obs, {"action_mask": mask}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        count, _ = super().reset(seed=seed, options=options)
        return self._out(count)

    def step(self, action):
        if not self._mask()[int(action)]:
            raise AssertionError(f"invalid action {action} at step {self.t}")
        count, reward, terminated, truncated, _ = super().step(action)
        obs, info = self._out(count)
        return obs, reward, terminated, truncated, info


class MultiMaskStepEnv(MaskStepEnv):
    """``MaskStepEnv`` with ``MultiDiscrete([n, n])`` actions: at step ``t`` component ``j`` may only be
    ``(t + j) % n``; the mask has ``2n`` flags, each component's ``n`` in turn."""

    def __init__(self, n: int = 4, horizon: int = 7) -> None:
        super().__init__(n=n, horizon=horizon)
        self.action_space = gym.spaces.MultiDiscrete([n, n])

    def _mask(self) -> np.ndarray:
        return np.concatenate([np.arange(self.n) == (self.t + j) % self.n for j in range(2)])

    def step(self, action):
        valid = [(self.t + j) % self.n for j in range(2)]
        if list(np.asarray(action)) != valid:
            raise AssertionError(f"invalid action {action} at step {self.t}")
        count, reward, terminated, truncated, _ = CountingEnv.step(self, action)
        obs, info = self._out(count)
        return obs, reward, terminated, truncated, info


class MaskedPickEnv(gym.Env):
    """Pick the shown action among the few valid ones: of ``n`` actions, ``valid`` are valid each
    step (drawn anew; a bool mask in ``info["action_mask"]`` and, with ``dict_obs``, the observation's
    ``action_mask`` key beside ``obs``); the observation one-hot shows which valid one pays 1 (another
    valid one pays 0); an invalid action ends the episode with 0. ``horizon`` steps: a perfect policy
    earns ``horizon``, a uniform one over the valid actions ``horizon / valid``, one over all ``n``
    actions about ``valid / n`` (it mostly ends the episode at once)."""

    def __init__(self, n: int = 16, valid: int = 3, horizon: int = 8, dict_obs: bool = False) -> None:
        self.n, self.valid, self.horizon, self.dict_obs = n, valid, horizon, dict_obs
        self.action_space = gym.spaces.Discrete(n)
        shown = gym.spaces.Box(0.0, 1.0, (n,), np.float32)
        self.observation_space = (
            gym.spaces.Dict({"obs": shown, "action_mask": gym.spaces.MultiBinary(n)}) if dict_obs else shown
        )
        self.t = 0
        self.mask = np.zeros(n, bool)
        self.target = 0

    def _draw(self) -> tuple[np.ndarray | dict[str, np.ndarray], dict[str, np.ndarray]]:
        allowed = self.np_random.choice(self.n, self.valid, replace=False)
        self.mask = np.isin(np.arange(self.n), allowed)
        self.target = int(allowed[0])
        shown = np.zeros(self.n, np.float32)
        shown[self.target] = 1.0
        obs = {"obs": shown, "action_mask": self.mask.astype(np.int8)} if self.dict_obs else shown
        return obs, {"action_mask": self.mask.copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._draw()

    def step(self, action):
        action = int(action)
        self.t += 1
        reward, ended = (
            (float(action == self.target), self.t >= self.horizon) if self.mask[action] else (0.0, True)
        )
        obs, info = self._draw()
        return obs, reward, ended, False, info
