"""Peak memory of ``unspin convert`` on a big Parquet file: does it stay flat as the file grows?

Writes a synthetic Parquet file of about ``--size-mb`` MB to a scratch folder (rows of ~1 KB of
English-like text with spun words in them), converts it in a child process with a fast stand-in
restorer (a regex that swaps a few spun words back, so the converter's own cost is measured, not
a model's) and records the child's peak RSS, its RSS after the imports, the wall time and the row
counts. Run it at two sizes: a converter that streams shows the same peak at both.

    nice -n 10 python benchmarks/convert_table_bench.py --size-mb 20 --size-mb 200 --out benchmarks/results/convert_table_bench.json
    nice -n 10 python benchmarks/convert_table_bench.py --size-mb 1000 --text-words 16 --payload-bytes 4000 \\
        --out benchmarks/results/convert_table_bench.json    # 1 GB, most of it a column carried through

Each run appends a record to ``--out``.

Needs the ``convert`` extra (pyarrow, datasets). Deletes its scratch files unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an they "
         "you were her she there been one all we their has would when if so no will more can who some about out up "
         "government market report officials city company people year week said told water school".split())
SPUN = {"mentioned": "said", "individuals": "people", "buy": "purchase"}


class RegexRestorer:
    """A fast stand-in for the model: swaps the words in ``SPUN`` back wherever they occur."""

    model_info = {"id": "bench-regex", "name": "regex"}
    _pattern = re.compile(r"\b(mentioned|individuals)\b")

    def restore_many(self, texts, min_confidence=None, protect_quotes=False):
        from rewrite import Edit, Restoration, apply_edits

        out = []
        for text in texts:
            edits = [Edit(m.start(), len(m.group()), m.group(), SPUN[m.group()], 0.9) for m in self._pattern.finditer(text)]
            out.append(Restoration(apply_edits(text, edits), edits, 0.0))
        return out


def make_restorer() -> RegexRestorer:
    return RegexRestorer()


def make_parquet(path: Path, size_mb: int, text_words: int = 160, payload_bytes: int = 0, seed: int = 0) -> int:
    """Write rows until the file is ``size_mb`` MB; returns the row count. Each row: an id, a
    text of ``text_words`` words and, when ``payload_bytes``, an incompressible ``payload`` column
    carried through untouched (a big file whose text is cheap to restore). Memory stays small:
    row groups of 10,000 rows are written one at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    vocab = list(WORDS) + ["mentioned", "individuals"] + [f"w{k}" for k in range(20_000)]  # poorly compressible
    schema = pa.schema([("id", pa.int64()), ("text", pa.string()), ("source", pa.string())]
                       + ([("payload", pa.string())] if payload_bytes else []))
    rows = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        while not path.exists() or path.stat().st_size < size_mb * 1_000_000:
            texts = [" ".join(rng.choices(vocab, k=text_words)).capitalize() + "." for _ in range(10_000)]
            columns = {"id": range(rows, rows + len(texts)), "text": texts,
                       "source": [f"doc{(rows + k) % 97}" for k in range(len(texts))]}
            if payload_bytes:
                columns["payload"] = [rng.randbytes(payload_bytes // 2).hex() for _ in texts]
            writer.write_table(pa.table(columns, schema=schema))
            rows += len(texts)
    return rows


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(source: str, out: str, batch_rows: int) -> None:
    """Convert ``source`` into ``out`` and print a JSON line of figures."""
    import datasets  # noqa: F401 - imported by the run anyway; counted in the baseline
    import pyarrow.parquet  # noqa: F401

    from rewrite.convert import ConvertConfig, convert_files

    make_restorer().restore_many(["They mentioned it."])  # the restorer's own imports, too
    after_imports = rss_mb()
    started = time.monotonic()
    summary = convert_files([source], ConvertConfig(out=out, batch_rows=batch_rows, progress=False), make_restorer)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rss_after_imports_mb": round(after_imports, 1), "peak_rss_mb": round(peak, 1),
                      "seconds": round(seconds, 1), "ok": summary.ok, "words": summary.words, "edits": summary.edits}))


def measure(size_mb: int, scratch: Path, batch_rows: int, text_words: int, payload_bytes: int) -> dict:
    import pyarrow.parquet as pq

    scratch.mkdir(parents=True, exist_ok=True)
    source, out = scratch / f"bench_{size_mb}mb.parquet", scratch / f"out_{size_mb}mb"
    started = time.monotonic()
    rows = make_parquet(source, size_mb, text_words, payload_bytes)
    made = time.monotonic() - started
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, __file__, "--child", str(source), str(out), "--batch-rows", str(batch_rows)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    written = pq.ParquetFile(out / source.name)
    figures.update(
        input_mb=round(source.stat().st_size / 1e6, 1), output_mb=round((out / source.name).stat().st_size / 1e6, 1),
        rows=rows, output_rows=written.metadata.num_rows, columns=written.schema_arrow.names,
        make_seconds=round(made, 1), rows_per_second=round(rows / figures["seconds"]), batch_rows=batch_rows,
        text_words=text_words, payload_bytes=payload_bytes,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, action="append", help="Parquet file size(s) to measure (default: 50 and 200).")
    parser.add_argument("--batch-rows", type=int, default=256)
    parser.add_argument("--text-words", type=int, default=160, help="Words per text cell.")
    parser.add_argument("--payload-bytes", type=int, default=0, help="Bytes per row of an extra column carried through.")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/unspin-table-bench"))
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch files.")
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.batch_rows)
        return
    results = []
    try:
        for size in args.size_mb or [50, 200]:
            figures = measure(size, args.scratch, args.batch_rows, args.text_words, args.payload_bytes)
            print(json.dumps(figures), flush=True)
            results.append(figures)
    finally:
        if not args.keep:
            shutil.rmtree(args.scratch, ignore_errors=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"command": "python benchmarks/convert_table_bench.py " + " ".join(sys.argv[1:]),
                  "machine": f"{os.cpu_count()} CPUs (shared), nice'd", "restorer": "regex stand-in (RegexRestorer)",
                  "results": results}
        previous = json.loads(args.out.read_text()) if args.out.is_file() else []
        runs = previous if isinstance(previous, list) else [previous]
        args.out.write_text(json.dumps(runs + [record], indent=2) + "\n")


if __name__ == "__main__":
    main()
