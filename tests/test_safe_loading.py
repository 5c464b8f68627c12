"""Checkpoints load as plain data (``weights_only=True``) and build only rlcamp's own classes: every
algorithm's does, a planted pickle, and a planted ``_target_`` anywhere in the stored config, are
refused."""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from rlcamp.evaluate import run_eval
from rlcamp.rollout.evaluation import evaluate_policy
from rlcamp.train import train
from rlcamp.utils.checkpoint import CheckpointError, load_checkpoint, load_run
from tests.helpers.config import compose_eval, config_options


class Payload:
    """Unpickling this runs ``os.system`` (here: it creates a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def plant(checkpoint_path, marker):
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    checkpoint["rlcamp"]["extra"] = Payload(marker)
    evil = checkpoint_path.with_name("evil.ckpt")
    torch.save(checkpoint, evil, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    return evil


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # the planted pickle's
def test_malicious_pickle_is_refused_everywhere_a_checkpoint_is_read(make_cfg, tmp_path):
    train(make_cfg("total_env_steps=256", "env.n_envs=2", "algo.n_steps=32", output_dir=tmp_path / "run"))
    marker = tmp_path / "pwned"
    evil = plant(tmp_path / "run" / "checkpoints" / "last.ckpt", marker)

    with pytest.raises(CheckpointError, match="contains objects other than tensors and plain data; refusing"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_run(evil)  # what rlcamp-eval uses
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        train(
            make_cfg(
                "total_env_steps=512",
                "env.n_envs=2",
                "algo.n_steps=32",
                f"ckpt_path={evil}",
                output_dir=tmp_path / "resume",
            )
        )
    assert not marker.exists()

    torch.load(evil, weights_only=False)  # what a plain torch.load would have done
    assert marker.exists(), "the planted payload is live: it runs when unpickled without weights_only"


MUJOCO = pytest.mark.skipif(
    importlib.util.find_spec("mujoco") is None,
    reason="the mujoco extra is not installed: pip install -e '.[mujoco]'",
)
ENV_FAMILIES = [
    pytest.param("cartpole", id="classic"),
    pytest.param("inverted_pendulum", id="mujoco", marks=[pytest.mark.mujoco, MUJOCO]),
]


@pytest.mark.parametrize("env", ENV_FAMILIES)
@pytest.mark.parametrize("algo", config_options("algo"))
def test_every_algorithms_checkpoint_loads_evaluates_and_resumes(make_cfg, tmp_path, algo, env):
    """Its hyperparameters are plain data, so ``weights_only=True`` reads every algorithm's checkpoint."""
    tiny = [f"algo={algo}", f"env={env}", "env.n_envs=1", "algo.n_steps=32"]
    train(make_cfg(*tiny, "total_env_steps=32", output_dir=tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"

    module, cfg = load_run(ckpt)
    assert cfg.algo._target_ == make_cfg(*tiny).algo._target_
    result = evaluate_policy(module.policy, module.env_factory, n_episodes=1)
    assert len(result.returns) == 1
    report = run_eval(compose_eval([f"ckpt_path={ckpt}", "n_episodes=1"], tmp_path / "eval"))
    assert report["algo"] == algo and len(report["returns"]) == 1  # the config name, as summary.json
    summary, _ = train(
        make_cfg(*tiny, "total_env_steps=64", f"ckpt_path={ckpt}", output_dir=tmp_path / "resumed")
    )
    assert summary["status"] == "completed" and summary["env_steps"] == 64


def touch_payload(marker):
    """A config node that, instantiated by Hydra, creates ``marker``: ``Path.touch(Path(marker))``."""
    return {
        "_target_": "pathlib.Path.touch",
        "_args_": [{"_target_": "pathlib.Path", "_args_": [str(marker)]}],
    }


def craft(checkpoint_path, where, node, name="crafted.ckpt"):
    """A copy of a real checkpoint (tensors and plain data only), ``node`` set at config path ``where``."""
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    parent = checkpoint["rlcamp"]["config"]
    *path, last = where.split(".")
    for key in path:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    parent[int(last) if isinstance(parent, list) else last] = node
    crafted = checkpoint_path.with_name(name)
    torch.save(checkpoint, crafted)
    return crafted


def test_the_crafted_payload_is_live(tmp_path):
    """What the tests below plant does run when Hydra instantiates it: they would catch a real hole."""
    marker = tmp_path / "pwned"
    hydra.utils.instantiate(OmegaConf.create(touch_payload(marker)))
    assert marker.exists()


# every node a module rebuild instantiates (rlcamp.utils.build.MODULE_NODES), nested ones, and a
# _target_ of a class outside conf/: refused
REFUSED = [
    ("env", lambda payload: payload),
    ("network", lambda payload: payload),
    ("algo", lambda payload: payload),
    ("algo.optimizer", lambda payload: payload),
    ("env.kwargs", lambda payload: {"render_mode": payload}),
    ("algo.optimizer._target_", lambda payload: "os.system"),
    ("network._target_", lambda payload: "rlcamp.nn.actor_critic.ActorCritic"),  # not spelled as conf/ does
]
# the run's record: nodes no loader builds (eval and resume build their own loggers, callbacks and
# trainer): a payload there loads as data and never runs
IGNORED = [
    ("logger.csv", lambda payload: payload),
    ("callbacks.eval", lambda payload: payload),
    ("trainer", lambda payload: payload),
    ("tags", lambda payload: ["dev", payload]),
    ("paths", lambda payload: payload),
    ("resume.allow_changes", lambda payload: [payload]),
]


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    """One short PPO run's ``last.ckpt`` (the crafted checkpoints are copies of it)."""
    from tests.helpers.config import compose_train

    out = tmp_path_factory.mktemp("trust") / "run"
    train(compose_train(["total_env_steps=128", "env.n_envs=2", "algo.n_steps=32", "logger=none"], out))
    return out / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(("where", "plant_at"), REFUSED, ids=[where for where, _ in REFUSED])
def test_a_checkpoint_config_cannot_name_code_to_run(real_checkpoint, where, plant_at, make_cfg, tmp_path):
    """No loader builds a ``_target_`` a checkpoint names itself: eval and resume refuse it in one line."""
    marker = tmp_path / "pwned"
    crafted = craft(real_checkpoint, where, plant_at(touch_payload(marker)), name=f"{where}.ckpt")

    with pytest.raises(CheckpointError, match="which no rlcamp config builds; refusing") as refused:
        load_run(crafted)  # what rlcamp-eval uses
    assert "\n" not in str(refused.value) and f"{where}" in str(refused.value)
    with pytest.raises(CheckpointError, match="which no rlcamp config builds; refusing"):
        train(make_cfg("total_env_steps=256", "env.n_envs=2", "algo.n_steps=32", f"ckpt_path={crafted}"))
    assert not marker.exists()


@pytest.mark.parametrize(("where", "plant_at"), IGNORED, ids=[where for where, _ in IGNORED])
def test_a_payload_in_the_runs_record_never_runs(real_checkpoint, where, plant_at, make_cfg, tmp_path):
    """Eval and resume of a checkpoint with a payload in a node no loader builds: both work, nothing runs."""
    from rlcamp.rollout.evaluation import evaluate_policy

    marker = tmp_path / "pwned"
    crafted = craft(real_checkpoint, where, plant_at(touch_payload(marker)), name=f"{where}.ckpt")
    module, _ = load_run(crafted)
    evaluate_policy(module.policy, module.env_factory, n_episodes=1, seed=0)
    overrides = ["total_env_steps=256", "env.n_envs=2", "algo.n_steps=32", "logger=none"]
    summary, _ = train(make_cfg(*overrides, f"ckpt_path={crafted}", "resume.allow_changes=[tags]"))
    assert summary["env_steps"] == 256
    assert not marker.exists()


def test_a_checkpoint_config_cannot_hold_an_interpolation(real_checkpoint):
    """rlcamp stores resolved configs: a planted ``${oc.env:...}`` would copy the environment into a run."""
    crafted = craft(real_checkpoint, "tags", ["${oc.env:HOME}"])
    with pytest.raises(CheckpointError, match=r"holds an interpolation at tags\.0"):
        load_run(crafted)


def test_trusted_targets_let_a_users_own_class_through(real_checkpoint):
    """A class of the user's own is refused by default and built once named in ``trusted``."""
    own = "rlcamp.nn.actor_critic.ActorCritic"
    crafted = craft(real_checkpoint, "network._target_", own)
    with pytest.raises(CheckpointError, match=rf"trusted_targets=\[{own}\]"):
        load_run(crafted)
    module, _ = load_run(crafted, trusted=[own])
    assert type(module.policy).__name__ == "ActorCritic"


def test_any_torch_optimizer_is_trusted(make_cfg, tmp_path):
    """``algo.optimizer._target_`` may name any ``torch.optim`` optimizer (not only conf/'s three)."""
    train(
        make_cfg(
            "total_env_steps=128",
            "env.n_envs=2",
            "algo.n_steps=32",
            "algo.optimizer._target_=torch.optim.AdamW",
        )
    )
    module, cfg = load_run(tmp_path / "checkpoints" / "last.ckpt")
    assert cfg.algo.optimizer._target_ == "torch.optim.AdamW"


@pytest.mark.slow
def test_rlcamp_eval_refuses_a_crafted_checkpoint_in_one_line_and_writes_nothing(real_checkpoint, tmp_path):
    marker = tmp_path / "pwned"
    crafted = craft(real_checkpoint, "env", touch_payload(marker))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcamp.evaluate",
            f"ckpt_path={crafted}",
            f"paths.log_dir={tmp_path / 'logs'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rlcamp-eval: ") and "which no rlcamp config builds; refusing" in line
    assert not marker.exists()
    assert not list((tmp_path / "logs").rglob("eval.json"))
