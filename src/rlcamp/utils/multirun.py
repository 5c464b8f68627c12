"""A Hydra callback that tells where a multirun writes and ends with a table of its jobs; and
whether this job is one of a multirun (``is_multirun``).

Registered in ``conf/hydra/default.yaml`` under ``hydra.callbacks``. The table is read from the
jobs' ``summary.json`` files, so it works the same with every launcher (basic, joblib, submitit)
and with the Optuna sweeper.
"""

from __future__ import annotations

import json
import math
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


def is_multirun() -> bool:
    """Whether the running Hydra job is one of a multirun (``-m``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def job_dirs(sweep_dir: str | Path) -> list[Path]:
    """The job directories of a sweep (those with a ``.hydra/`` folder), in job order."""
    dirs = [p.parent.parent for p in Path(sweep_dir).glob("**/.hydra/overrides.yaml")]
    return sorted(dirs, key=lambda p: (len(p.parts), int(p.name) if p.name.isdigit() else math.inf, p.name))


def _short(override: str) -> str:
    """``a.b.key=value`` as ``key=value``, a long float value cut to 4 significant digits."""
    key, sep, value = override.partition("=")
    if not sep:
        return override
    key = key.rsplit(".", 1)[-1]
    try:
        return f"{key}={float(value):.4g}" if len(value) > 8 else f"{key}={value}"
    except ValueError:
        return f"{key}={value}"


def job_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per job: directory, overrides, status, final return, env steps, wall time.

    ``overrides`` holds only what differs between the jobs (the swept values).
    """
    dirs = job_dirs(sweep_dir)
    overrides = [[str(o) for o in OmegaConf.load(d / ".hydra" / "overrides.yaml")] for d in dirs]
    common = set.intersection(*map(set, overrides)) if len(overrides) > 1 else set()
    rows = []
    for job_dir, job_overrides in zip(dirs, overrides, strict=True):
        summary_file = job_dir / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        rows.append(
            {
                "job": str(job_dir.relative_to(sweep_dir)),
                "overrides": " ".join(_short(o) for o in job_overrides if o not in common),
                "status": summary.get("status", "no summary.json"),
                "error": summary.get("error") or summary.get("stop_reason") or summary.get("preempted_by"),
                "return": summary.get("ep_return_mean"),
                "eval_return": summary.get("eval_return_mean"),
                "env_steps": summary.get("env_steps"),
                "wall_seconds": summary.get("wall_seconds"),
            }
        )
    return rows


def jobs_outcome(rows: list[dict[str, Any]]) -> str:
    """``3/5 jobs completed (1 stopped, 1 failed)``: only a completed job spent its whole budget."""
    counts = Counter(row["status"] for row in rows if row["status"] != "completed")
    done = len(rows) - sum(counts.values())
    others = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return f"{done}/{len(rows)} jobs completed" + (f" ({others})" if others else "")


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _error(error: str | None, width: int = 80) -> str:
    """``: <error>`` cut to ``width`` characters, escaped for rich markup."""
    from rich.markup import escape

    if not error:
        return ""
    return ": " + escape(error if len(error) <= width else error[: width - 1] + "…")


def render_table(sweep_dir: str | Path, rows: list[dict[str, Any]]) -> Any:
    """A ``rich`` table of ``rows``: the eval column appears only when some job evaluated."""
    from rich.table import Table

    with_eval = any(row["eval_return"] is not None for row in rows)
    table = Table(title=f"multirun {sweep_dir}", title_justify="left")
    table.add_column("job", justify="right")
    table.add_column("overrides", overflow="fold")
    table.add_column("status")
    table.add_column("final return", justify="right")
    if with_eval:
        table.add_column("eval return", justify="right")
    table.add_column("env steps", justify="right")
    table.add_column("time", justify="right")
    for row in rows:
        ok = row["status"] == "completed"
        cells = [
            row["job"],
            row["overrides"],
            f"[green]{row['status']}[/]" if ok else f"[red]{row['status']}[/]" + _error(row["error"]),
            _fmt(row["return"], ".2f"),
            *([_fmt(row["eval_return"], ".2f")] if with_eval else []),
            _fmt(row["env_steps"], ","),
            _fmt(row["wall_seconds"], ".1f") + ("s" if row["wall_seconds"] is not None else ""),
        ]
        table.add_row(*cells)
    return table


def _sqlite_path(storage: Any) -> Path | None:
    """The file of a ``sqlite:///<path>`` storage URL (None for other storages)."""
    if isinstance(storage, str) and storage.startswith("sqlite:///"):
        return Path(storage[len("sqlite:///") :])
    return None


class MultirunReport(Callback):
    """At the start of a multirun, print its output directory; at the end, a table of its jobs and
    the command that compares them, whole on its own line.

    The table shows at most ``max_rows`` jobs (the first ones) so it fits one screen. The callback
    also creates the directory of an SQLite sweeper storage (Optuna's ``hydra.sweeper.storage``),
    which SQLite does not do itself.
    """

    def __init__(self, max_rows: int = 30) -> None:
        self.max_rows = max_rows

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from rich.console import Console

        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        db = _sqlite_path(OmegaConf.select(config, "hydra.sweeper.storage"))
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        Console().print(
            f"[bold]multirun[/] outputs: {sweep_dir}/<job>/  (summary.json, metrics.csv, checkpoints/)",
            soft_wrap=True,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from rich.console import Console

        sweep_dir = Path(config.hydra.sweep.dir)
        rows = job_rows(sweep_dir)
        console = Console()
        console.print(render_table(sweep_dir, rows[: self.max_rows]))
        if len(rows) > self.max_rows:
            console.print(
                f"... and {len(rows) - self.max_rows} more jobs (each has its summary.json)", soft_wrap=True
            )
        console.print(f"{jobs_outcome(rows)}; outputs in {sweep_dir}", soft_wrap=True)
        print(f"compare:  rlcamp-compare {shlex.quote(str(sweep_dir))}", flush=True)
