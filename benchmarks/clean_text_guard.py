"""Clean text and spun text through the shipped model, for the faithfulness guard (issue 25).

    nice -n 10 python benchmarks/clean_text_guard.py --label after \
        --out benchmarks/results/clean_text_guard.json

Measures, with the shipped model and its threshold (``restorer.json``), through
``training.markup.evaluate_markup``:

- spun text: recall and wrongful edits per 100 words on ``../shared/eval/real_dev``;
- clean text: edits per 100 words on the markup files' originals (each place written as its first
  alternative), and on held-out clean news: ``--heldout`` sentences of
  ``../shared/corpora/wikipedia_current_events`` from documents (days) the shipped model's dataset
  put in its *test* split (``training.build.split_of`` with the manifest's seed and fractions), so
  never trained on;
- the guard's refusals on each, by reason (the restorer's ``refused ...: reason`` log lines).

The model's raw outputs are cached (``--cache``, a pickle of ``Generated`` by input sentence), so a
second run with another guard costs no decoding: the guard runs after the model. Each run adds
its figures under ``--label`` to ``--out`` (other labels kept). Only figures and short edited
fragments (the words an edit replaced and wrote) are written: no passage of real_dev or the corpora.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import random
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared"  # ../shared of the checkout; --shared names another
REFUSED = re.compile(r"^refused .* -> .*?': (?P<reason>[^(]*)")


class CachedBackend:
    """A backend whose outputs are read from (and added to) a cache of ``Generated`` by input."""

    def __init__(self, inner, cache: dict):
        self.inner, self.cache = inner, cache

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, batch):
        missing = [text for text in dict.fromkeys(batch) if text not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.generate(missing)))
        return [self.cache[text] for text in batch]


class Reasons(logging.Handler):
    """Counts the guard's refusals by reason."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.counts: Counter = Counter()

    def emit(self, record):
        match = REFUSED.match(record.getMessage())
        if match:
            self.counts[match["reason"].strip()] += 1


def heldout_sentences(shared: Path, n: int, seed: int) -> list[str]:
    """``n`` sentences (seeded sample) of current-events days in the shipped dataset's test split."""
    from rewrite.text import split_sentences
    from training.build import split_of
    from training.corpus import read_corpus

    manifest = json.loads((REPO / "rewrite/models/default/data_manifest.json").read_text())["config"]
    sentences = []
    for doc in read_corpus(shared / "corpora" / "wikipedia_current_events"):
        if split_of(doc.doc_id, manifest["seed"], manifest["validation_fraction"], manifest["test_fraction"]) == "test":
            for para in doc.paragraphs:
                sentences += [para[a:b] for a, b in split_sentences(para) if len(para[a:b].split()) >= 4]
    return random.Random(seed).sample(sentences, min(n, len(sentences)))


def _commit() -> str:
    import subprocess

    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="Key of this run in --out (e.g. before, after).")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/clean_text_guard.json")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/unspin_clean_text_guard_cache.pkl"))
    parser.add_argument("--heldout", type=int, default=200, help="Held-out clean sentences.")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--shared", type=Path, default=SHARED, help="The workspace's shared folder.")
    parser.add_argument("--at", type=float, nargs="*", default=[0.5, 0.8],
                        help="Thresholds reported besides the shipped one (each must be on the curve).")
    args = parser.parse_args()

    from rewrite import Restorer
    from training.markup import choose_threshold, evaluate_markup, markup_files

    restorer = Restorer.from_pretrained(None, backend=args.backend)
    cache = pickle.loads(args.cache.read_bytes()) if args.cache.is_file() else {}
    restorer.backend = CachedBackend(restorer.backend, cache)
    reasons = Reasons()
    logging.getLogger("rewrite").addHandler(reasons)
    logging.getLogger("rewrite").setLevel(logging.INFO)
    heldout = heldout_sentences(args.shared, args.heldout, args.seed)
    files = markup_files([args.shared / "eval" / "real_dev"])
    result = evaluate_markup(files, restorer, clean={f"heldout:{k}": s for k, s in enumerate(heldout)})
    args.cache.write_bytes(pickle.dumps(cache))

    shipped = restorer.config.min_confidence
    chosen = choose_threshold(result)
    rows = {row["min_confidence"]: row for row in result["curve"]}

    def at(threshold: float) -> dict:
        row = rows[threshold]
        return {"min_confidence": threshold, "recall": round(row["recall"], 4),
                "wrongful_per_100_words": round(row["wrongful_per_100_words"], 3),
                "edits_on_spun": row["edits"],
                "clean_edits_per_100_words_real_dev_originals": round(row["clean_edits_per_100_words"], 3),
                "clean_edits_real_dev_originals": row["clean_edits"], "clean_words_real_dev_originals": row["clean_words"],
                "clean_edits_per_100_words_heldout": round(row["heldout_clean_edits_per_100_words"], 3),
                "clean_edits_heldout": row["heldout_clean_edits"], "clean_words_heldout": row["heldout_clean_words"]}

    figures = {
        "at_shipped_threshold": at(shipped),
        "at_threshold": {str(t): at(t) for t in args.at},
        "every_edit": at(0.0),
        "chosen_threshold_by_rule": chosen,
        "clean_edits_at_shipped_threshold": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in e.items()}
            for e in result["clean_edits"] if e["confidence"] >= shipped],
        "refusals_by_reason": dict(reasons.counts.most_common()),
        "curve": [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in result["curve"]],
    }
    out = json.loads(args.out.read_text()) if args.out.is_file() else {}
    out.setdefault("commands", {})[args.label] = (
        f"nice -n 10 python benchmarks/clean_text_guard.py --label {args.label} --heldout {args.heldout}"
        + f" (git {_commit()})")
    out["what"] = ("Shipped model (rewrite/models/default, backend torch) on ../shared/eval/real_dev: spun recall and "
                   "wrongful edits per 100 words; edits per 100 words on the markup files' originals (clean) and on "
                   f"{len(heldout)} held-out clean sentences of ../shared/corpora/wikipedia_current_events (days in "
                   "the shipped dataset's test split, seed 13 sample)")
    out[args.label] = figures
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "clean_edits_at_shipped_threshold"}, indent=2))


if __name__ == "__main__":
    main()
