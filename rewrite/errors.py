"""Errors of the rewrite package, and the root of every unspin error. Each message says what went
wrong and what to do about it.

The exit-code policy of every command is here, by class: an ``UnspinError`` (of any package:
``training.errors.TrainingError`` is one too) carries the exit code a command ends with when it
escapes, ``EXIT_INPUT``; a click usage error ends with ``EXIT_USAGE``; anything else is a bug and
keeps its traceback. ``rewrite.exits`` applies it to click commands.
"""

EXIT_USAGE = 1  # the command line itself is wrong (click.UsageError)
EXIT_INPUT = 2  # the input, the model or the settings need fixing: the error's message says how


class UnspinError(Exception):
    """Base class: a problem the caller can fix. The message is meant for the end user."""

    exit_code = EXIT_INPUT


class ModelError(UnspinError):
    """A model folder is missing, incomplete or unreadable, or a backend misbehaved."""


class InputError(UnspinError, ValueError):
    """The text or an argument given to the library cannot be used as it is."""


class Cancelled(UnspinError):
    """The caller asked a running restoration to stop (``restore_many(..., cancel=event)``)."""
