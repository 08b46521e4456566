"""Seconds of the work around the model for one long single-line file (no model: a fake one).

    python benchmarks/long_line_bench.py --megabytes 5        # restorer and convert paths
    PYTHONPATH=/tmp/old-checkout python benchmarks/long_line_bench.py   # another checkout's code

The file is the sample article repeated on one line. ``restorer``: ``Restorer.restore`` with a
backend that returns its input (segmentation, alignment, guard, edits); ``convert``:
``convert_jobs`` on the file as ``.txt`` with a restorer that swaps a few spun words (``SwapRestorer``)
(parsing, sentence units, accepted edits, rendering, the report's edit list). Both must grow
linearly with the line.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))  # this checkout when nothing is installed; PYTHONPATH, searched first, picks the code measured
SPUN = {"mentioned": "said", "individuals": "people", "not less than": "at least", "struggle": "war"}


class CopyBackend:
    """A "model" that gives every sentence back as it is: one token per character, probability 1."""

    def generate(self, sentences):
        from rewrite.generated import Generated

        return [Generated(s, [(i, i + 1) for i in range(len(s))] + [(len(s), len(s))], [1.0] * (len(s) + 1))
                for s in sentences]


class SwapRestorer:
    """A restorer that puts back the words of ``SPUN`` wherever they occur, as ``Edit``s."""

    pattern = re.compile(r"\b(" + "|".join(sorted(SPUN, key=len, reverse=True)) + r")\b")

    model_info = {"id": "swap-1", "name": "swap"}

    def restore_many(self, texts, min_confidence: float = 0.0, protect_quotes: bool = False):
        from rewrite import Edit, Restoration, apply_edits

        results = []
        for text in texts:
            edits = [Edit(m.start(), len(m.group()), m.group(), SPUN[m.group()], 0.9) for m in self.pattern.finditer(text)]
            results.append(Restoration(apply_edits(text, edits), edits, len(edits) / max(len(text.split()), 1)))
        return results


@click.command()
@click.option("--megabytes", default=5.0, show_default=True, help="Size of the single line.")
@click.option("--paths", default="restorer,convert", show_default=True, help="Which paths to time.")
def main(megabytes: float, paths: str) -> None:
    """Time the non-model work on one long line."""
    import rewrite
    from rewrite import Restorer
    from rewrite.convert import ConvertOptions, Job, convert_jobs

    article = (REPO / "seeds" / "sample_spun_article.txt").read_text(encoding="utf-8").replace("\n", " ")
    size = int(megabytes * 1_000_000)
    line = (article * (size // len(article) + 1))[:size] + "\n"
    click.echo(f"code: {Path(rewrite.__file__).parent}; one line of {len(line):,} characters, {len(line.split()):,} words")
    for path in [p.strip() for p in paths.split(",") if p.strip()]:
        started = time.perf_counter()
        if path == "restorer":
            Restorer(CopyBackend()).restore(line)
        elif path == "convert":
            data = line.encode()
            convert_jobs([Job("long.txt", data, hashlib.sha256(data).hexdigest())], SwapRestorer(), ConvertOptions())
        else:
            raise click.BadParameter(f"unknown path {path!r}; use restorer or convert", param_hint="--paths")
        click.echo(f"{path}: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
