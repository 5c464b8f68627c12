"""Lightning's DDP strategy with the run state handed back to the launching process.

``strategy=ddp_fork`` / ``ddp_spawn`` train in child processes and return only rank 0's weights and
``callback_metrics`` to the process that called ``fit`` (Lightning's ``_MultiProcessingLauncher``),
so that process would report a run of 0 env steps. ``RunStateDDPStrategy`` uses Lightning's own
launcher through its documented extension points (``get_extra_results`` /
``update_main_process_results``) to bring back the module's run state
(``OnPolicyAlgorithm.handoff_state``) and the callbacks' pre-emption signal. When the ranks are
started outside (srun under SLURM, torchrun) it launches nothing, like ``strategy=ddp``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class RunStateLauncher(_MultiProcessingLauncher):
    """Lightning's fork/spawn launcher that also returns rank 0's run state to the main process.

    While the ranks run, the main process does not die of a pre-emption signal: on
    ``KeyboardInterrupt`` Lightning's launcher SIGKILLs the ranks, which would lose the checkpoint
    each rank writes at the end of its rollout (``EnvStepCheckpoint``). SIGTERM/SIGUSR1 sent to the
    main process alone are passed on to the ranks; SIGINT (Ctrl-C reaches the whole process group,
    ranks included) is left to them. A forked rank inherits these handlers until its own are set,
    and there they do nothing.
    """

    def launch(self, function: Callable, *args: Any, trainer: pl.Trainer | None = None, **kwargs: Any) -> Any:
        main_pid = os.getpid()

        def forward(signum: int, frame: Any) -> None:
            if os.getpid() == main_pid and signum != signal.SIGINT:
                for process in self.procs:
                    if process.is_alive() and process.pid is not None:
                        os.kill(process.pid, signum)

        previous = {sig: signal.signal(sig, forward) for sig in PREEMPTION_SIGNALS}
        try:
            return super().launch(function, *args, trainer=trainer, **kwargs)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def get_extra_results(self, trainer: pl.Trainer) -> dict[str, Any]:
        extra = super().get_extra_results(trainer)
        preempted = [getattr(cb, "preempted_by", None) for cb in trainer.callbacks]
        extra["rlcamp"] = {
            "module": trainer.lightning_module.handoff_state(),
            "preempted_by": [None if sig is None else int(sig) for sig in preempted],
        }
        return extra

    def update_main_process_results(self, trainer: pl.Trainer, extra: dict[str, Any]) -> None:
        super().update_main_process_results(trainer, extra)
        state = extra["rlcamp"]
        trainer.lightning_module.load_handoff_state(state["module"])
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
