"""``rlcamp-train [-m] <overrides> --jobs``: a multirun's jobs, listed without running them.

The jobs are those Hydra's basic sweeper hands to the launcher (basic, joblib, submitit, SLURM
alike): the product of the config's ``hydra.sweeper.params`` (an ``experiment=`` file's sweep) and
the command line's sweeps, in launch order. Each job is composed, so its key settings are shown
resolved, and a job that does not compose is named in one line.
"""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlcamp.errors import ConfigError
from rlcamp.utils.conf import CONF_DIR, algo_name

JOBS_FLAG = "--jobs"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _is_hydra(override: str) -> bool:
    key = override.lstrip("+~").split("=", 1)[0]
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def _compose(overrides: list[str], hydra: bool = False) -> DictConfig:
    try:
        return compose("train", overrides=overrides, return_hydra_config=hydra)
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(f"{' '.join(overrides)}: {str(error).splitlines()[0]}") from None


def sweep_jobs(arguments: list[str]) -> tuple[DictConfig, list[list[str]]]:
    """``(sweep config, jobs)``: the config that holds the sweep's ``hydra`` node, and each job's
    overrides in the order the basic sweeper launches them. Call inside ``initialize_config_dir``."""
    overrides = [a for a in arguments if "=" in a and not a.startswith("-")]
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(overrides)
    except HydraException as error:
        raise ConfigError(str(error).splitlines()[0]) from None
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweep = _compose(fixed, hydra=True)
    if sweep.hydra.sweeper._target_ != BASIC_SWEEPER:
        raise ConfigError(
            f"{sweep.hydra.sweeper._target_.rsplit('.', 1)[-1]} picks its trials as it runs: there is no "
            "job list to show; drop --jobs to run it"
        )
    params = [f"{key}={value}" for key, value in (sweep.hydra.sweeper.params or {}).items()]
    task = [o for o in overrides if not _is_hydra(o)]
    try:
        (jobs,) = BasicSweeper.split_arguments(parser.parse_overrides([*params, *task]), None)
    except HydraException as error:
        raise ConfigError(str(error).splitlines()[0]) from None
    return sweep, jobs


def sweep_note(arguments: list[str]) -> str:
    """One line when ``--cfg`` would show a config whose ``hydra.sweeper.params`` make it a sweep
    (an ``experiment=`` file's): the shown config lacks the swept values; empty otherwise."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        overrides = [a for a in arguments if "=" in a and not a.startswith("-")]
        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
            sweep = compose("train", [o.input_line for o in parsed if not o.is_sweep_override()], True)
        except (HydraException, OmegaConfBaseException):
            return ""  # Hydra itself reports a config that does not compose
    params = dict(sweep.hydra.sweeper.get("params") or {})
    if not params:
        return ""
    swept = ", ".join(params)
    return (
        f"rlcamp-train: this config sweeps {swept} (hydra.sweeper.params): --cfg shows it before the "
        "sweep's values; list the jobs with --jobs"
    )


def key_settings(cfg: DictConfig) -> str:
    """What a job trains, resolved: algorithm, env id, seed, budget, rollout shape, learning rate."""

    def get(key: str) -> Any:
        return OmegaConf.select(cfg, key, default=None)

    return (
        f"{algo_name(str(get('algo._target_')))} on {get('env.id')}, seed {get('seed')}, "
        f"{get('total_env_steps')} env steps, {get('env.n_envs')} envs × {get('algo.n_steps')} steps, "
        f"lr {get('algo.optimizer.lr')}"
    )


def swept(jobs: list[list[str]]) -> list[list[str]]:
    """Each job's overrides that are not the same in every job (all of them for one job)."""
    if len(jobs) < 2:
        return jobs
    common = set.intersection(*map(set, jobs))
    return [[o for o in job if o not in common] for job in jobs]


def preview(arguments: list[str]) -> list[str]:
    """The lines of ``--jobs``: a header (job count, launcher, where the jobs would write), then one
    line per job: its number, its swept overrides and its key settings."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        sweep, jobs = sweep_jobs(arguments)
        hydra_overrides = [a for a in arguments if "=" in a and not a.startswith("-") and _is_hydra(a)]
        settings = [key_settings(_compose([*job, *hydra_overrides])) for job in jobs]
    launcher = str(sweep.hydra.launcher._target_).rsplit(".", 1)[-1]
    where = f"{sweep.paths.log_dir}/{sweep.task_name}/multiruns/<timestamp>/<job>"
    lines = [f"{len(jobs)} job(s), launcher {launcher}, none run (drop --jobs to run them); outputs: {where}"]
    width = len(str(len(jobs) - 1))
    for number, (shown, setting) in enumerate(zip(swept(jobs), settings, strict=True)):
        lines.append(f"{number:>{width}}  {' '.join(shown) or '(no overrides)'}  ->  {setting}")
    return lines


def main(arguments: list[str]) -> int:
    """Print the preview of ``arguments`` (the command line, ``--jobs`` included); 1 on a bad input."""
    try:
        lines = preview([a for a in arguments if a != JOBS_FLAG])
    except ConfigError as error:
        print(f"rlcamp-train: error: {error}")
        return 1
    print("\n".join(lines))
    return 0
