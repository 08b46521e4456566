"""Errors of the rewrite package. Each message says what went wrong and what to do about it."""


class UnspinError(Exception):
    """Base class: a problem the caller can fix. The message is meant for the end user."""


class ModelError(UnspinError):
    """A model folder is missing, incomplete or unreadable, or a backend misbehaved."""


class InputError(UnspinError, ValueError):
    """The text or an argument given to the library cannot be used as it is."""


class Cancelled(UnspinError):
    """The caller asked a running restoration to stop (``restore_many(..., cancel=event)``)."""
