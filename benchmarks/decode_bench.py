"""Decoding speed: words/s restoring spun paragraphs at batch 1 and 32, latency, peak memory.

    python benchmarks/decode_bench.py                              # shipped model, built paragraphs
    nice -n 5 python benchmarks/decode_bench.py --threads 1 --shallow runs/gpu/shallow \
        --out benchmarks/results/decode_bench.json                 # the table in the README
    python benchmarks/decode_bench.py --docs paragraphs.txt --threads 2 --out runs/decode_bench.json

Methods (each in a fresh process, so its peak memory is its own):

- ``generate``: the baseline, ``model.generate`` greedy search (``rewrite.decoding``, method "greedy");
- ``guided``: input-guided decoding, same model, identical output;
- ``guided-shallow``: input-guided decoding with the ``--shallow`` model (a different model:
  its outputs are compared with the baseline's, but they need not match);
- ``ct2-int8``: CTranslate2 greedy search, int8 weights (``rewrite.ct2``; converted on first use,
  outside the timing); ``ct2-int8_float32`` and ``ct2-float32`` use those compute types;
- ``restorer``: the whole ``Restorer.restore_many`` pipeline as shipped (segmenting, decoding with
  the backend "auto" picks, alignment, guard), for the cost around the decoder; ``restorer:NAME``
  uses the backend NAME (``rewrite.backends.BACKENDS``: ``restorer:torch``, ``restorer:ct2``, ...).

Speed-ups and "same output" are against ``generate`` for the model-level methods and against
``restorer:torch-greedy`` (the Restorer with plain greedy search: the issue's baseline) for the
restorer rows.

The model-level methods time what the Restorer's backend does: whitespace-normalised sentences in
(cut as the Restorer cuts them), restored sentences out (tokenize, decode, detokenize). ``batch 32``
sorts the sentences by length first, as the Restorer does. ``words`` are whitespace-separated
words of the input paragraphs. Latency is one call restoring the paragraph closest to 100 words
(its sentences in one batch), repeated ``--repeats`` times.

Paragraphs come from ``--docs`` (one paragraph a line) or are built from the corpus: sentences of
``current_events_sentences.txt`` (DATE<TAB>sentence), spun with the dataset builder's spinner, put
together until a paragraph has 90 words or more.

A language-model folder (``unspin train --arch lm``: ``base_model.json`` beside the tuned layers)
runs the same methods through ``rewrite.lm``'s backends: ``generate`` is ``greedy_lm`` (plain
``model.generate``), ``guided`` is ``guided_lm``, ``ct2-*`` is ``Ct2LmBackend`` (the merged model
converted into the cache on first use, outside the timing); its default methods are
``generate,guided,ct2-float32,ct2-int8``:

    nice -n 10 python benchmarks/decode_bench.py --model runs/lm/model --threads 2 \
        --out benchmarks/results/decode_bench_lm.json

A randomly initialised model is fine for checking the mechanics but says nothing about the guided
speed-up, which comes from the model copying its input: benchmark a trained model.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import random
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rewrite.text import normalise_whitespace, split_long, split_sentences  # noqa: E402

DEFAULT_MODEL = REPO / "rewrite" / "models" / "default"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpora" / "wikipedia_current_events" / "current_events_sentences.txt"
METHODS = ("generate", "guided", "guided-shallow", "ct2-int8", "ct2-int8_float32", "ct2-float32", "restorer")
T5_METHODS = ("generate,guided,guided-shallow,ct2-int8,ct2-float32,"
              "restorer:torch-greedy,restorer:torch,restorer:ct2,restorer")
LM_METHODS = "generate,guided,ct2-float32,ct2-int8"
MAX_WORDS = 64  # the Restorer's default segment length


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="Model folder (default: the shipped model).")
    p.add_argument("--shallow", type=Path, help="A shallow-decoder model folder to time with guided decoding.")
    p.add_argument("--docs", type=Path, help="Paragraphs to restore, one a line (default: build spun ones).")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="DATE<TAB>sentence lines to spin.")
    p.add_argument("--n-paragraphs", type=int, default=20, help="Paragraphs to build (about 100 words each).")
    p.add_argument("--seed", type=int, default=13, help="Seed for picking and spinning sentences.")
    p.add_argument("--methods", help=f"Comma-separated methods to run, from {', '.join(METHODS)} and "
                   f"restorer:BACKEND (default: {T5_METHODS}; for a language-model folder: {LM_METHODS}).")
    p.add_argument("--batch-sizes", default="1,32", help="Comma-separated batch sizes for words/s.")
    p.add_argument("--repeats", type=int, default=20, help="Latency measurements of the 100-word paragraph.")
    p.add_argument("--threads", type=int, default=0, help="Torch / CTranslate2 threads (0: the defaults the "
                   "Restorer uses: torch's own, rewrite.ct2.ct2_threads for CTranslate2). "
                   "On a machine shared with other jobs pin 1: the default collapses when the cores are busy.")
    p.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = p.parse_args(argv)
    from rewrite.lm import is_lm_folder

    args.methods = args.methods or (LM_METHODS if is_lm_folder(args.model) else T5_METHODS)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(m for m in args.methods if m not in METHODS and not m.startswith("restorer:"))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    if "guided-shallow" in args.methods and args.shallow is None:
        args.methods.remove("guided-shallow")
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.n_paragraphs < 1 or args.repeats < 1 or min(args.batch_sizes) < 1:
        p.error("--n-paragraphs, --repeats and batch sizes must be at least 1")
    if not (args.model / "config.json").is_file():
        p.error(f"{args.model} is not a model folder; pass --model DIR (a folder a training run wrote)")
    return args


# --- inputs --------------------------------------------------------------------------------------


def build_paragraphs(corpus: Path, n: int, seed: int) -> list[str]:
    """``n`` spun paragraphs of 90+ words from consecutive corpus sentences (a seeded start)."""
    from training.lexicon import load_lexicon
    from training.spinner import Spinner

    lines = corpus.read_text(encoding="utf-8").splitlines()
    sentences = [normalise_whitespace(line.split("\t", 1)[-1]) for line in lines]
    sentences = [s for s in sentences if 6 <= len(s.split()) <= 60]
    spinner = Spinner(load_lexicon())
    start = random.Random(seed).randrange(max(1, len(sentences) - 40 * n))
    paragraphs, current = [], []
    for i, sentence in enumerate(sentences[start:], start):
        spun, _, _, _ = spinner.spin_example(sentence, "decode-bench", seed, i)
        current.append(spun)
        if sum(len(s.split()) for s in current) >= 90:
            paragraphs.append(" ".join(current))
            current = []
            if len(paragraphs) == n:
                break
    return paragraphs


def segments(paragraph: str) -> list[str]:
    """The model inputs the Restorer makes of one paragraph (sentences, long ones split)."""
    out = []
    for start, end in split_sentences(paragraph):
        sentence = paragraph[start:end]
        out += [normalise_whitespace(sentence[a:b]) for a, b in split_long(sentence, MAX_WORDS)]
    return [s for s in out if s]


# --- decoders ------------------------------------------------------------------------------------


class ModelDecoder:
    """Sentences in, restored sentences out, with one decoding method."""

    def __init__(self, folder: Path, method: str, threads: int):
        import torch
        from transformers import T5ForConditionalGeneration

        from rewrite.decoding import word_start_ids
        from training.tokenizer import load_tokenizer

        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = load_tokenizer(folder)
        self.method = method
        if method.startswith("ct2-"):
            from rewrite.ct2 import ct2_threads
            from rewrite.ct2 import Ct2Model

            compute_type = method[len("ct2-"):]
            self.threads = threads or ct2_threads(compute_type)
            self.model = Ct2Model.load(folder, compute_type=compute_type, threads=self.threads)
        else:
            self.threads = torch.get_num_threads()
            self.model = T5ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
            self.word_starts = word_start_ids(self.tokenizer)

    def __call__(self, sentences: list[str]) -> list[str]:
        from rewrite.decoding import generate_ids

        batch = self.tokenizer(sentences, padding=True, return_tensors="pt")
        max_new_tokens = 2 * int(batch.attention_mask.sum(1).max()) + 16  # as the Restorer's backend
        if self.method.startswith("ct2-"):
            ids, _ = self.model.generate_ids(batch.input_ids, batch.attention_mask, max_new_tokens)
        else:
            method = "greedy" if self.method == "generate" else "guided"
            ids, _ = generate_ids(
                self.model, batch.input_ids, batch.attention_mask, max_new_tokens, method, word_starts=self.word_starts
            )
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)


class LmDecoder:
    """Sentences in, restored sentences out, through a language-model backend (``rewrite.lm``)."""

    def __init__(self, folder: Path, method: str, threads: int):
        import torch

        from rewrite.ct2 import ct2_threads
        from rewrite.lm import Ct2LmBackend, LmBackend

        self.method = method
        if method.startswith("ct2-"):
            compute_type = method[len("ct2-"):]
            self.threads = threads or ct2_threads(compute_type)
            self.backend = Ct2LmBackend.load(folder, compute_type=compute_type, threads=self.threads)
        else:
            self.backend = LmBackend.load(folder, method="greedy" if method == "generate" else "guided", threads=threads)
            self.threads = torch.get_num_threads()

    def __call__(self, sentences: list[str]) -> list[str]:
        ids, _ = self.backend.decode_ids(sentences)
        return self.backend.tokenizer.batch_decode(ids, skip_special_tokens=True)


class RestorerDecoder:
    """The whole Restorer: paragraphs in, restored paragraphs out."""

    def __init__(self, folder: Path, threads: int, backend: str = "auto"):
        from rewrite import Restorer

        import torch

        from rewrite.ct2 import ct2_threads

        self.restorer = Restorer.from_pretrained(folder, backend=backend, threads=threads)
        self.backend = self.restorer.backend.name
        compute_type = getattr(self.restorer.backend, "compute_type", None)
        self.threads = (threads or ct2_threads(compute_type)) if compute_type else torch.get_num_threads()

    def __call__(self, paragraphs: list[str], batch_size: int) -> list[str]:
        import dataclasses

        self.restorer.config = dataclasses.replace(self.restorer.config, batch_size=batch_size)
        return [r.text for r in self.restorer.restore_many(paragraphs)]


# --- measurement (runs in a child process) -------------------------------------------------------


def measure(
    method: str,
    folder: str,
    paragraphs: list[str],
    batch_sizes: list[int],
    repeats: int,
    threads: int,
) -> dict:
    from transformers.utils import logging as hf_logging

    logging.basicConfig(level=logging.WARNING)
    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    whole = method.split(":")[0] == "restorer"
    backend = method.split(":", 1)[1] if ":" in method else "auto"
    from rewrite.lm import is_lm_folder

    if whole:
        decoder = RestorerDecoder(Path(folder), threads, backend)
    else:
        decoder = (LmDecoder if is_lm_folder(folder) else ModelDecoder)(Path(folder), method, threads)
    load_seconds = time.perf_counter() - started
    words = sum(len(p.split()) for p in paragraphs)
    sentences = [s for p in paragraphs for s in segments(p)]
    latency_paragraph = min(paragraphs, key=lambda p: abs(len(p.split()) - 100))
    run = (lambda p: decoder([p], 32)) if whole else (lambda p: decoder(segments(p)))
    run(latency_paragraph)  # warm-up
    result: dict = {"method": method, "model": folder, "load_seconds": round(load_seconds, 2), "words": words}
    result["threads"] = decoder.threads
    if whole:
        result["backend"] = decoder.backend
        result["method"] = f"restorer ({decoder.backend})" if ":" in method else f"restorer auto ({decoder.backend})"
    for size in batch_sizes:
        start = time.perf_counter()
        if whole:
            outputs = decoder(paragraphs, size)
        else:
            order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
            outputs = [""] * len(sentences)
            for first in range(0, len(order), size):
                chunk = order[first : first + size]
                for i, text in zip(chunk, decoder([sentences[i] for i in chunk])):
                    outputs[i] = text
        seconds = time.perf_counter() - start
        result[f"batch{size}"] = {"seconds": round(seconds, 3), "words_per_second": round(words / seconds, 1)}
        result.setdefault("outputs", outputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(latency_paragraph)
        times.append(1000 * (time.perf_counter() - start))
    cuts = statistics.quantiles(times, n=20, method="inclusive") if len(times) > 1 else times * 19
    result["latency_ms"] = {
        "words": len(latency_paragraph.split()),
        "p50": round(statistics.median(times), 1),
        "p95": round(cuts[18], 1),
    }
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peak_rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` where Linux has it: ``ru_maxrss`` survives
    ``exec``, so a spawned child would report its parent's peak if that was higher."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_isolated(*args) -> dict:
    """``measure`` in a fresh process (spawned: no memory or threads inherited from this one)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, *args).result()


# --- report --------------------------------------------------------------------------------------


def baseline(result: dict, results: list[dict]) -> dict | None:
    """What ``result`` is compared with: ``restorer:torch-greedy`` for restorer rows (when it ran),
    ``generate`` for the others (the Restorer with plain greedy search is the issue's baseline)."""
    if "backend" in result:
        base = next((r for r in results if r.get("backend") == "torch-greedy"), None)
        if base is not None:
            return base
    return next((r for r in results if r["method"] == "generate"), None)


def table(results: list[dict], batch_sizes: list[int]) -> str:
    """Markdown table; speed-ups and identical outputs are against each row's ``baseline``."""
    head = ["method", "threads"] + [f"words/s b{b}" for b in batch_sizes] + [f"speed-up b{b}" for b in batch_sizes]
    head += ["p50 ms", "p95 ms", "peak MB", "same output as baseline"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        base = baseline(r, results)
        cells = [r["method"], str(r.get("threads", "?"))] + [f"{r[f'batch{b}']['words_per_second']:.0f}" for b in batch_sizes]
        for b in batch_sizes:
            cells.append(f"{r[f'batch{b}']['words_per_second'] / base[f'batch{b}']['words_per_second']:.2f}x" if base else "n/a")
        cells += [f"{r['latency_ms']['p50']:.0f}", f"{r['latency_ms']['p95']:.0f}", f"{r['peak_rss_mb']:.0f}"]
        cells.append(r.get("same_as_baseline", "baseline" if r is base else "n/a"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def environment(args: argparse.Namespace) -> dict:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
           "threads": args.threads or "library defaults (see each result)", "torch_default_threads": torch.get_num_threads(),
           "platform": platform.platform()}
    try:
        import ctranslate2

        env["ctranslate2"] = ctranslate2.__version__
    except ImportError:
        pass
    return env


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.docs:
        paragraphs = [normalise_whitespace(line) for line in args.docs.read_text(encoding="utf-8").splitlines()]
        paragraphs = [p for p in paragraphs if p]
    else:
        paragraphs = build_paragraphs(args.corpus, args.n_paragraphs, args.seed)
    n_sentences = sum(len(segments(p)) for p in paragraphs)
    print(f"{len(paragraphs)} paragraphs, {n_sentences} sentences, "
          f"{sum(len(p.split()) for p in paragraphs)} words; model {args.model}", file=sys.stderr)
    results = []
    for method in args.methods:
        folder = args.shallow if method == "guided-shallow" else args.model
        print(f"running {method} ...", file=sys.stderr)
        results.append(run_isolated(method, str(folder), paragraphs, args.batch_sizes, args.repeats, args.threads))
    for r in results:
        base = baseline(r, results)
        if base is not None and r is not base and ("backend" in r) == ("backend" in base):
            same = sum(a == b for a, b in zip(r["outputs"], base["outputs"]))
            r["same_as_baseline"] = f"{same}/{len(base['outputs'])}"
    print(table(results, args.batch_sizes))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                  "environment": environment(args), "paragraphs": paragraphs, "results": results}
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
