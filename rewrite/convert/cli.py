"""``unspin convert``: a thin click layer over ``rewrite.convert.run.convert_files``.

Exit status: 0 when every file converted, 2 when a file or a line/row in one failed (see the
report), 1 when the run could not start or stopped (bad arguments, a model that does not load).
"""

from __future__ import annotations

import logging
import sys

import click

from ..backends import BACKENDS
from ..restorer import MODES
from ..errors import UnspinError
from .run import ConvertConfig, RestorerFactory, convert_files

EXIT_FAILED_FILES = 2


@click.command("convert")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder; the input tree is mirrored inside it. Rerunning into the same folder resumes.")
@click.option("--glob", "globs", multiple=True, metavar="PAT", help="Only files under the source folders whose relative path or name matches PAT (repeatable), e.g. '*.md'.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write a JSONL report: one line per document with its status, spin ratio, edits and errors.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes (local) or Ray actors, each loading the model once.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="Run here, or on a Ray cluster.")
@click.option("--address", help="Ray cluster to join: 'auto' on a cluster node, 'ray://HEAD:10001' from outside. Default: a local Ray.")
@click.option("--field", default="text", show_default=True, help="JSONL: the field holding the text.")
@click.option("--column", default="text", show_default=True, help="CSV, Parquet and datasets folders: the column holding the text.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False), help="Model folder (default: the shipped model).")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True, help="Decoder: torch (exact greedy output), torch-greedy (slow baseline), ct2 (CTranslate2 int8), auto (the fastest installed).")
@click.option("--mode", type=click.Choice(MODES), default="auto", show_default=True, help="auto: the spin finder where the model has one; fast: the T5's edits alone (many times faster).")
@click.option("--min-confidence", type=click.FloatRange(0.0, 1.0), default=None, help="Drop edits the model is less sure of (default: the model's recommended threshold).")
@click.option("--protect-quotes", is_flag=True, help="Leave text inside quotation marks as it is.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal; log lines otherwise).")
def convert(sources, out, globs, report, workers, engine, address, field, column, model_dir, backend, mode,
            min_confidence, protect_quotes, progress):
    """Restore spun wording in files and folders (.txt, .md, .jsonl, .csv, .html), Parquet files
    and datasets folders (save_to_disk).

    Outputs mirror the inputs under --out. A manifest in --out records every finished file, so an
    interrupted run resumes where it stopped and a rerun redoes only files that changed. A Parquet
    file or datasets folder comes back in its format with COLUMN_restored, COLUMN_edits (JSON) and
    spin_ratio beside --column; it resumes batch by batch.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        config = ConvertConfig(
            out=out, globs=globs, report=report, workers=workers, engine=engine, address=address, field=field,
            column=column, min_confidence=min_confidence, protect_quotes=protect_quotes, progress=progress,
        )
        factory = RestorerFactory(model_dir, backend, mode=mode)
        summary = convert_files(sources, config, factory)
    except UnspinError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary.describe())
    for path, reason in summary.failures[:20]:
        click.echo(f"  {path}: {reason}", err=True)
    if len(summary.failures) > 20:
        click.echo(f"  ... and {len(summary.failures) - 20} more (see the report)", err=True)
    if summary.any_failed:
        sys.exit(EXIT_FAILED_FILES)


if __name__ == "__main__":
    convert()
