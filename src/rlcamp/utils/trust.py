"""What a checkpoint's stored config may build: the classes rlcamp's own ``conf/`` names, never
one the checkpoint names itself.

``torch.load(weights_only=True)`` keeps pickles out of a checkpoint, but rebuilding its module
hands the stored config to ``hydra.utils.instantiate``, which imports and calls whatever a
``_target_`` names (``pathlib.Path.write_text``, ``os.system``, ...). So before a stored config is
used, every ``_target_`` in the nodes that are built must be one of the project's
(``project_targets``) or one the caller trusts explicitly, and no value may be an interpolation
(``${...}``): rlcamp stores configs resolved, so one is planted, and a resolver could read the
environment into the run's record.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from rlcamp.errors import CheckpointError

TARGET = "_target_"


def config_leaves(config: Any, where: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(dotted path, key, value)`` for every entry of a nested dict/list config, depth first."""
    items = config.items() if isinstance(config, dict) else enumerate(config)
    for key, value in items:
        path = f"{where}.{key}" if where else str(key)
        yield path, key, value
        if isinstance(value, (dict, list)):
            yield from config_leaves(value, path)


def targets_of(config: Any) -> set[str]:
    """Every string ``_target_`` named anywhere in a nested plain-data config."""
    if not isinstance(config, (dict, list)):
        return set()
    return {value for _, key, value in config_leaves(config) if key == TARGET and isinstance(value, str)}


@functools.cache
def project_targets() -> frozenset[str]:
    """The ``_target_`` of every file in rlcamp's ``conf/``: all that rlcamp itself builds."""
    from rlcamp.utils.build import CONF_DIR

    targets: set[str] = set()
    for file in sorted(Path(CONF_DIR).rglob("*.yaml")):
        targets |= targets_of(yaml.safe_load(file.read_text()) or {})
    return frozenset(targets)


def is_torch_optimizer(target: str) -> bool:
    """``torch.optim.<Name>`` naming an ``Optimizer`` subclass (``algo.optimizer._target_`` may be any),
    looked up on the imported module: nothing is imported."""
    import torch

    module, _, name = target.rpartition(".")
    optimizer = getattr(torch.optim, name, None) if module == "torch.optim" else None
    return isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)


def is_trusted(target: Any, trusted: Iterable[str] = ()) -> bool:
    """A ``_target_`` that a checkpoint may build: rlcamp's own, a torch optimizer, or ``trusted``."""
    if not isinstance(target, str):
        return False
    return target in project_targets() or target in set(trusted) or is_torch_optimizer(target)


def check_trusted_config(config: dict[str, Any], path: str | Path, trusted: Iterable[str] = ()) -> None:
    """Refuse a stored config in one line naming the node, before anything in it is imported or called:
    a ``_target_`` that ``is_trusted`` rejects in a node a rebuild instantiates (``MODULE_NODES``),
    or an interpolation anywhere (a rebuild resolves the whole config).

    The other nodes (loggers, callbacks, trainer, ...) are the run's record: no loader builds them
    (eval and resume build their own from the command line), so a class of the user's own there
    does not make the checkpoint unloadable.
    """
    from rlcamp.utils.build import MODULE_NODES

    trusted = set(trusted)
    for where, key, value in config_leaves(config):
        if key == TARGET and where.split(".")[0] in MODULE_NODES and not is_trusted(value, trusted):
            raise CheckpointError(
                f"{path} names {where}={value!r}, which no rlcamp config builds; refusing to load it "
                "(evaluate only checkpoints you trust; for a class of your own pass "
                f"trusted_targets=[{value}])"
            )
        if isinstance(value, str) and "${" in value:
            raise CheckpointError(
                f"{path} holds an interpolation at {where} ({value!r}), which rlcamp never stores; "
                "refusing to load it (evaluate only checkpoints rlcamp-train wrote)"
            )
