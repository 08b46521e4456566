"""Command-line flags generated from a config dataclass, so that a setting is spelled once.

A field declared with ``setting(default, help)`` becomes the flag ``--field-name``, with the
field's type, its help text and its default shown in ``--help`` (other fields, such as lists or
nested configs, are left to the command):

    >>> @dataclasses.dataclass
    ... class RunConfig:
    ...     max_steps: int = setting(20_000, "Optimizer steps to train for.")
    ...     bf16: bool = setting(True, "bf16 autocast.")
    >>> @click.command()
    ... @config_options(RunConfig)
    ... def run(**flags):
    ...     print(given(RunConfig, flags))
    $ run --max-steps 5 --bf16 false
    {'max_steps': 5, 'bf16': False}

A flag left out arrives as None and ``given`` drops it, so a ``--config`` file or the dataclass
default decides. A bool flag takes an optional value (``--bf16``, ``--bf16 false``); a field
with ``choices`` takes one of them; a ``required`` field must be given on the command line.
``to_argv`` turns given values back into flags (for a child process that parses the same flags).
"""

from __future__ import annotations

import dataclasses
import types
import typing


def setting(default, help: str, *, choices: tuple[str, ...] | None = None, required: bool = False):
    """A config field whose flag shows ``help``; ``choices`` limits its values on the command line,
    ``required`` makes the command line insist on it."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "required": required})


def flag_name(field_name: str) -> str:
    """``max_steps`` -> ``--max-steps``."""
    return "--" + field_name.replace("_", "-")


def _value_type(hint) -> type:
    """``int | None`` -> ``int``; ``float`` -> ``float``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return hint


def flag_fields(cls) -> list[dataclasses.Field]:
    """The fields of the dataclass ``cls`` declared with ``setting``: the ones that are flags
    (a list, a mapping or a nested config is parsed by its command by hand)."""
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def config_options(cls):
    """A decorator that adds one click option per ``setting`` field of the dataclass ``cls``, in
    field order."""
    import click

    hints = typing.get_type_hints(cls)
    options = []
    for field in flag_fields(cls):
        meta = field.metadata
        kind = _value_type(hints[field.name])
        extra: dict = {"type": kind}
        if kind is bool:  # --bf16, --bf16 true, --bf16 false
            extra = {"type": click.BOOL, "is_flag": False, "flag_value": True, "metavar": "[true|false]"}
        elif meta["choices"]:
            extra = {"type": click.Choice(meta["choices"])}
        help = meta["help"]
        if not meta["required"] and field.default is not None:  # the option's own default stays None
            help += f"  [default: {str(field.default).lower() if kind is bool else field.default}]"
        options.append(click.option(flag_name(field.name), field.name, default=None, required=meta["required"],
                                    help=help, **extra))

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def given(cls, flags: dict) -> dict:
    """The ``setting`` fields of ``cls`` given on the command line (not None), from a command's
    arguments."""
    return {f.name: flags[f.name] for f in flag_fields(cls) if flags.get(f.name) is not None}


def to_argv(values: dict) -> list[str]:
    """``{"max_steps": 5, "bf16": False}`` -> ``["--max-steps", "5", "--bf16", "false"]``."""
    argv = []
    for name, value in values.items():
        argv += [flag_name(name), str(value).lower() if isinstance(value, bool) else str(value)]
    return argv
