"""Lightning callbacks: env-step progress bar and env-step checkpoints."""

from rlcamp.callbacks.checkpoint import EnvStepCheckpoint
from rlcamp.callbacks.progress import EnvStepProgressBar

__all__ = ["EnvStepCheckpoint", "EnvStepProgressBar"]
