"""Shared fixtures: quiet, headless, offline, single-threaded, and a Hydra config builder."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def make_cfg(tmp_path):
    """Compose ``conf/train.yaml`` with overrides, writing into ``tmp_path``."""
    from tests.helpers.config import compose_train

    def _make(*overrides: str, output_dir=None):
        return compose_train(list(overrides), output_dir or tmp_path)

    return _make


def _share_group(item: pytest.Item) -> tuple:
    """A module's ``SHARED_PARAMS`` (tests/test_configs.py: its cached composition per algo × env):
    its tests with equal values of them form one group; any other test is a group of its own."""
    names = getattr(getattr(item, "module", None), "SHARED_PARAMS", ())
    params = getattr(getattr(item, "callspec", None), "params", {})
    if not names or not any(name in params for name in names):
        return (item.nodeid,)
    return (item.path, *(str(params.get(name)) for name in names))


# The longest tests, longest first (about 55-9 s each on a 2-core machine, as measured in a run of
# the whole suite): they start before the other slow ones, so the end of the run holds only short
# tests for the workers to share out (--dist worksteal: an idle worker takes the end of a busy one's
# queue). A test missing here only starts later among the slow ones. A learning claim's time depends
# on how many of its seeds pass on the machine and how soon (a failing seed runs its whole budget:
# ACKTR CartPole's 100k steps take ~40 s), so the order is a guess for other machines, never a
# requirement.
LONGEST_FIRST = (
    "tests/algos/test_actor_critic.py::test_q_weighted_actor_critic_learns_cartpole",
    "tests/algos/test_acktr.py::test_acktr_learns_cartpole",
    "tests/test_extending_example.py::test_the_guides_files_in_conf_keep_the_config_checks_green",
    "tests/test_sweeps.py::test_submitit_local_2x2",
    "tests/test_sweeps.py::test_optuna_search_finishes_writes_best_params_and_resumes",
    "tests/test_resume.py::test_slurm_requeue_pattern_end_to_end",
    "tests/algos/test_actor_critic.py::test_advantage_weighted_actor_critic_solves_cartpole",
    "tests/algos/test_a2c.py::test_a2c_learns_cartpole",
    "tests/algos/test_ppo.py::test_ppo_learns_pendulum",
    "tests/test_zoo.py::test_the_report_from_the_committed_record_reproduces_the_committed_tables",
    "tests/test_ddp.py::test_two_rank_ppo_solves_cartpole_within_the_single_process_budget",
    "tests/test_run_dir.py::test_refused_and_nothing_to_do_commands_leave_the_run_folder_byte_for_byte",
    "tests/algos/test_trpo.py::test_trpo_balances_inverted_pendulum_within_50k_steps",
    "tests/algos/test_trpo.py::test_trpo_solves_cartpole_within_100k_steps",
    "tests/algos/test_ppo_kl.py::test_ppo_kl_penalty_solves_cartpole_within_100k_steps",
    "tests/test_resume.py::test_sigkill_mid_run_then_resume_with_ckpt_path_last",
    "tests/test_sweeps.py::test_basic_launcher_2x2_one_wandb_group_and_a_table",
    "tests/test_resume.py::test_multirun_requeued_with_ckpt_path_last_resumes_each_job_from_its_own",
    "tests/nn/test_recurrent.py::test_recurrent_ppo_learns_cartpole_without_velocities",
    "tests/test_compare.py::test_a_real_multirun_is_compared",
    "tests/test_ddp.py::test_ranks_started_by_srun_find_each_other_through_the_slurm_environment",
    "tests/nn/test_encoders.py::test_a_pixel_path_that_scales_twice_does_not_read_the_pixels",
    "tests/test_ddp.py::test_a_hydra_multirun_of_two_rank_runs_completes_every_job",
    "tests/nn/test_encoders.py::test_trpo_reads_the_pixels",
    "tests/test_ddp.py::test_a_second_ctrl_c_ends_a_two_rank_run_within_seconds",
    "tests/envs/test_minatar.py::test_ppo_learns_minatar_breakout",
    "tests/algos/test_ppo.py::test_ppo_solves_cartpole_within_100k_steps",
    "tests/test_guards.py::test_failing_jobs_of_a_multirun_are_recorded_and_the_others_finish",
    "tests/test_secrets.py::test_planted_keys_appear_in_no_file_of_the_run",
    "tests/envs/test_minigrid.py::test_ppo_learns_minigrid_doorkey",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests marked slow (learning claims, end-to-end runs: up to minutes each) first, the
    ``LONGEST_FIRST`` in its order, the rest after them in their order: under ``pytest -n auto``
    the workers then share out the short tests at the end instead of one worker finishing a long
    one while the others wait.

    Tests of one share group (``_share_group``) run one after another from where the first of them
    stood, so under xdist they land on one worker and read what it cached for the first."""
    rank = {nodeid: position for position, nodeid in enumerate(LONGEST_FIRST)}
    first: dict[tuple, int] = {}
    for index, item in enumerate(items):
        first.setdefault(_share_group(item), index)
    items.sort(
        key=lambda item: (
            item.get_closest_marker("slow") is None,
            rank.get(item.nodeid, len(rank)),
            first[_share_group(item)],
        )
    )
