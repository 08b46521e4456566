"""The ``unspin`` command line: the subcommands of each package under one group.

    $ unspin rewrite article.txt                 # rewrite.cli (base install)
    $ unspin convert archive/ --out clean/       # rewrite.convert.cli (base install; .md needs [convert])
    $ unspin serve                               # service.cli, needs pip install 'unspin[serve]'
    $ unspin build-dataset / train / evaluate    # training.cli, needs pip install 'unspin[train]'

Each command is imported when it is asked for (``COMMANDS``). When its extra is not installed,
the command exits with 2 and one line naming the extra to install. Exit codes (the one policy of
``rewrite.errors``, applied by ``rewrite.exits``): 0 ok, 1 usage error, 2 input or model error (an
``UnspinError`` of any package: its message, without a traceback).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import logging
import re

import click

from rewrite.errors import EXIT_INPUT, EXIT_USAGE, UnspinError
from rewrite.exits import click_error


@dataclasses.dataclass(frozen=True)
class LazyCommand:
    """Where a subcommand lives (``module:attribute``) and the extra it needs (None: the base install)."""

    target: str
    extra: str | None
    summary: str


COMMANDS = {
    "rewrite": LazyCommand("rewrite.cli:rewrite", None, "Restore FILES (or stdin) and print the result."),
    "convert": LazyCommand("rewrite.convert.cli:convert", None, "Restore spun wording in files, folders and datasets."),
    "serve": LazyCommand("service.cli:serve", "serve", "Serve POST /v1/restore and the review page."),
    "build-dataset": LazyCommand("training.cli:build_dataset_cmd", "train", "Spin a clean corpus into training pairs."),
    "train": LazyCommand("training.cli:train_cmd", "train", "Train or fine-tune a restorer."),
    "evaluate": LazyCommand("training.cli:evaluate_cmd", "train",
                            "Score a model on a dataset's test split or on annotated real spun text."),
    "channel-coverage": LazyCommand("training.cli:channel_coverage_cmd", "train",
                                    "Share of real spinners' places the builder's spinner can produce."),
    "fit-detector": LazyCommand("training.cli:fit_detector_cmd", "train",
                                "Fit the spin finder (detector, channel counts, chooser) on annotated spun text."),
    "average-models": LazyCommand("training.cli:average_models_cmd", "train",
                                  "Average a fine-tune with the model it was tuned from (WiSE-FT)."),
}


def missing_requirements(extra: str) -> list[str]:
    """Distributions the ``unspin[extra]`` extra declares that are not installed here.

    Read from the installed package's metadata, so ``pyproject.toml`` is the one list. Running
    from a source tree without installed metadata, nothing is reported missing (the import then
    names the module).
    """
    try:
        requires = importlib.metadata.requires("unspin") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    missing = []
    for requirement in requires:
        name, _, marker = requirement.partition(";")
        if not re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", marker):
            continue
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name).group(1)
        if name == "unspin":  # a nested extra such as unspin[all]
            continue
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def extra_hint(name: str, extra: str, missing: list[str]) -> str:
    """The one line a command without its extra prints."""
    return f"unspin {name} needs the '{extra}' extra ({', '.join(missing)} missing): pip install 'unspin[{extra}]'"


def _needs_extra(name: str, extra: str, missing: list[str]) -> click.Command:
    """A stand-in for a command whose extra is missing: whatever it is given, it says so and exits 2."""
    hint = extra_hint(name, extra, missing)

    def fail(args) -> None:
        click.echo(f"error: {hint}", err=True)
        raise SystemExit(EXIT_INPUT)

    return click.Command(
        name,
        callback=fail,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
        help=f"(not installed) {COMMANDS[name].summary} Needs pip install 'unspin[{extra}]'.",
        short_help=f"(needs unspin[{extra}]) {COMMANDS[name].summary}",
        add_help_option=False,
    )


class UnspinGroup(click.Group):
    """Loads ``COMMANDS`` on demand. Usage errors exit with 1; an ``UnspinError`` prints its message
    and exits with its ``exit_code`` (2)."""

    def list_commands(self, ctx) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        entry = COMMANDS[name]
        missing = missing_requirements(entry.extra) if entry.extra else []
        if missing:
            return _needs_extra(name, entry.extra, missing)
        module_name, _, attribute = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a source tree without installed metadata
            if entry.extra is None or (exc.name or "").split(".")[0] in ("rewrite", "service", "training", "unspin"):
                raise
            return _needs_extra(name, entry.extra, [exc.name])
        return getattr(module, attribute)

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise
        except UnspinError as exc:
            raise click_error(exc) from exc


@click.group(cls=UnspinGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log what the restorer refused and why (on stderr).")
def cli(verbose: bool) -> None:
    """Restore spun text to its standard wording, showing every change."""
    logging.basicConfig(format="unspin: %(message)s", level=logging.INFO if verbose else logging.WARNING)
    if not verbose:
        from rewrite.model_folder import hide_developer_warnings  # light: no torch

        hide_developer_warnings()


def main() -> None:
    """Console entry point (``unspin``)."""
    cli(prog_name="unspin")


if __name__ == "__main__":  # pragma: no cover
    main()
