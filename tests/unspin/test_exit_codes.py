"""One exit-code policy for every command: by error class (``rewrite.errors``, ``rewrite.exits``)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from rewrite.errors import EXIT_INPUT, EXIT_USAGE, InputError, ModelError, UnspinError
from rewrite.exits import user_errors
from training.errors import ConfigError, TrainingError


@pytest.mark.parametrize("error", [InputError("bad input; fix it"), ModelError("no model; install it"),
                                   TrainingError("bad corpus; give text"), ConfigError("bad setting; change it")])
def test_every_user_error_prints_one_line_and_exits_with_its_class_code(error):
    @click.command()
    def command():
        with user_errors():
            raise error

    result = CliRunner().invoke(command, [])
    assert isinstance(error, UnspinError) and error.exit_code == EXIT_INPUT
    assert result.exit_code == EXIT_INPUT
    assert result.output == f"Error: {error}\n"


def test_a_bug_keeps_its_traceback():
    @click.command()
    def command():
        with user_errors():
            raise KeyError("bug")

    result = CliRunner().invoke(command, [])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)


def test_the_unspin_group_applies_the_same_policy(tmp_path):
    from unspin.cli import cli

    runner = CliRunner()
    missing = runner.invoke(cli, ["train", "--dataset", str(tmp_path / "none"), "--out", str(tmp_path / "run")])
    assert missing.exit_code == EXIT_INPUT and "Error:" in missing.output and "Traceback" not in missing.output
    assert runner.invoke(cli, ["train", "--no-such-flag"]).exit_code == EXIT_USAGE
