"""Words per second of ``unspin convert`` with 1 and 2 local workers and with Ray locally.

    python benchmarks/convert_bench.py                        # 200 spun docs, shipped model
    python benchmarks/convert_bench.py --model runs/news/model --runs local:1,local:2,ray:2
    python benchmarks/convert_bench.py --docs my_docs/        # your own documents

Without ``--docs`` it builds the documents first: sentences from the shared corpora (default:
Wikipedia current events), spun with the dataset builder's spinner
(``Spinner(load_lexicon()).spin_example(sentence, key...)``), four sentences a paragraph, a few
paragraphs a ``.txt`` file. Each run converts the same folder into a fresh output folder.
``words/s`` counts prose words over the conversion itself; ``wall`` adds start-up (workers or
actors loading the model). On a machine shared with other jobs, pin ``--threads 1``: torch's
default of one thread per core collapses when the cores are busy. Results are printed as a table and written as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rewrite.convert import ConvertConfig, RestorerFactory, convert_files  # noqa: E402
from rewrite.text import normalise_whitespace, split_sentences  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "wikipedia_current_events"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=Path, help="Folder of documents to convert (default: build spun ones).")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="Clean text to spin when building documents.")
    p.add_argument("--n-docs", type=int, default=200, help="Documents to build.")
    p.add_argument("--sentences", type=int, default=12, help="Sentences per built document.")
    p.add_argument("--seed", type=int, default=13, help="Seed for picking and spinning sentences.")
    p.add_argument("--model", type=Path, help="Model folder (default: the shipped model).")
    p.add_argument("--threads", type=int, help="Torch threads per worker (default: all cores split among the workers).")
    p.add_argument("--runs", default="local:1,local:2,ray:2", help="Comma-separated ENGINE:WORKERS runs.")
    p.add_argument("--json", type=Path, default=Path("runs/convert_bench.json"), help="Where to write the results.")
    args = p.parse_args(argv)
    if args.n_docs < 1 or args.sentences < 1:
        p.error("--n-docs and --sentences must be at least 1")
    return args


def corpus_sentences(corpus: Path, needed: int, seed: int) -> list[str]:
    """``needed`` distinct sentences of 6-60 words from ``corpus``, picked with ``seed``."""
    from training.corpus import read_corpus

    pool: list[str] = []
    for document in read_corpus(corpus):
        for paragraph in document.paragraphs:
            for start, end in split_sentences(paragraph):
                sentence = normalise_whitespace(paragraph[start:end])
                if 6 <= len(sentence.split()) <= 60:
                    pool.append(sentence)
        if len(pool) >= 20 * needed:
            break
    pool = sorted(set(pool))
    if len(pool) < needed:
        raise SystemExit(f"{corpus} has only {len(pool)} usable sentences; need {needed}")
    return random.Random(seed).sample(pool, needed)


def build_docs(folder: Path, args: argparse.Namespace) -> dict:
    """Write ``n_docs`` spun ``.txt`` documents into ``folder``; returns what was built."""
    from training.lexicon import load_lexicon
    from training.spinner import Spinner

    spinner = Spinner(load_lexicon())
    sentences = corpus_sentences(args.corpus, args.n_docs * args.sentences, args.seed)
    folder.mkdir(parents=True, exist_ok=True)
    swaps = 0
    for d in range(args.n_docs):
        spun = []
        for j, sentence in enumerate(sentences[d * args.sentences : (d + 1) * args.sentences]):
            text, edits, _, _ = spinner.spin_example(sentence, "convert-bench", args.seed, d, j)
            spun.append(text)
            swaps += len(edits)
        paragraphs = [" ".join(spun[k : k + 4]) for k in range(0, len(spun), 4)]
        (folder / f"doc{d:03d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return {"docs": args.n_docs, "sentences": len(sentences), "spinner_swaps": swaps, "corpus": str(args.corpus)}


def run_once(docs: Path, out: Path, engine: str, workers: int, factory) -> dict:
    ray_started = False
    if engine == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            ray_started = True
    start = time.monotonic()
    try:
        config = ConvertConfig(out=str(out), engine=engine, workers=workers, progress=False)
        summary = convert_files([docs], config, factory)
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    wall = time.monotonic() - start
    return {
        "engine": engine,
        "workers": workers,
        "files": summary.total,
        "failed": summary.failed + summary.partial,
        "words": summary.words,
        "edits": summary.edits,
        "seconds": round(summary.seconds, 3),
        "wall_seconds": round(wall, 3),
        "words_per_second": round(summary.words_per_second, 1),
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    model = str(args.model) if args.model else None
    factory = RestorerFactory(model, threads=args.threads)
    runs = [(spec.split(":")[0], int(spec.split(":")[1])) for spec in args.runs.split(",")]
    with tempfile.TemporaryDirectory(prefix="convert-bench-") as tmp:
        docs, built = args.docs, None
        if docs is None:
            docs = Path(tmp) / "docs"
            built = build_docs(docs, args)
        results = []
        for k, (engine, workers) in enumerate(runs):
            result = run_once(docs, Path(tmp) / f"out{k}", engine, workers, factory)
            results.append(result)
            print(f"{engine:>6} x{workers}: {result['words_per_second']:>9,.0f} words/s  "
                  f"({result['words']:,} words in {result['seconds']:.1f} s, wall {result['wall_seconds']:.1f} s, "
                  f"{result['edits']:,} edits, {result['failed']} failed)")
    report = {
        "docs": str(args.docs) if args.docs else built,
        "model": str(args.model) if args.model else "shipped default",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
