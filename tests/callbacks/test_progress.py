"""The env-step progress bar keeps the budget's total readable in a narrow terminal."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from rlcamp.callbacks.progress import progress_columns


def test_the_bar_shows_the_whole_budget_at_80_columns():
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    progress = Progress(*progress_columns(100000), console=console, expand=True)
    progress.add_task("PPO", total=100000, completed=51200, sps=1234.0, ret=-123.45)
    console.print(progress.make_tasks_table(progress.tasks))
    line = console.file.getvalue()
    assert "51200/100000 env steps" in line and "return -123.45" in line and "…" not in line
