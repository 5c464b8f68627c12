"""Lightning's DDP strategy with the run state handed back to the launching process.

``strategy=ddp_fork`` / ``ddp_spawn`` train in child processes and return only rank 0's weights and
``callback_metrics`` to the process that called ``fit`` (Lightning's ``_MultiProcessingLauncher``),
so that process would report a run of 0 env steps. ``RunStateDDPStrategy`` uses Lightning's own
launcher through its documented extension points (``get_extra_results`` /
``update_main_process_results``) to bring back the module's run state
(``handoff_state``) and the callbacks' pre-emption signal. When the ranks are
started outside (srun under SLURM, torchrun) it launches nothing, like ``strategy=ddp``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies import DDPStrategy, Strategy
from pytorch_lightning.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from pytorch_lightning.trainer.call import _interrupt
from torch.multiprocessing import ProcessExitedException, ProcessRaisedException

from rlcamp import errors
from rlcamp.utils.summary import RunClock

if TYPE_CHECKING:
    from rlcamp.rollout import EpisodeStats

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
# the exit status of a process stopped at once by a second Ctrl-C
INTERRUPTED_EXIT_CODE = 128 + signal.SIGINT
# seconds the ranks get to end by themselves after a second Ctrl-C before they are killed
RANK_GRACE_SECONDS = 5.0


def rank_seed(seed: int, rank: int, *salt: int) -> int:
    """A seed of rank ``rank``'s random streams, from ``(seed, rank, *salt)`` (rank 0 of a run keeps
    the single-process streams; this seeds the others, and a rank a resumed checkpoint lacks)."""
    return int(np.random.SeedSequence([seed, rank, *salt]).generate_state(1)[0])


def share_normalizers(strategy: Strategy, *normalizers: Any) -> None:
    """Merge the running statistics of ``normalizers`` (``None`` skipped) over ranks at every update,
    through the strategy's all-gather, so all ranks normalize alike."""
    for normalizer in normalizers:
        if normalizer is not None:
            normalizer.rms.gather = strategy.all_gather


def all_ranks_episode_metrics(strategy: Strategy, stats: EpisodeStats, sps: float) -> dict[str, float]:
    """Episode statistics over every rank's window, the episode count of all ranks and the slowest
    rank's steps/s (``env_steps`` already counts every rank): one sum and one max all-reduce."""
    local = [sum(stats.returns), sum(stats.lengths), len(stats.returns), stats.episodes]
    sums = strategy.reduce(torch.tensor(local, dtype=torch.float64), reduce_op="sum")
    returns, lengths, finished, episodes = sums.tolist()
    slowest = strategy.reduce(torch.tensor(-sps, dtype=torch.float64), reduce_op="max")
    return {
        "rollout/ep_return_mean": returns / finished if finished else float("nan"),
        "rollout/ep_len_mean": lengths / finished if finished else float("nan"),
        "rollout/episodes": episodes,
        "time/sps": -float(slowest),
    }


def handoff_state(module: pl.LightningModule) -> dict[str, Any]:
    """What ``module.summary()`` reads, as plain data: returned by a fork/spawn rank 0 to the process
    that called ``fit`` (``RunStateLauncher``)."""
    return {
        "env_steps": module.env_steps,
        "episode_stats": module.episode_stats.state(),
        "wall_seconds": module.clock.wall_seconds,
        "last_metrics": dict(module.last_metrics),
    }


def load_handoff_state(module: pl.LightningModule, state: dict[str, Any]) -> None:
    module.env_steps = int(state["env_steps"])
    module.episode_stats.load_state(state["episode_stats"])
    module.clock = RunClock(seconds_before=float(state["wall_seconds"]), start=time.perf_counter())
    module.last_metrics = dict(state["last_metrics"])


def rank_error(error: ProcessRaisedException) -> BaseException:
    """The ``rlcamp.errors`` error a rank raised, rebuilt from the traceback text torch hands to
    the main process, so that it is reported as in a single process (one line); any other error
    is returned as it is."""
    lines = error.msg.strip().splitlines()
    name, _, message = (lines[-1] if lines else "").partition(": ")
    module, _, class_name = name.rpartition(".")
    cls = getattr(errors, class_name, None) if module == errors.__name__ else None
    return cls(message) if isinstance(cls, type) and issubclass(cls, Exception) else error


class RunStateLauncher(_MultiProcessingLauncher):
    """Lightning's fork/spawn launcher that also returns rank 0's run state to the main process.

    While the ranks run, the main process does not die of a pre-emption signal: on
    ``KeyboardInterrupt`` Lightning's launcher SIGKILLs the ranks, which would lose the checkpoint
    each rank writes at the end of its rollout (``EnvStepCheckpoint``). SIGTERM/SIGUSR1 sent to the
    main process alone are passed on to the ranks; SIGINT (Ctrl-C reaches the whole process group,
    ranks included) is left to them. A forked rank inherits these handlers until its own are set,
    and there they do nothing.

    A second Ctrl-C stops the run within seconds: each rank ends with ``KeyboardInterrupt``
    (``_wrapping_function``), and the main process stops waiting for the ranks, gives them
    ``RANK_GRACE_SECONDS`` to exit, kills those left and raises ``KeyboardInterrupt`` itself. So
    does any signal that arrives once no rank is left to receive it. A rank's ``rlcamp.errors``
    error is raised again in the main process (``rank_error``).
    """

    def launch(self, function: Callable, *args: Any, trainer: pl.Trainer | None = None, **kwargs: Any) -> Any:
        main_pid = os.getpid()
        self.procs = []
        interrupts = 0

        def forward(signum: int, frame: Any) -> None:
            nonlocal interrupts
            if os.getpid() != main_pid:
                return
            interrupts += signum == signal.SIGINT
            alive = [p for p in self.procs if p.is_alive() and p.pid is not None]
            if interrupts > 1 or (self.procs and not alive):
                raise KeyboardInterrupt
            if signum != signal.SIGINT:
                for process in alive:
                    os.kill(process.pid, signum)

        previous = {sig: signal.signal(sig, forward) for sig in PREEMPTION_SIGNALS}
        try:
            return super().launch(function, *args, trainer=trainer, **kwargs)
        except KeyboardInterrupt:
            self.stop_ranks()
            raise
        except ProcessExitedException as error:
            if error.exit_code != INTERRUPTED_EXIT_CODE:
                raise
            self.stop_ranks()
            raise KeyboardInterrupt from None
        except ProcessRaisedException as error:
            rebuilt = rank_error(error)
            if rebuilt is error:
                raise
            raise rebuilt from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop_ranks(self) -> None:
        """Wait up to ``RANK_GRACE_SECONDS`` for the ranks to exit, then SIGKILL the ones left."""
        deadline = time.monotonic() + RANK_GRACE_SECONDS
        for process in self.procs:
            process.join(max(0.0, deadline - time.monotonic()))
        self.kill(signal.SIGKILL)

    def _wrapping_function(self, process_idx: int, trainer: pl.Trainer | None, *args: Any) -> None:
        """Lightning's rank body; a rank stopped by a second Ctrl-C runs Lightning's interrupt
        handling (callbacks' ``on_exception``, loggers finalized) and exits 130: torch's wrapper
        would exit 0 without a result, and the main process would wait for it forever."""
        try:
            super()._wrapping_function(process_idx, trainer, *args)
        except KeyboardInterrupt as interrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if trainer is not None:
                _interrupt(trainer, interrupt)
            sys.exit(INTERRUPTED_EXIT_CODE)

    def get_extra_results(self, trainer: pl.Trainer) -> dict[str, Any]:
        extra = super().get_extra_results(trainer)
        preempted = [getattr(cb, "preempted_by", None) for cb in trainer.callbacks]
        extra["rlcamp"] = {
            "module": handoff_state(trainer.lightning_module),
            "preempted_by": [None if sig is None else int(sig) for sig in preempted],
        }
        return extra

    def update_main_process_results(self, trainer: pl.Trainer, extra: dict[str, Any]) -> None:
        super().update_main_process_results(trainer, extra)
        state = extra["rlcamp"]
        load_handoff_state(trainer.lightning_module, state["module"])
        for callback, sig in zip(trainer.callbacks, state["preempted_by"], strict=True):
            if sig is not None:
                callback.preempted_by = signal.Signals(sig)


class RunStateDDPStrategy(DDPStrategy):
    """``DDPStrategy`` whose fork/spawn launcher is ``RunStateLauncher``; with ranks started
    externally (``cluster_environment.creates_processes_externally``) it starts none itself."""

    def configure_ddp(self) -> None:
        """``find_unused_parameters: null`` (the configs'): ask the module
        (``OnPolicyAlgorithm.leaves_parameters_out``), so DDP traverses the graph only where a loss
        leaves parameters out."""
        if self._ddp_kwargs.get("find_unused_parameters", None) is None:
            leaves_out = getattr(self.lightning_module, "leaves_parameters_out", lambda: True)
            self._ddp_kwargs["find_unused_parameters"] = bool(leaves_out())
        super().configure_ddp()

    def _configure_launcher(self) -> None:
        environment = self.cluster_environment
        if self._start_method == "popen" or environment.creates_processes_externally:
            self._launcher = _SubprocessScriptLauncher(environment, self.num_processes, self.num_nodes)
        else:
            self._launcher = RunStateLauncher(self, start_method=self._start_method)
