"""Atari 2600 games (the Arcade Learning Environment) with the standard preprocessing, on EnvPool
(``env.backend=envpool``, the default: one C++ pool) or gymnasium + ale-py (``env.backend=gymnasium``).

The preprocessing is Mnih et al. (2015) as the PPO paper and CleanRL's ``ppo_atari.py`` use it
(``AtariProtocol``): up to 30 no-op frames on reset, the action repeated 4 frames with the max of the
last two, FIRE after reset, 84×84 grayscale, a stack of 4, no sticky actions, a cap of 108,000
frames; for training only, a lost life ends the episode and rewards are clipped to their sign.
``env/protocol=machado`` is Machado et al. (2018)'s: sticky actions 0.25, no life-loss end, the full
action set. ``PROTOCOL_TABLE`` pins every value on both backends; where the two differ in mechanism
(not in value) it says how.

The learner sees per-life episodes and clipped rewards; ``RecordGameScores`` reports the whole
game's unclipped score (every life), the number Atari tables print, as ``info["episode"]``, so
``rollout/ep_return_mean`` and ``summary.json`` are game scores. Evaluation (``env_fn``) builds the
same preprocessing without the training-only parts, on gymnasium + ale-py.

ale-py (GPL-2.0) and opencv (gymnasium's resize) are the ``atari`` extra; EnvPool's ROMs come with
``envpool-assets`` (the ``envpool`` extra). Both are in ``make install``'s default extras.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TransformReward

from rlcamp.envs.envpool import EnvPoolVectorEnv, import_envpool
from rlcamp.envs.factory import VecEnvFactory
from rlcamp.errors import EnvError

INSTALL_HINT = "run `make install` (or pip install -e '.[atari]')"
FIRE = 1  # ALE's action index of FIRE in every action set that has it


@dataclass(frozen=True)
class AtariProtocol:
    """Every preprocessing value (the defaults: Mnih et al. 2015, the PPO paper, CleanRL)."""

    noop_max: int = 30  # a random 1..noop_max no-op frames after a game reset
    frame_skip: int = 4  # frames per agent step, the max over the last two observed
    screen_size: int = 84  # square grayscale frame
    frame_stack: int = 4
    repeat_action_probability: float = 0.0  # sticky actions (Machado et al.: 0.25)
    full_action_space: bool = False  # all 18 actions instead of the game's minimal set
    max_frames: int = 108_000  # a game is truncated after this many frames (30 minutes at 60 Hz)
    fire_reset: bool = True  # press FIRE after each reset in games that have it (Breakout waits for it)
    episodic_life: bool = True  # training only: a lost life ends the episode, the game goes on
    clip_reward: bool = True  # training only: rewards clipped to their sign

    def __post_init__(self) -> None:
        if self.frame_skip < 1 or self.frame_stack < 1 or self.screen_size < 1 or self.noop_max < 0:
            raise EnvError(
                f"env.protocol: frame_skip={self.frame_skip}, frame_stack={self.frame_stack} and "
                f"screen_size={self.screen_size} must be >= 1, noop_max={self.noop_max} >= 0"
            )
        if not 0.0 <= self.repeat_action_probability < 1.0:
            raise EnvError(
                f"env.protocol.repeat_action_probability={self.repeat_action_probability}: "
                "use a value in [0, 1)"
            )
        if self.max_frames % self.frame_skip:
            raise EnvError(
                f"env.protocol.max_frames={self.max_frames} is not a multiple of "
                f"frame_skip={self.frame_skip}: EnvPool caps agent steps, so the cap must be a whole "
                "number of them"
            )


PROTOCOL_TABLE: dict[str, tuple[str, str]] = {
    "noop_max": ("noop_max", "AtariPreprocessing(noop_max)"),
    "frame_skip": ("frame_skip", "AtariPreprocessing(frame_skip) on ALE frameskip=1"),
    "screen_size": ("img_height, img_width", "AtariPreprocessing(screen_size)"),
    "frame_stack": ("stack_num", "FrameStackObservation(stack_size)"),
    "repeat_action_probability": ("repeat_action_probability", "gym.make(repeat_action_probability)"),
    "full_action_space": ("full_action_space", "gym.make(full_action_space)"),
    "max_frames": (
        "max_episode_steps = max_frames / frame_skip",
        "gym.make(max_episode_steps, max_num_frames_per_episode) at frameskip 1",
    ),
    "fire_reset": ("use_fire_reset (one FIRE frame)", "FireReset (one FIRE step of frame_skip frames)"),
    "episodic_life": ("episodic_life (no-ops and FIRE after a lost life)", "EpisodicLife (one no-op step)"),
    "clip_reward": ("reward_clip", "TransformReward(np.sign)"),
}
"""``AtariProtocol`` field -> (EnvPool's option, gymnasium + ale-py's wrapper or argument). Fixed on
both: grayscale, the max over the last two frames, INTER_AREA resizing, no discount change on a lost
life. Documented differences: after a lost life EnvPool keeps the frame stack and repeats its random
no-ops, the gymnasium path steps one no-op; EnvPool fires for one frame, the gymnasium path for one
agent step; EnvPool's no-op frames come before its FIRE frame, gymnasium's after the reset's FIRE."""


def protocol_from(values: dict[str, Any]) -> AtariProtocol:
    """``AtariProtocol`` from config values; a one-line error naming the settings for an unknown key."""
    unknown = sorted(set(values) - set(AtariProtocol.__dataclass_fields__))
    if unknown:
        raise EnvError(
            f"env.protocol.{unknown[0]} is not an Atari preprocessing setting; the settings: "
            f"{', '.join(AtariProtocol.__dataclass_fields__)}"
        )
    return AtariProtocol(**values)


def envpool_options(protocol: AtariProtocol) -> dict[str, Any]:
    """EnvPool ``make_gymnasium`` options for ``protocol``'s training env (``PROTOCOL_TABLE``)."""
    return {
        "noop_max": protocol.noop_max,
        "frame_skip": protocol.frame_skip,
        "img_height": protocol.screen_size,
        "img_width": protocol.screen_size,
        "stack_num": protocol.frame_stack,
        "repeat_action_probability": protocol.repeat_action_probability,
        "full_action_space": protocol.full_action_space,
        "max_episode_steps": protocol.max_frames // protocol.frame_skip,
        "use_fire_reset": protocol.fire_reset,
        "episodic_life": protocol.episodic_life,
        "reward_clip": protocol.clip_reward,
        "gray_scale": True,
        "use_inter_area_resize": True,
        "zero_discount_on_life_loss": False,
    }


def import_ale() -> None:
    """Register ALE's ids with gymnasium; a one-line error naming the install without ale-py/opencv."""
    try:
        ale_py = importlib.import_module("ale_py")
        importlib.import_module("cv2")
    except ImportError as err:
        raise EnvError(
            f"Atari on gymnasium (and Atari evaluation) needs ale-py and opencv: {INSTALL_HINT}"
        ) from err
    gym.register_envs(ale_py)


def game_of(env_id: str) -> str:
    """The game's name in an ALE id (``ALE/Pong-v5`` -> ``Pong``); a one-line error for another form."""
    namespace, _, rest = env_id.partition("/")
    name, _, version = rest.rpartition("-")
    if namespace != "ALE" or not name or version != "v5":
        raise EnvError(
            f"env.id={env_id}: an Atari env id is ALE's, ALE/<Game>-v5 (e.g. ALE/Pong-v5); "
            "the family sets frame skip and sticky actions itself"
        )
    return name


class GameOverInfo(gym.Wrapper):
    """Put the step's unclipped reward and whether the game really ended (not a lost life) into
    ``info["reward"]`` and ``info["terminated"]``, the keys EnvPool's Atari info carries, so
    ``RecordGameScores`` reads game scores the same way on both backends."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["reward"], info["terminated"] = float(reward), bool(terminated)
        return obs, reward, terminated, truncated, info


class EpisodicLife(gym.Wrapper):
    """A lost life ends the training episode (``terminated``) while the game goes on; ``reset`` starts
    a new game only after the real end. Written here because gymnasium's ``AtariPreprocessing(
    terminal_on_life_loss=True)`` resets the whole game at a lost life, which is another MDP."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """A new game after the real end; after a lost life, one no-op step of the same game."""
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.game_over = False
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


class FireReset(gym.Wrapper):
    """Press FIRE for one step after every reset and after every lost life that does not end the
    episode, so games that wait for it (Breakout) go on, as EnvPool's ``use_fire_reset`` does after
    each of its resets; gymnasium has no such wrapper. In training the lost life ends the episode
    (``EpisodicLife``) and the FIRE comes with the reset; in evaluation it comes in the same step."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(FIRE)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = self.env.unwrapped.ale.lives()
        if lives < self.lives and not (terminated or truncated):
            obs, fire_reward, terminated, truncated, info = self.env.step(FIRE)
            reward += fire_reward
        self.lives = lives
        return obs, reward, terminated, truncated, info


def has_fire(env: gym.Env) -> bool:
    """Whether the game's action set has FIRE at ALE's index for it."""
    meanings = env.unwrapped.get_action_meanings()
    return len(meanings) > FIRE and meanings[FIRE] == "FIRE"


def make_atari_env(
    env_id: str, protocol: AtariProtocol, training: bool, render_mode: str | None = None
) -> gym.Env:
    """One gymnasium + ale-py env with ``protocol``'s preprocessing; the training-only parts (life-loss
    ends, reward clipping) only when ``training``. Frames are ``uint8 [stack, size, size]``."""
    import_ale()
    game_of(env_id)
    env = gym.make(
        env_id,
        frameskip=1,
        repeat_action_probability=protocol.repeat_action_probability,
        full_action_space=protocol.full_action_space,
        max_num_frames_per_episode=protocol.max_frames,
        max_episode_steps=protocol.max_frames,
        render_mode=render_mode,
    )
    env = AtariPreprocessing(
        env,
        noop_max=protocol.noop_max,
        frame_skip=protocol.frame_skip,
        screen_size=protocol.screen_size,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    env = GameOverInfo(env)
    env = FrameStackObservation(env, protocol.frame_stack)
    if training and protocol.episodic_life:
        env = EpisodicLife(env)
    if protocol.fire_reset and has_fire(env):
        env = FireReset(env)
    if training and protocol.clip_reward:
        env = TransformReward(env, np.sign)
    return env


def step_values(info: dict[str, Any], key: str, done: np.ndarray) -> np.ndarray:
    """``info[key]`` of this step for every sub-env. gymnasium's SAME_STEP vector env moves a
    finished sub-env's step info to ``info["final_info"]`` (the top level then holds its reset's);
    EnvPool's adapter keeps the step's info at the top level."""
    values = np.zeros(len(done))
    if key in info:  # absent when every sub-env is just reset by gymnasium
        values[:] = info[key]
    final = info.get("final_info")
    if final is not None and done.any():
        values[done] = np.asarray(final[key], dtype=np.float64)[done]
    return values


class RecordGameScores(gym.vector.VectorWrapper):
    """``info["episode"]`` (``r``, ``l``; mask ``info["_episode"]``) when a whole game ends: the
    unclipped score summed over every life and its length in agent steps, from ``info["reward"]`` and
    ``info["terminated"]``, while the learner's episodes end at each lost life on clipped rewards.
    The counters are named as gymnasium's ``RecordEpisodeStatistics``' (the collector zeroes them
    for sub-envs it resets)."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        self.episode_returns = np.zeros(self.num_envs)
        self.episode_lengths = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.episode_returns[:] = 0.0
        self.episode_lengths[:] = 0
        return self.env.reset(**kwargs)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        done = np.asarray(terminated) | np.asarray(truncated)
        self.episode_returns += step_values(info, "reward", done)
        self.episode_lengths += 1
        game_over = (step_values(info, "terminated", done) > 0) | np.asarray(truncated)
        if game_over.any():
            info["episode"] = {"r": self.episode_returns.copy(), "l": self.episode_lengths.copy()}
            info["_episode"] = game_over
            self.episode_returns[game_over] = 0.0
            self.episode_lengths[game_over] = 0
        return obs, reward, terminated, truncated, info


@dataclass
class AtariEnvFactory(VecEnvFactory):
    """The ``atari`` env family's recipe (``conf/env/_atari.yaml``): ``id`` is ALE's (``ALE/Pong-v5``),
    ``protocol`` every preprocessing value (``conf/env/protocol/``). Training runs on EnvPool's
    ``<Game>-v5`` or on gymnasium + ale-py; evaluation on gymnasium + ale-py."""

    backend: str = "envpool"
    protocol: AtariProtocol = field(default_factory=AtariProtocol)

    def __post_init__(self) -> None:
        if not isinstance(self.protocol, AtariProtocol):
            self.protocol = protocol_from(dict(self.protocol))
        game_of(self.id)
        for name, value, fix in (
            ("max_episode_steps", self.max_episode_steps, "set env.protocol.max_frames"),
            ("kwargs", self.kwargs or None, "set the env.protocol values"),
            ("wrappers", self.wrappers or None, "the family builds its own wrappers"),
            ("normalize_obs", self.normalize_obs or None, "frames are scaled by the CNN encoder"),
        ):
            if value is not None:
                raise EnvError(f"env.{name}={value} does not apply to Atari: {fix}")
        super().__post_init__()
        if self.backend == "gymnasium":
            import_ale()

    def check_envpool(self) -> None:
        """EnvPool is installed and has the game."""
        task_id = f"{game_of(self.id)}-v5"
        if task_id not in import_envpool().list_all_envs():
            raise EnvError(f"env.id={self.id}: EnvPool has no {task_id}; use env.backend=gymnasium")

    def env_fn(self, render_mode: str | None = None, training: bool = False) -> Callable[[], gym.Env]:
        protocol, env_id = self.protocol, self.id
        return lambda: make_atari_env(env_id, protocol, training, render_mode)

    def record_episodes(self, env: gym.vector.VectorEnv) -> gym.vector.VectorEnv:
        return RecordGameScores(env)

    def _envpool(self, seed: int, n: int) -> EnvPoolVectorEnv:
        return EnvPoolVectorEnv(f"{game_of(self.id)}-v5", n, seed, envpool_options(self.protocol))
