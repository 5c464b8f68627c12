"""The Atari family (``rlcamp.envs.atari``) on both backends: frames, the standard preprocessing,
game scores over every life, evaluation without the training-only parts, one-line errors, and a
PPO run on a real game that trains, checkpoints and resumes reproducibly."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict, fields

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcamp.envs.atari import (
    PROTOCOL_TABLE,
    AtariEnvFactory,
    AtariProtocol,
    EpisodicLife,
    FireReset,
    envpool_options,
    step_values,
)
from rlcamp.errors import EnvError
from tests.helpers.config import compose_train

BACKENDS = ("envpool", "gymnasium")
NOOP = 0
MACHADO = AtariProtocol(repeat_action_probability=0.25, full_action_space=True, episodic_life=False)


def make_vec(game: str, backend: str, n_envs: int = 1, seed: int = 0, **protocol) -> gym.vector.VectorEnv:
    factory = AtariEnvFactory(
        id=f"ALE/{game}-v5", backend=backend, n_envs=n_envs, protocol=asdict(AtariProtocol(**protocol))
    )
    env = factory(seed=seed)
    env.reset(seed=seed)
    return env


@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_are_uint8_stacks_of_four_84x84_grayscale_frames(backend):
    env = make_vec("Pong", backend, n_envs=2)
    obs, *_ = env.step(np.zeros(2, dtype=np.int64))
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert env.single_observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert env.single_action_space == gym.spaces.Discrete(6)
    env.close()


@pytest.mark.parametrize("game", ["Pong", "Breakout"])
def test_both_backends_give_the_same_frames_and_rewards_without_the_random_reset_parts(game):
    """EnvPool's C++ preprocessing and gymnasium's ``AtariPreprocessing`` + ``FrameStackObservation``
    are independent implementations of one protocol: with one no-op and no FIRE on reset (the parts
    whose mechanism differs, ``PROTOCOL_TABLE``), the same actions give the same frames, byte for byte
    (measured: 300 of 300 random steps identical on Pong and Breakout)."""
    protocol = {"noop_max": 1, "fire_reset": False, "episodic_life": False, "clip_reward": False}
    envpool_env, gym_env = (make_vec(game, backend, **protocol) for backend in BACKENDS)
    actions = np.random.default_rng(0).integers(envpool_env.single_action_space.n, size=(200, 1))
    for action in actions:
        obs_a, reward_a, term_a, trunc_a, _ = envpool_env.step(action)
        obs_b, reward_b, term_b, trunc_b, _ = gym_env.step(action)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(reward_a, reward_b)
        np.testing.assert_array_equal(term_a | trunc_a, term_b | trunc_b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_rewards_are_clipped_to_their_sign_and_game_scores_are_not(backend):
    """SpaceInvaders pays 5-30 points an alien: the learner sees +1, the logged score the points."""
    env = make_vec("SpaceInvaders", backend, n_envs=2)
    rng = np.random.default_rng(1)
    clipped, raw, scores = [], [], []
    for _ in range(1500):
        _, reward, terminated, truncated, info = env.step(rng.integers(6, size=2))
        clipped.append(reward)
        raw.append(step_values(info, "reward", terminated | truncated))
        if "_episode" in info:
            scores.extend(info["episode"]["r"][info["_episode"]])
    clipped, raw = np.array(clipped), np.array(raw)
    assert set(np.unique(clipped)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(clipped, np.sign(raw))
    assert raw.max() >= 5 and scores and max(scores) > np.sum(clipped > 0) / 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lost_life_ends_the_training_episode_and_the_logged_episode_spans_the_game(backend):
    """Breakout played with NOOP only: FIRE after every reset launches each of the 5 balls, each lost
    life is a terminated training episode, and one logged episode with the whole game's raw score
    and length ends with the game."""
    env = make_vec("Breakout", backend)
    terminations, raw_total, steps = 0, 0.0, 0
    while True:
        _, _, terminated, truncated, info = env.step(np.array([NOOP]))
        steps += 1
        terminations += int(terminated[0])
        raw_total += step_values(info, "reward", terminated | truncated)[0]
        if "_episode" in info and info["_episode"][0]:
            break
        assert steps < 5000, "the game did not end"
    assert terminations == 5
    assert info["episode"]["r"][0] == raw_total and info["episode"]["l"][0] == steps
    env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_fire_reset_breakout_never_launches_a_ball(backend):
    """The counterpart of the test above: it is the FIRE on reset that starts each life."""
    env = make_vec("Breakout", backend, fire_reset=False)
    for _ in range(600):
        _, _, terminated, truncated, _ = env.step(np.array([NOOP]))
        assert not (terminated | truncated).any()
    env.close()


def test_evaluation_plays_whole_games_on_unclipped_rewards():
    """``env_fn`` (what ``rlcamp-eval`` and the evaluation callback play) has the same preprocessing
    without the life-loss ends and the clipping; the training env has both."""
    factory = AtariEnvFactory(id="ALE/Breakout-v5", backend="envpool")

    def chain(env: gym.Env) -> set[type]:
        kinds = set()
        while isinstance(env, gym.Wrapper):
            kinds.add(type(env))
            env = env.env
        return kinds

    evaluation, training = factory.env_fn()(), factory.env_fn(training=True)()
    assert {EpisodicLife, gym.wrappers.TransformReward} <= chain(training)
    assert not {EpisodicLife, gym.wrappers.TransformReward} & chain(evaluation)
    assert FireReset in chain(evaluation)
    evaluation.reset(seed=0)
    lives, done = [], False
    while not done:
        _, _, terminated, truncated, _ = evaluation.step(NOOP)
        lives.append(evaluation.unwrapped.ale.lives())
        done = terminated or truncated
    assert lives[0] == 5 and lives[-1] == 0 and terminated


def test_the_protocol_table_pins_every_value_on_both_backends():
    """Every ``AtariProtocol`` field has a row, and EnvPool gets an explicit value for each of its
    preprocessing options (never its default)."""
    import envpool

    assert set(PROTOCOL_TABLE) == {f.name for f in fields(AtariProtocol)}
    options = envpool_options(AtariProtocol())
    config = envpool.make_spec("Pong-v5").config._fields
    assert set(options) <= set(config)
    preprocessing = set(config) - {"num_envs", "batch_size", "num_threads", "max_num_players"}
    preprocessing -= {"thread_affinity_offset", "base_path", "seed", "env_seed", "gym_reset_return_info"}
    preprocessing -= {"task", "mode", "difficulty"}  # the game's own, ALE's defaults on both
    assert preprocessing == set(options)
    machado = envpool_options(MACHADO)
    assert machado["repeat_action_probability"] == 0.25 and machado["full_action_space"]
    assert not machado["episodic_life"] and options["max_episode_steps"] == 27_000


def test_the_configs_compose_the_standard_and_machado_protocols(tmp_path):
    cfg = compose_train(["env=breakout"], tmp_path)
    assert cfg.env.id == "ALE/Breakout-v5" and cfg.env.backend == "envpool"
    assert dict(cfg.env.protocol) == asdict(AtariProtocol())
    assert cfg.network.encoder._target_ == "rlcamp.nn.encoders.NatureCNN"
    machado = compose_train(["env=pong", "env/protocol=machado"], tmp_path)
    assert dict(machado.env.protocol) == asdict(MACHADO)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"id": "Pong-v5"}, "ALE/<Game>-v5"),
        ({"id": "ALE/Pong-v4"}, "ALE/<Game>-v5"),
        ({"max_episode_steps": 1000}, "env.protocol.max_frames"),
        ({"normalize_obs": True}, "scaled by the CNN encoder"),
        ({"protocol": {"frame_skips": 4}}, "env.protocol.frame_skips is not an Atari preprocessing setting"),
        ({"protocol": {"repeat_action_probability": 1.0}}, "[0, 1)"),
        ({"protocol": {"max_frames": 1001}}, "multiple of frame_skip"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(EnvError, match=message.replace("[", r"\[").replace(")", r"\)")) as err:
        AtariEnvFactory(**({"id": "ALE/Pong-v5"} | settings))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "code",
    [
        "from rlcamp.envs.factory import resolve_entry_point; resolve_entry_point('ALE/Pong-v5')",
        "from rlcamp.envs.atari import AtariEnvFactory as F; F(id='ALE/Pong-v5', backend='gymnasium')",
    ],
)
def test_without_ale_py_the_error_names_make_install(code):
    blocked = "import sys; sys.modules['ale_py'] = None; "
    command = [sys.executable, "-c", blocked + code]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "EnvError" in last and "make install" in last


@pytest.mark.slow
def test_ppo_on_breakout_trains_checkpoints_and_resumes_reproducibly(tmp_path):
    """PPO with the Nature CNN on EnvPool's Breakout: a run that crashed after its checkpoint at
    128 env steps resumes from it to the end, and two resumes agree bit for bit (weights and
    metrics). The envs restart from ``reset(seed)`` on a resume (docs/operations.md), so a resumed
    Atari run is reproducible but not the uninterrupted run's continuation."""
    from rlcamp.train import train
    from rlcamp.utils.checkpoint import load_checkpoint
    from tests.test_resume import Crash, metric_rows

    short = [
        "env=breakout",
        "env.n_envs=2",
        "algo.n_steps=32",
        "algo.update_epochs=1",
        "algo.n_minibatches=2",
        "total_env_steps=192",
        "callbacks.checkpoint.every_env_steps=64",
        "logger=csv",
    ]
    crash = ["+callbacks.crash._target_=tests.test_resume.CrashAt", "+callbacks.crash.env_steps=128"]
    with pytest.raises(Crash):
        train(compose_train([*short, *crash], tmp_path / "crashed"))
    ckpt = tmp_path / "crashed" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(ckpt)["rlcamp"]["env_steps"] == 128
    runs = [tmp_path / "resumed_a", tmp_path / "resumed_b"]
    first, second = (train(compose_train([*short, f"ckpt_path={ckpt}"], run))[1] for run in runs)
    assert first.env_steps == second.env_steps == 192
    a, b = first.state_dict(), second.state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert metric_rows(runs[0] / "metrics.csv") == metric_rows(runs[1] / "metrics.csv")
