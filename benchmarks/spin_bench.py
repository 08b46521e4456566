"""Spinner throughput on a slice of a corpus, in pairs per CPU-second (stands while the machine
is shared) and per wall second.

    python benchmarks/spin_bench.py                          # every 50th sentence of ../shared/corpora
    python benchmarks/spin_bench.py --every 100 --json benchmarks/results/spin_bench.json

A fresh ``Spinner`` (default settings and lexicons, its caches empty, as in a build worker) spins
the slice twice: the cold pass fills its caches, the warm pass (each sentence's second copy)
reuses them. It prints both rates, the spinner's set-up time, and a hash of every output, which
must not change when the spinner is only made faster.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from training.build import BuildConfig, collect_sentences
from training.lexicon import LexiconConfig, load_lexicon
from training.spinner import Spinner

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def spin_pass(spinner: Spinner, rows: list[tuple], copy: int, digest) -> dict:
    """Spin every row's ``copy``; CPU and wall rates of the pass."""
    cpu, wall = time.process_time(), time.time()
    for _, doc_id, index, sentence in rows:
        spun, edits, engine, rate = spinner.spin_example(sentence, doc_id, index, copy)
        digest.update(repr((spun, edits, engine, rate)).encode())
    cpu, wall = time.process_time() - cpu, time.time() - wall
    return {"cpu_seconds": round(cpu, 2), "pairs_per_cpu_second": round(len(rows) / cpu, 1),
            "pairs_per_second": round(len(rows) / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", default=[str(SHARED)])
    parser.add_argument("--every", type=int, default=50, help="take every Nth sentence (from the 2nd)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    lexicon = load_lexicon(LexiconConfig())
    rows = collect_sentences(BuildConfig(corpus=args.corpus, out="-"), {})[1 :: args.every]
    cpu = time.process_time()
    spinner = Spinner(lexicon)
    setup = time.process_time() - cpu
    digest = hashlib.sha256()
    result = {"pairs": len(rows), "every": args.every, "setup_cpu_seconds": round(setup, 1),
              "cold": spin_pass(spinner, rows, 0, digest), "warm": spin_pass(spinner, rows, 1, digest)}
    result["outputs_sha256"] = digest.hexdigest()[:16]
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
