"""rlcamp-eval and evaluate_policy: frozen normalization, eval.json, mp4 videos, headless."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from rlcamp.envs import VecEnvFactory
from rlcamp.nn import ActorCritic
from rlcamp.rollout.evaluation import evaluate_policy
from rlcamp.train import train
from rlcamp.utils.build import build

HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None


def test_evaluate_policy_leaves_normalization_statistics_alone(make_cfg):
    module = build(make_cfg("env.normalize_obs=true"))
    normalizer = module.policy.obs_normalizer
    for buffer in normalizer.buffers():
        buffer.add_(0.5)
    before = {k: v.clone() for k, v in normalizer.state_dict().items()}
    result = evaluate_policy(module.policy, module.env_factory, n_episodes=2, seed=7)
    assert len(result.returns) == len(result.lengths) == 2 and min(result.lengths) >= 1
    assert result.returns == [float(n) for n in result.lengths]  # CartPole: +1 per step
    for key, value in normalizer.state_dict().items():
        assert torch.equal(value, before[key]), key
    again = evaluate_policy(module.policy, module.env_factory, n_episodes=2, seed=7)
    assert again.returns == result.returns  # deterministic policy, same seeds


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("env_limit", "expected"), [(None, 50), (20, 20)])
def test_evaluation_episodes_end_at_the_env_limit_else_at_the_cap(env_limit, expected):
    """EndlessRewardEnv never terminates: its episodes end at the env's time limit if it has one,
    else at ``max_episode_steps``."""
    factory = VecEnvFactory(id="tests.helpers.envs:EndlessRewardEnv", n_envs=1, max_episode_steps=env_limit)
    policy = ActorCritic(*factory.spaces())
    result = evaluate_policy(policy, factory, n_episodes=2, max_episode_steps=50)
    assert result.lengths == [expected, expected] and result.returns == [float(expected)] * 2


@pytest.mark.slow
def test_rlcamp_eval_writes_eval_json_and_mp4(make_cfg, tmp_path):
    """A checkpoint with normalization on: the CLI reproduces the in-process policy's returns."""
    cfg = make_cfg(
        "total_env_steps=512", "env.normalize_obs=true", "logger=none", output_dir=tmp_path / "run"
    )
    _, module = train(cfg)
    expected = evaluate_policy(module.policy, module.env_factory, n_episodes=3, seed=100_000)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcamp.evaluate",
            f"ckpt_path={ckpt}",
            "n_episodes=3",
            "deterministic=true",
            "video=true",
            f"paths.log_dir={tmp_path / 'logs'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (out_dir,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    report = json.loads((out_dir / "eval.json").read_text())
    assert report["returns"] == expected.returns
    assert report["return_mean"] == pytest.approx(sum(expected.returns) / 3)
    assert report["train_env_steps"] == 512 and report["env_id"] == "CartPole-v1"
    videos = list((out_dir / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    assert report["videos"] == [str(videos[0])]
    assert f"return {report['return_mean']:.2f} ± {report['return_std']:.2f} over 3" in result.stdout


def test_evaluation_gives_a_multibinary_env_int8_actions():
    """The deterministic MultiBinary policy plays ``[z > 0]`` as int8 arrays, the space's dtype
    (``MultiBinaryTargetEnv`` asserts it on every step)."""
    factory = VecEnvFactory(id="tests.helpers.envs:MultiBinaryTargetEnv")
    policy = ActorCritic(*factory.spaces())
    for deterministic in (True, False):
        result = evaluate_policy(policy, factory, n_episodes=2, deterministic=deterministic)
        assert result.lengths == [4, 4] and all(0 <= r <= 4 for r in result.returns)


def test_rlcamp_eval_missing_checkpoint_is_one_line(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rlcamp.evaluate import CONF_DIR, hydra_main

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            "eval", overrides=[f"ckpt_path={tmp_path / 'nope.ckpt'}", f"paths.output_dir={tmp_path}"]
        )
    with pytest.raises(SystemExit) as exit_info:
        hydra_main(cfg)
    message = str(exit_info.value.code)
    assert message.startswith("rlcamp-eval: checkpoint") and "ckpt_path=" in message and "\n" not in message


@pytest.mark.slow
@pytest.mark.mujoco
@pytest.mark.skipif(not HAS_MUJOCO, reason="the mujoco extra is not installed: pip install -e '.[mujoco]'")
def test_mujoco_video_renders_headless(make_cfg, tmp_path):
    """MUJOCO_GL=egl (set in conftest) renders without a display; the mp4 has real frames."""
    import imageio.v3 as iio

    module = build(make_cfg("env=inverted_pendulum"))
    result = evaluate_policy(module.policy, module.env_factory, n_episodes=1, video_dir=tmp_path / "videos")
    (video,) = result.videos
    frames = iio.imread(video, plugin="pyav") if importlib.util.find_spec("av") else iio.imread(video)
    assert len(frames) >= min(result.lengths[0], 2) and frames.std() > 0


def nan_weights_checkpoint(tmp_path, make_cfg):
    from rlcamp.train import train

    train(make_cfg("total_env_steps=64", "env.n_envs=2", "algo.n_steps=32", output_dir=tmp_path / "run"))
    checkpoint = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    name = next(k for k, t in checkpoint["state_dict"].items() if t.is_floating_point())
    checkpoint["state_dict"][name].fill_(float("nan"))
    torch.save(checkpoint, tmp_path / "nan.ckpt")
    return [f"ckpt_path={tmp_path / 'nan.ckpt'}"]


def counting_env_checkpoint(tmp_path, make_cfg):
    from rlcamp.train import train

    run = ["total_env_steps=64", "env.n_envs=2", "algo.n_steps=32", "env.id=tests.helpers.envs:CountingEnv"]
    train(make_cfg(*run, output_dir=tmp_path / "run"))
    return [f"ckpt_path={tmp_path / 'run/checkpoints/last.ckpt'}", "video=true"]


EVAL_CASES = {
    "missing_ckpt_path": (
        lambda tmp, make_cfg: [],
        "rlcamp-eval: ckpt_path is required: rlcamp-eval ckpt_path=",
    ),
    "zero_episodes": (
        lambda tmp, make_cfg: ["ckpt_path=x.ckpt", "n_episodes=0"],
        "rlcamp-eval: n_episodes=0: evaluate at least 1 episode",
    ),
    "zero_step_cap": (
        lambda tmp, make_cfg: ["ckpt_path=x.ckpt", "max_episode_steps=0"],
        "rlcamp-eval: max_episode_steps=0: cap episodes at 1 step or more",
    ),
    "cuda_without_cuda": (
        lambda tmp, make_cfg: ["ckpt_path=x.ckpt", "device=cuda"],
        "rlcamp-eval: device=cuda but torch",
    ),
    "nan_weights": (nan_weights_checkpoint, "holds non-finite weights"),
    "video_of_an_env_without_frames": (
        counting_env_checkpoint,
        "rlcamp-eval: video=true but tests.helpers.envs:CountingEnv cannot render rgb_array frames",
    ),
}


@pytest.mark.parametrize("case", list(EVAL_CASES))
def test_rlcamp_eval_bad_input_is_one_line(case, tmp_path, make_cfg, monkeypatch):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rlcamp.evaluate import CONF_DIR, hydra_main

    overrides, expected = EVAL_CASES[case]
    overrides = overrides(tmp_path, make_cfg)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("eval", overrides=[*overrides, f"paths.output_dir={tmp_path}/eval"])
    with pytest.raises(SystemExit) as exit_info:
        hydra_main(cfg)
    message = str(exit_info.value.code)
    assert expected in message and "\n" not in message, message
    assert not (tmp_path / "eval" / "eval.json").exists()
