"""Lightning callbacks: env-step progress bar, env-step checkpoints, periodic evaluation, policy snapshots."""

from rlcamp.callbacks.checkpoint import EnvStepCheckpoint
from rlcamp.callbacks.eval import PeriodicEval
from rlcamp.callbacks.progress import EnvStepProgressBar
from rlcamp.callbacks.snapshots import PolicySnapshots

__all__ = ["EnvStepCheckpoint", "EnvStepProgressBar", "PeriodicEval", "PolicySnapshots"]
