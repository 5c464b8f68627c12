"""docs/extending.md's worked example: its Python block defines a complete algorithm, and its YAML
blocks, as files on a Hydra search path, train."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from examples.extending import AdvantageWeightedPG

from rlcamp.algos.base import OnPolicyAlgorithm
from rlcamp.train import train
from tests.helpers.docs import run_python_blocks

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def test_the_extending_guide_python_block_is_the_example_that_trains():
    algo = run_python_blocks(DOC)["AdvantageWeightedPG"]
    assert issubclass(algo, OnPolicyAlgorithm) and not inspect.isabstract(algo)
    # the page's loss compiles to the same code as examples/extending.py's, which the next test trains
    assert algo.compute_loss.__code__.co_code == AdvantageWeightedPG.compute_loss.__code__.co_code


def test_the_extending_guide_example_trains(make_cfg, tmp_path):
    blocks = re.findall(r"```yaml\n# conf/(\w+)/(\w+)\.yaml\n(.*?)```", DOC.read_text(), flags=re.S)
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
