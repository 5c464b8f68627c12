"""Where the project's Hydra configs live, and the names read from them (no heavy imports)."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

CONF_DIR = str(Path(__file__).resolve().parents[3] / "conf")


@functools.cache
def algo_names() -> dict[str, str]:
    """``{_target_: config name}`` of the ``conf/algo/`` files (``rlcamp.algos.PPOKL: ppo_kl``)."""
    names: dict[str, str] = {}
    for path in sorted(Path(CONF_DIR, "algo").glob("*.yaml")):
        target = (yaml.safe_load(path.read_text()) or {}).get("_target_")
        if isinstance(target, str):
            names.setdefault(target, path.stem)
    return names


def algo_name(target: str) -> str:
    """The name an algorithm is shown by: the ``conf/algo/`` config it is chosen by (``actor_critic``
    for ``rlcamp.algos.QActorCritic``), else its class name in lower case."""
    return algo_names().get(target, target.rsplit(".", 1)[-1].lower())
