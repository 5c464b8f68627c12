"""The env-step progress bar keeps the budget's total readable in a narrow terminal."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console
from rich.progress import Progress

from rlcamp.callbacks.progress import EnvStepProgressBar, budget_note, progress_columns


def test_the_bar_shows_the_whole_budget_at_80_columns():
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    progress = Progress(*progress_columns(100000), console=console, expand=True)
    progress.add_task("PPO", total=100000, completed=51200, sps=1234.0, ret=-123.45)
    console.print(progress.make_tasks_table(progress.tasks))
    line = console.file.getvalue()
    assert "51200/100000 env steps" in line and "return -123.45" in line and "…" not in line


def test_the_bars_total_is_what_the_run_trains_and_an_overshoot_gets_one_line(caplog):
    """10k env steps of Acrobot's tuned PPO (16 envs × 256 steps): 3 rollouts, 12288 env steps."""
    assert budget_note(8192, 4096) == ""
    module = SimpleNamespace(rollout_size=4096, hparams=SimpleNamespace(total_env_steps=10000), env_steps=0)
    bar = EnvStepProgressBar()
    bar.on_train_start(SimpleNamespace(is_global_zero=True, world_size=1), module)
    try:
        assert bar._progress.tasks[0].total == 12288
    finally:
        bar._stop()
    assert caplog.messages == [
        "total_env_steps=10000 is not a whole number of rollouts of 4096 env steps (n_envs × n_steps): "
        "the run trains 3 rollouts, 12288 env steps"
    ]
