"""The exit-code policy of every command line (``unspin ...``, ``python -m training.train``, the
research tools), applied in one place: an ``UnspinError`` escaping a command prints its message
as one line and ends the process with the error's ``exit_code`` (``rewrite.errors``).

    >>> @click.command()
    ... def check():
    ...     with user_errors():
    ...         raise InputError("empty file; give some text")
    $ check                      # stderr: "Error: empty file; give some text", exit status 2
"""

from __future__ import annotations

import contextlib

import click

from .errors import EXIT_INPUT, EXIT_USAGE, UnspinError

__all__ = ["EXIT_INPUT", "EXIT_USAGE", "click_error", "user_errors"]


def click_error(exc: UnspinError) -> click.ClickException:
    """The ``ClickException`` that prints ``exc``'s message and exits with its ``exit_code``."""
    error = click.ClickException(str(exc))
    error.exit_code = exc.exit_code
    return error


@contextlib.contextmanager
def user_errors():
    """Turn an ``UnspinError`` raised inside into ``click_error``; let every other exception (a bug)
    through with its traceback."""
    try:
        yield
    except UnspinError as exc:
        raise click_error(exc) from exc
