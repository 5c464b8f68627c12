"""``rlcamp-train``'s entry point, light on purpose: what returns before a run (``--help``, ``--cfg``,
``--info``, ``--jobs``, a config that does not compose, a value its checks refuse) imports Hydra
(and, for a job, gymnasium) only, not torch or Lightning (5-10 s); :mod:`rlcamp.train` is imported
when a job's config passes the checks that need neither (:func:`rlcamp.config_checks.check_config`,
:func:`rlcamp.envs.checks.check_env_config`).

    rlcamp-train algo=ppo env=hopper seed=3
    rlcamp-train -m algo.optimizer.lr=1e-3,3e-4 seed=1,2,3 --jobs
"""

from __future__ import annotations

import sys

import hydra
from dotenv import find_dotenv, load_dotenv
from omegaconf import DictConfig

from rlcamp.config_checks import check_config
from rlcamp.utils.conf import CONF_DIR
from rlcamp.utils.env_tuning import env_ids, follow_env_id
from rlcamp.utils.failure import end_failed_job
from rlcamp.utils.sweep_preview import JOBS_FLAG, sweep_note
from rlcamp.utils.sweep_preview import main as preview_jobs


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    """One Hydra job; returns ``cfg.optimized_metric`` for sweepers (Optuna), NaN if the job failed.

    A config the light checks refuse ends as every failed job does (``end_failed_job``), before
    torch is imported. The env checks import gymnasium (0.3 s), once the config checks pass."""
    try:
        check_config(cfg)
        from rlcamp.envs.checks import check_env_config

        check_env_config(cfg)
    except Exception as error:
        return end_failed_job(cfg, error)
    from rlcamp.train import run_job

    return run_job(cfg)


MULTIRUN_FLAGS = ("-m", "--multirun")
SHOW_FLAGS = ("-c", "--cfg", "-i", "--info")


def flag_conflict(arguments: list[str]) -> str:
    """The one-line error for flags Hydra ends in a traceback: ``-m`` with ``--cfg``/``--info``, and
    ``--cfg hydra --resolve`` (the hydra node's folders read ``paths.log_dir`` from the job's
    config); empty when the flags go together."""
    if any(a in MULTIRUN_FLAGS for a in arguments) and any(a.split("=")[0] in SHOW_FLAGS for a in arguments):
        return (
            "rlcamp-train: error: --cfg and --info show one job, not a multirun: list the sweep's jobs "
            "with --jobs, or drop -m and pass one job's overrides"
        )
    pairs = zip(arguments[:-1], arguments[1:], strict=True)
    shows_hydra = any(a in ("--cfg", "-c") and b == "hydra" for a, b in pairs)
    if shows_hydra and "--resolve" in arguments:
        return (
            "rlcamp-train: error: --cfg hydra --resolve cannot resolve the run folders, which read "
            "paths.log_dir from the job's config: use --cfg all --resolve, narrowed with -p hydra.run "
            "(or -p hydra.launcher)"
        )
    return ""


def train() -> None:
    """``rlcamp-train``: load ``.env`` (secrets stay in the environment), make an ``env.id`` override
    follow its env's tuning (:func:`follow_env_id`), then run Hydra; with ``--jobs``, list the
    multirun's jobs instead (:mod:`rlcamp.utils.sweep_preview`).

    The ``.env`` is looked up from the working directory upwards (not from the installed package).
    """
    load_dotenv(find_dotenv(usecwd=True), override=False)
    sys.argv[1:], note = follow_env_id(sys.argv[1:], env_ids(CONF_DIR))
    if note:
        print(note, file=sys.stderr)
    if JOBS_FLAG in sys.argv[1:]:
        raise SystemExit(preview_jobs(sys.argv[1:]))
    conflict = flag_conflict(sys.argv[1:])
    if conflict:
        raise SystemExit(conflict)
    if any(a.split("=")[0] in ("-c", "--cfg") for a in sys.argv[1:]):
        note = sweep_note(sys.argv[1:])
        if note:
            print(note, file=sys.stderr)
    hydra_main()


if __name__ == "__main__":
    train()
