"""An ``env.id=...`` override gets the tuning of the env it names, or none.

The per-(algo, env) file ``conf/algo_env/<algo>_<env>.yaml`` and the env family are chosen by the
env *config* (``env=cartpole``), so ``env.id=Acrobot-v1`` alone would train Acrobot with PPO's
CartPole tuning. Before Hydra composes, :func:`follow_env_id` turns an ``env.id`` that a
``conf/env/`` file names into that file's choice (``env=acrobot``), and drops the per-env tuning
(``~algo_env``) for any other id; one line says which.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

ENV_ID = "env.id"


def env_ids(conf_dir: str | Path) -> dict[str, str]:
    """``{env id: env config name}`` of the ``conf/env/`` files that set an id (``CartPole-v1: cartpole``)."""
    ids: dict[str, str] = {}
    for path in sorted(Path(conf_dir, "env").glob("*.yaml")):
        env_id = (yaml.safe_load(path.read_text()) or {}).get("id")
        if isinstance(env_id, str) and env_id != "???":
            ids.setdefault(env_id, path.stem)
    return ids


def _override_key(argument: str) -> str:
    return argument.split("=", 1)[0].lstrip("+~")


def _env_id_values(argument: str) -> list[str] | None:
    """The env ids an ``env.id=...`` argument trains: one, or a plain sweep's list; None for another
    sweep (``range``, ``glob``…)."""
    override = OverridesParser.create().parse_override(argument)
    if not override.is_sweep_override():
        return [str(override.value())]
    if override.is_choice_sweep():
        return list(override.sweep_string_iterator())
    return None


def follow_env_id(arguments: list[str], ids: dict[str, str]) -> tuple[list[str], str]:
    """``(arguments, note)``: the command line with an ``env.id`` override turned into the env config
    that sets that id (``env=acrobot``, replacing any ``env=``), or, when no ``conf/env/`` file sets
    it, with ``~algo_env`` added (no per-env tuning) unless ``algo_env`` is already chosen; the note
    is one line saying which (empty when there is no ``env.id`` override)."""
    overrides = [a for a in arguments if "=" in a and not a.startswith("-")]
    given = [a for a in overrides if _override_key(a) == ENV_ID and not a.startswith("~")]
    if len(given) != 1:
        return arguments, ""
    (argument,) = given
    values = _env_id_values(argument)
    names = [ids.get(value) for value in values] if values is not None else [None]
    if all(names):
        choice = f"env={','.join(dict.fromkeys(n for n in names if n))}"
        kept = [a for a in arguments if a != argument and not (a in overrides and _override_key(a) == "env")]
        note = f"rlcamp-train: {argument} is {choice} (conf/env/), its per-algorithm tuning included"
        return [*kept, choice], note
    if any(_override_key(a) == "algo_env" for a in overrides):
        return arguments, ""
    unknown = ", ".join(v for v, n in zip(values or [argument], names, strict=True) if not n)
    note = (
        f"rlcamp-train: {unknown} is set by no conf/env/ file: trained without a per-(algo, env) "
        "tuning (~algo_env), with the algorithm's defaults for the chosen env config's family"
    )
    return [*arguments, "~algo_env"], note
