"""User-facing errors. Each one is printed as a single line (plus the next step) and exits 1.

Anything that is *not* a LorakitError is a bug in lorakit and keeps its traceback.
"""


class LorakitError(Exception):
    """A problem the user can fix. ``hint`` names the next command or setting to try."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(LorakitError):
    """A recipe key is unknown, missing or has a bad value."""


class DataError(LorakitError):
    """A dataset cannot be found or has bad rows."""


class StoreError(LorakitError):
    """The store cannot install, find or verify an entry."""


class NotInstalledError(StoreError):
    """A model or adapter is not in the store."""


class RunError(LorakitError):
    """A run folder is missing or incomplete."""


class TrainingDiverged(LorakitError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(LorakitError):
    """Ctrl-C during training: a checkpoint was saved; the run can be resumed."""
