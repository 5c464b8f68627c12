"""rlcamp's errors, in one place so that no floor imports a higher one to raise them.

The ``ValueError`` kinds are bad input: one line that names the config key and the fix, raised
before anything is built or written. The ``FloatingPointError`` kinds stop a run that went
non-finite.
"""


class ConfigError(ValueError):
    """A one-line error naming the offending config key and the fix."""


class EnvError(ValueError):
    """A one-line, actionable error about the environment configuration."""


class CheckpointError(ValueError):
    """A missing, corrupt, unsafe or mismatched checkpoint (one line, with the fix)."""


class RunDirBusyError(ValueError):
    """The run folder is held by another process (one line naming the holder)."""


class NothingToTrain(Exception):
    """The checkpoint to resume already spent the env-step budget: not a failure, the command exits 0."""


class NonFiniteEnvError(FloatingPointError):
    """An env returned a NaN or infinite observation or reward."""


class NonFiniteUpdateError(FloatingPointError):
    """A NaN/inf loss, gradient or weight: the run stops before any checkpoint takes the bad weights."""


VALIDATION_ERRORS = (ConfigError, EnvError, CheckpointError, RunDirBusyError)


def require(ok: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``ok``: one hyperparameter check, one line."""
    if not ok:
        raise ConfigError(message)
