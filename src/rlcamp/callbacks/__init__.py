"""Lightning callbacks: env-step progress bar, env-step checkpoints, periodic evaluation."""

from rlcamp.callbacks.checkpoint import EnvStepCheckpoint
from rlcamp.callbacks.eval import PeriodicEval
from rlcamp.callbacks.progress import EnvStepProgressBar

__all__ = ["EnvStepCheckpoint", "EnvStepProgressBar", "PeriodicEval"]
