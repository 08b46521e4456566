"""Dataset-builder throughput: sentence pairs per second building from a corpus.

    python benchmarks/build_bench.py                       # the whole ../shared/corpora
    python benchmarks/build_bench.py --corpus my_corpus/ --workers 2 --json runs/build_bench.json

Builds into a temporary folder (deleted afterwards) with the default spinner and lexicons, news
weighted up as for the shipped model, and prints the manifest's timings: reading+segmenting,
spinning (pairs/s), and the whole build including the Arrow/Parquet writes. The lexicon is
compiled first (and cached), so its one-off cost is reported separately.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from training.build import BuildConfig, build_dataset
from training.lexicon import LexiconConfig, load_lexicon

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", default=[str(SHARED)])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--weight", nargs="*", default=["current_events=10", "sotu=2"])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    started = time.time()
    lexicon = load_lexicon(LexiconConfig())
    lexicon_seconds = time.time() - started
    weights = {k: float(v) for k, v in (w.split("=") for w in args.weight)}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build_dataset(
            BuildConfig(corpus=args.corpus, out=str(Path(tmp) / "ds"), weights=weights, workers=args.workers,
                        validation_fraction=0.015, test_fraction=0.015),
            progress=False,
        )
    pairs = sum(manifest["pairs"].values())
    result = {
        "pairs": pairs,
        "workers": args.workers,
        "lexicon_load_seconds": round(lexicon_seconds, 1),
        "spin_pairs_per_second": manifest["spin_pairs_per_second"],
        "build_seconds": manifest["seconds"],
        "overall_pairs_per_second": round(pairs / manifest["seconds"], 1),
        "lexicon_sizes": manifest["lexicon_sizes"],
        "share_spun_per_engine": {k: v["share_spun"] for k, v in manifest["engines"].items()},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
