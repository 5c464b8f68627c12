"""docs/extending.md's worked example: its Python block defines a complete algorithm, and its YAML
blocks, as files on a Hydra search path, train."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from examples.extending import AdvantageWeightedPG, Corridor

from rlcamp.algos.base import OnPolicyAlgorithm
from rlcamp.train import train
from tests.helpers.docs import run_python_blocks

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"


def test_the_extending_guide_python_blocks_are_the_example_that_trains():
    names = run_python_blocks(DOC)
    algo, env = names["AdvantageWeightedPG"], names["Corridor"]
    assert issubclass(algo, OnPolicyAlgorithm) and not inspect.isabstract(algo)
    # the page's loss and env compile to the same code as examples/extending.py's, which the next test trains
    assert algo.compute_loss.__code__.co_code == AdvantageWeightedPG.compute_loss.__code__.co_code
    for method in ("__init__", "reset", "step"):
        assert getattr(env, method).__code__.co_code == getattr(Corridor, method).__code__.co_code, method


def guide_files() -> list[tuple[str, str, str]]:
    """The page's YAML blocks as ``(group, name, body)``, from their ``# conf/<group>/<name>.yaml``
    headers."""
    return re.findall(r"```yaml\n# conf/(\w+)/(\w+)\.yaml\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_guides_command_matches_where_its_files_go():
    """The files say ``conf/...``: the plain command takes them there, the search-path one from my_conf/."""
    commands = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    run = [c.strip() for c in commands if "rlcamp-train" in c]
    assert (
        run[0]
        == "PYTHONPATH=$PWD rlcamp-train algo=awpg env=corridor network=mlp_small total_env_steps=20000"
    )
    assert "hydra.searchpath=[file://$PWD/my_conf]" in run[1]
    assert all(f"`my_conf/{group}/`" in DOC.read_text() for group, _, _ in guide_files())


@pytest.mark.slow
def test_the_guides_files_in_conf_keep_the_config_checks_green(tmp_path):
    """The page's three files put into a copy of conf/ (which it allows): tests/test_configs.py's
    checks of every algo × env, family and network run on them and pass (~40 s)."""
    for part in ("src", "conf", "tests", "examples"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for group, name, body in guide_files():
        (tmp_path / "conf" / group / f"{name}.yaml").write_text(body)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_configs.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rA",
            "-k",
            "awpg or corridor or mlp_small or groups_exist or is_used",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{tmp_path / 'src'}{os.pathsep}{tmp_path}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    passed = {line.split("::", 1)[1] for line in result.stdout.splitlines() if line.startswith("PASSED ")}
    assert {
        "test_every_algo_env_gets_its_family_settings[awpg-corridor]",
        "test_combination_builds_the_module_it_composes[awpg-corridor]",
        "test_network_choice_builds_that_network[mlp_small]",
        "test_config_groups_exist",
    } <= passed, sorted(passed)


def test_the_extending_guide_example_trains(make_cfg, tmp_path):
    blocks = guide_files()
    assert {(group, name) for group, name, _ in blocks} == {
        ("algo", "awpg"),
        ("env", "corridor"),
        ("network", "mlp_small"),
    }
    for group, name, body in blocks:
        (tmp_path / "conf" / group).mkdir(parents=True, exist_ok=True)
        (tmp_path / "conf" / group / f"{name}.yaml").write_text(body)
    cfg = make_cfg(
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "algo=awpg",
        "env=corridor",
        "network=mlp_small",
        "total_env_steps=20000",
        "debug=default",
        output_dir=tmp_path / "run",
    )
    summary, module = train(cfg)
    assert (
        type(module).__name__ == "AdvantageWeightedPG"
        and module.env_factory.id == "examples.extending:Corridor"
    )
    # optimal: 8 steps right, return 1 - 7·0.01 = 0.93; a random walk rarely reaches the end in 50 steps
    assert summary["ep_return_mean"] > 0.85, summary
