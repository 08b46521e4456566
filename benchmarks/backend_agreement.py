"""How often each backend's output equals the exact greedy output, per sentence and per edit.

    python benchmarks/backend_agreement.py --pairs data/full2/parquet/test.parquet --n 300 \
        --out benchmarks/results/backend_agreement.json

The reference is ``torch-greedy`` (``model.generate`` greedy search). Every other backend runs the
same spun sentences through the whole ``Restorer`` (segmenting, batching by length, alignment,
guard), and the script reports

- ``same_sentences``: the share of model inputs whose restored sentence is identical to greedy's;
- ``same_edits``: the share of sentences whose final edits (offset, length, replacement) are
  identical to those the restorer makes with greedy decoding;
- ``edit_precision`` / ``edit_recall``: the backend's edits that greedy also makes, and greedy's
  edits the backend also makes; ``confidence_mad``: mean absolute difference of the confidence of
  the edits both make;
- ``seconds``: wall time of ``restore_many`` over all sentences (batch 32, after one warm-up call).

Sentences come from ``--pairs`` (a dataset split: parquet with a ``spun`` column, e.g. the test
split the dataset builder wrote), from ``--markup`` (the spun text of evaluation markup files,
``training.markup``: every model input of every file; the report then leaves out the example
sentences, so evaluation text never lands in the results) or, without either, from spun corpus
paragraphs as ``decode_bench.py`` builds them. ``"auto"`` in ``rewrite.backends`` is chosen from
these numbers. A language-model folder (``rewrite.lm``) works the same way:

    nice -n 10 python benchmarks/backend_agreement.py --model runs/lm/model --markup ../shared/eval/real_dev \
        --backends ct2:float32,ct2:int8 --threads 2
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_MODEL = REPO / "rewrite" / "models" / "default"
REFERENCE = "torch-greedy"
CANDIDATES = ("torch", "ct2:int8", "ct2:int8_float32", "ct2:float32")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="Model folder (default: the shipped model).")
    p.add_argument("--pairs", type=Path, help="Parquet dataset split with a 'spun' column (default: build sentences).")
    p.add_argument("--markup", type=Path, nargs="+", help="Markup files or folders: compare on their spun text.")
    p.add_argument("--n", type=int, default=300, help="Sentences to compare (not with --markup: all of them).")
    p.add_argument("--seed", type=int, default=13, help="Seed for sampling the sentences.")
    p.add_argument("--backends", default=",".join(CANDIDATES),
                   help="Comma-separated backends to compare with torch-greedy; ct2:TYPE picks a compute type.")
    p.add_argument("--threads", type=int, default=1, help="Threads per backend (0: the library default).")
    p.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.n < 1:
        p.error("--n must be at least 1")
    return args


def load_sentences(pairs: Path | None, n: int, seed: int, markup: list[Path] | None = None) -> list[str]:
    """``n`` spun sentences: a seeded sample of ``pairs``, or the sentences of built paragraphs;
    with ``markup``, every model input of the files' spun text."""
    from decode_bench import DEFAULT_CORPUS, build_paragraphs, segments

    if markup:
        from training.markup import markup_files, read_markup, spun_text

        return [s for path in markup_files(markup) for s in segments(spun_text(read_markup(path)))]
    if pairs is not None:
        import pyarrow.parquet as pq

        spun = [s for s in pq.read_table(pairs, columns=["spun"]).column("spun").to_pylist() if s and s.strip()]
        return random.Random(seed).sample(spun, min(n, len(spun)))
    sentences: list[str] = []
    for paragraph in build_paragraphs(DEFAULT_CORPUS, n // 4 + 1, seed):
        sentences += segments(paragraph)
    return sentences[:n]


class Recording:
    """A backend that remembers every sentence it restored: ``outputs[input] = Generated``."""

    def __init__(self, backend):
        self.backend = backend
        self.name = backend.name
        self.outputs: dict = {}

    def generate(self, sentences):
        generated = self.backend.generate(sentences)
        self.outputs.update(zip(sentences, generated))
        return generated


def make_backend(spec: str, folder: Path, threads: int):
    from rewrite.backends import load_backend
    from rewrite.families import family_of

    if spec.startswith("ct2:"):
        return family_of(folder).CT2_BACKEND.load(folder, compute_type=spec.split(":", 1)[1], threads=threads)
    return load_backend(folder, spec, threads=threads)


def run_backend(spec: str, folder: Path, sentences: list[str], threads: int) -> dict:
    from rewrite import Restorer

    backend = Recording(make_backend(spec, folder, threads))
    restorer = Restorer(backend)
    restorer.restore_many(sentences[:4])  # warm-up
    backend.outputs.clear()
    start = time.perf_counter()
    restorations = restorer.restore_many(sentences)
    seconds = time.perf_counter() - start
    return {"outputs": {k: g.text for k, g in backend.outputs.items()}, "restorations": restorations,
            "seconds": round(seconds, 2)}


def compare(reference: dict, other: dict) -> dict:
    inputs = list(reference["outputs"])
    same_sentences = sum(reference["outputs"][k] == other["outputs"].get(k) for k in inputs)
    same_edits = kept = made = 0
    confidence_gaps = []
    for want, got in zip(reference["restorations"], other["restorations"]):
        want_edits = {(e.offset, e.length, e.replacement): e.confidence for e in want.edits}
        got_edits = {(e.offset, e.length, e.replacement): e.confidence for e in got.edits}
        same_edits += want_edits.keys() == got_edits.keys()
        common = want_edits.keys() & got_edits.keys()
        kept += len(common)
        made += len(got_edits)
        confidence_gaps += [abs(want_edits[k] - got_edits[k]) for k in common]
    total_reference = sum(len(r.edits) for r in reference["restorations"])
    return {
        "same_sentences": round(same_sentences / len(inputs), 4),
        "different_sentences": len(inputs) - same_sentences,
        "same_edits": round(same_edits / len(reference["restorations"]), 4),
        "edits": made,
        "edit_precision": round(kept / made, 4) if made else 1.0,
        "edit_recall": round(kept / total_reference, 4) if total_reference else 1.0,
        "confidence_mad": round(sum(confidence_gaps) / len(confidence_gaps), 4) if confidence_gaps else 0.0,
        "seconds": other["seconds"],
        "examples": [
            {"input": k, "greedy": reference["outputs"][k], "backend": other["outputs"].get(k)}
            for k in inputs
            if reference["outputs"][k] != other["outputs"].get(k)
        ][:10],
    }


def main(argv=None) -> None:
    import logging

    from transformers.utils import logging as hf_logging

    logging.basicConfig(level=logging.WARNING)
    hf_logging.disable_progress_bar()
    args = parse_args(argv)
    sentences = load_sentences(args.pairs, args.n, args.seed, args.markup)
    print(f"{len(sentences)} sentences, model {args.model}, threads {args.threads}", file=sys.stderr)
    reference = run_backend(REFERENCE, args.model, sentences, args.threads)
    results = {REFERENCE: {"seconds": reference["seconds"], "edits": sum(len(r.edits) for r in reference["restorations"]),
                           "model_inputs": len(reference["outputs"])}}
    for spec in args.backends:
        print(f"running {spec} ...", file=sys.stderr)
        results[spec] = compare(reference, run_backend(spec, args.model, sentences, args.threads))
        if args.markup:  # evaluation text stays out of the results
            results[spec].pop("examples")
    print("| backend | same sentences | same edits | edit precision | edit recall | conf. MAD | seconds |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {REFERENCE} (reference) | 1 | 1 | 1 | 1 | 0 | {reference['seconds']} |")
    for spec in args.backends:
        r = results[spec]
        print(f"| {spec} | {r['same_sentences']:.2%} | {r['same_edits']:.2%} | {r['edit_precision']:.2%} | "
              f"{r['edit_recall']:.2%} | {r['confidence_mad']:.4f} | {r['seconds']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"args": {k: [str(x) for x in v] if k == "markup" and v else str(v) if isinstance(v, Path) else v
                           for k, v in vars(args).items()},
                  "sentences": len(sentences), "results": results}
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
