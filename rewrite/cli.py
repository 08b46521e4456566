"""``unspin rewrite``: a thin click layer over ``rewrite.Restorer``.

    $ unspin rewrite article.txt              # restored text on stdout
    $ unspin rewrite --diff < article.txt     # each change inline: [-mentioned-]{+said+}
    $ unspin rewrite --json a.txt b.txt       # restored text, edits and spin ratio per input

Exit codes (through the ``unspin`` group, ``unspin.cli``): 0 ok, 1 usage error, 2 input or model
error (with several inputs, the readable ones are still restored and printed; each unreadable one
is named on stderr). The command needs only the base install.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from .backends import BACKENDS
from .restorer import MODES
from .edits import apply_edits
from .errors import EXIT_INPUT, InputError
from .files import detect_bom

STDIN = "-"


class _ThresholdOption(click.Option):
    """``--min-confidence``, whose help names the shipped model's threshold as its folder's
    ``restorer.json`` sets it when the help is shown (never a copy that goes stale)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        template = self.help or ""
        self.help = template.format(shipped=shipped_threshold_note())
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = template


def shipped_threshold_note() -> str:
    """", 0.45 for the shipped model (0.8 with --mode fast)" from the shipped model's ``finder.json``
    and ``restorer.json``; empty when the folder is missing or a file unreadable (the command then
    says so when it runs)."""
    from .errors import ModelError
    from .restorer import DEFAULT_MODEL, recommended_threshold

    if not DEFAULT_MODEL.is_dir():
        return ""
    try:
        auto, fast = recommended_threshold(DEFAULT_MODEL), recommended_threshold(DEFAULT_MODEL, "fast")
    except ModelError:
        return ""
    return f", {auto:g} for the shipped model" + (f" ({fast:g} with --mode fast)" if fast != auto else "")


@click.command("rewrite")
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
    cls=_ThresholdOption,
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Drop edits the model is less sure of than this (default: the model's recommended "
    "threshold{shipped}; 0 shows every edit).",
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
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="auto",
    show_default=True,
    help="auto: the spin finder (detector, channel, choice by SmolLM2) where the model has one, else the "
    "T5 alone; fast: the T5's edits alone (many times faster, a third of the recall); find: the finder or an error.",
)
def rewrite(files, as_json, as_diff, model_dir, min_confidence, protect_quotes, backend, mode) -> None:
    """Restore FILES (or stdin when none, or for -) and print the result.

    Inputs are UTF-8, or UTF-16/32 with a byte-order mark (as `unspin convert` reads them).
    """
    if as_json and as_diff:
        raise click.UsageError("choose one of --json and --diff")
    if not files and sys.stdin.isatty():
        raise click.UsageError("give one or more FILES, or pipe text in: unspin rewrite < article.txt")
    from .restorer import Restorer

    names = list(files) or [STDIN]
    texts: dict[int, str] = {}
    problems: dict[int, str] = {}
    for index, name in enumerate(names):
        try:
            texts[index] = read_text(name)
        except InputError as exc:  # the other inputs are still restored
            problems[index] = str(exc)
    if not texts:
        raise InputError("; ".join(problems.values()))
    restorer = Restorer.from_pretrained(model_dir, backend=backend, mode=mode)
    restored = restorer.restore_many(list(texts.values()), min_confidence=min_confidence, protect_quotes=protect_quotes)
    results = dict(zip(texts, restored))
    if as_json:
        records = [
            {"input": "<stdin>" if name == STDIN else name,
             **({"error": problems[k]} if k in problems else results[k].to_dict())}
            for k, name in enumerate(names)
        ]  # fmt: skip
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
    else:
        for k, text in texts.items():
            click.echo(render_diff(text, results[k].edits) if as_diff else results[k].text, nl=False)
    for problem in problems.values():
        click.echo(f"Error: {problem}", err=True)
    if problems:
        sys.exit(EXIT_INPUT)


def read_text(name: str) -> str:
    """The text of file ``name`` (``-``: stdin): UTF-8, or the encoding its byte-order mark names
    (``rewrite.files.detect_bom``, as ``unspin convert`` reads); ``InputError`` says which
    byte is wrong."""
    label = "<stdin>" if name == STDIN else name
    try:
        data = sys.stdin.buffer.read() if name == STDIN else Path(name).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror or exc}") from exc
    bom, codec = detect_bom(data) or (b"", "utf-8")
    try:
        return data[len(bom) :].decode(codec)
    except UnicodeDecodeError as exc:
        at = exc.start + len(bom)
        raise InputError(
            f"{label} is not valid {codec.upper()}: byte 0x{data[at]:02x} at byte offset {at}; "
            "convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None


def render_diff(text: str, edits) -> str:
    """``text`` with each edit shown inline as ``[-original-]{+replacement+}``, coloured
    (click strips the colours when stdout is not a terminal)."""
    shown = [
        dataclasses.replace(edit, replacement=click.style(f"[-{edit.original}-]", fg="red")
                            + click.style(f"{{+{edit.replacement}+}}", fg="green"))
        for edit in edits
    ]  # fmt: skip
    return apply_edits(text, shown)
