"""Wall and CPU seconds of what ``rlcamp-train`` does before a run: ``--cfg job``, refused inputs,
and the import a run pays before its first env step (docs/benchmarks.md, "Start-up").

    python scripts/startup_times.py --repeats 5
    python scripts/startup_times.py --src /path/to/another/checkout/src   # that tree's code, this venv

Each command runs in a fresh process with one torch thread; the figure is the median over
``--repeats`` runs, interleaved command by command. CPU is user + system time of the process and
its children (``os.wait4``'s rusage).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (label, arguments after ``python``); TMP is replaced by a fresh folder per run
COMMANDS = [
    ("rlcamp-train --cfg job", ["-m", "rlcamp.cli", "--cfg", "job"]),
    ("rlcamp-train algo.gamma=1.5 (refused)", ["-m", "rlcamp.cli", "algo.gamma=1.5", "hydra.run.dir=TMP"]),
    (
        "rlcamp-train env.id=CartPol-v1 (refused)",
        ["-m", "rlcamp.cli", "env.id=CartPol-v1", "hydra.run.dir=TMP"],
    ),
    (
        "rlcamp-train +algo.learning_rate=0.1 (refused)",
        ["-m", "rlcamp.cli", "+algo.learning_rate=0.1", "hydra.run.dir=TMP"],
    ),
    ("the import before the first env step (import rlcamp.train)", ["-c", "import rlcamp.train"]),
]


def timed(arguments: list[str], env: dict[str, str]) -> tuple[float, float]:
    """``(wall s, CPU s)`` of ``python <arguments>`` run once, its output discarded."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, *(a.replace("TMP", f"{tmp}/run") for a in arguments)]
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _, _, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--src", type=Path, default=REPO / "src", help="the src/ folder whose code runs")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve()), "OMP_NUM_THREADS": "1"}
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in COMMANDS}
    for _ in range(args.repeats):
        for label, arguments in COMMANDS:
            runs[label].append(timed(arguments, env))
    print(f"| command ({args.src}) | wall s | CPU s |")
    print("|---|---:|---:|")
    for label, times in runs.items():
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        print(f"| `{label}` | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
