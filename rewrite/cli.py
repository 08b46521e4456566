"""The ``unspin`` command line: a thin click layer over ``rewrite.Restorer``.

    $ unspin rewrite article.txt              # restored text on stdout
    $ unspin rewrite --diff < article.txt     # each change inline: [-mentioned-]{+said+}
    $ unspin rewrite --json a.txt b.txt       # restored text, edits and spin ratio per input

Exit codes: 0 ok, 1 usage error, 2 input or model error. Other subcommands (train, serve, ...)
are click commands in their own modules, added to ``cli`` with ``cli.add_command``.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from .backends import BACKENDS
from .errors import InputError, UnspinError

EXIT_USAGE = 1
EXIT_INPUT = 2
STDIN = "-"


class UnspinGroup(click.Group):
    """Usage errors exit with 1; the library's errors print their message and exit with 2."""

    user_errors: tuple[type[Exception], ...] = (UnspinError,)  # add other packages' error bases here

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
        except self.user_errors as exc:
            error = click.ClickException(str(exc))
            error.exit_code = EXIT_INPUT
            raise error from exc


@click.group(cls=UnspinGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log what the restorer refused and why (on stderr).")
def cli(verbose: bool) -> None:
    """Restore spun text to its standard wording, showing every change."""
    logging.basicConfig(format="unspin: %(message)s", level=logging.INFO if verbose else logging.WARNING)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print restored text, edits and spin ratio as JSON.")
@click.option("--diff", "as_diff", is_flag=True, help="Print the input with each change inline: [-old-]{+new+}.")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Model folder to use instead of the shipped default.",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Drop edits the model is less sure of than this (default: the model's recommended "
    "threshold, 0.7 for the shipped model; 0 shows every edit).",
)
@click.option("--protect-quotes", is_flag=True, help="Change nothing inside quotation marks.")
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="auto",
    show_default=True,
    help="Decoder: torch (exact greedy output), torch-greedy (slow baseline), ct2 (CTranslate2 int8), "
    "auto (the fastest installed).",
)
def rewrite(files, as_json, as_diff, model_dir, min_confidence, protect_quotes, backend) -> None:
    """Restore FILES (or stdin when none, or for -) and print the result."""
    if as_json and as_diff:
        raise click.UsageError("choose one of --json and --diff")
    if not files and sys.stdin.isatty():
        raise click.UsageError("give one or more FILES, or pipe text in: unspin rewrite < article.txt")
    from .restorer import Restorer

    names = list(files) or [STDIN]
    texts = [read_text(name) for name in names]
    restorer = Restorer.from_pretrained(model_dir, backend=backend)
    results = restorer.restore_many(texts, min_confidence=min_confidence, protect_quotes=protect_quotes)
    if as_json:
        records = [{"input": "<stdin>" if name == STDIN else name, **r.to_dict()} for name, r in zip(names, results)]
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    for text, result in zip(texts, results):
        click.echo(render_diff(text, result.edits) if as_diff else result.text, nl=False)


def read_text(name: str) -> str:
    """The UTF-8 text of file ``name`` (``-``: stdin); ``InputError`` says which byte is wrong."""
    label = "<stdin>" if name == STDIN else name
    try:
        data = sys.stdin.buffer.read() if name == STDIN else Path(name).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label} is not valid UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start}; "
            "convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None


def render_diff(text: str, edits) -> str:
    """``text`` with each edit shown inline as ``[-original-]{+replacement+}``, coloured
    (click strips the colours when stdout is not a terminal)."""
    parts, at = [], 0
    for edit in edits:
        parts.append(text[at : edit.offset])
        parts.append(click.style(f"[-{edit.original}-]", fg="red"))
        parts.append(click.style(f"{{+{edit.replacement}+}}", fg="green"))
        at = edit.offset + edit.length
    parts.append(text[at:])
    return "".join(parts)


def _add_subcommands() -> None:
    """Commands that live beside their libraries; each imports its heavy parts lazily."""
    from rewrite.convert_cli import convert
    from service.cli import serve
    from training.cli import build_dataset_cmd, channel_coverage_cmd, evaluate_cmd, train_cmd
    from training.errors import TrainingError

    for command in (build_dataset_cmd, train_cmd, evaluate_cmd, channel_coverage_cmd, serve, convert):
        cli.add_command(command)
    UnspinGroup.user_errors = (UnspinError, TrainingError)


_add_subcommands()


def main() -> None:
    """Console entry point (``unspin``)."""
    cli(prog_name="unspin")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
