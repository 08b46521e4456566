"""The spin finder's three parts measured apart on annotated real spun text (issue 26), plus speed.

    python benchmarks/finder_parts.py --markup ../shared/eval/real_dev [--model DIR] [--json OUT]

- **Detection**: words at or above the detector's threshold, as flagged spans, scored like
  ``../shared/eval/score.py detect``: place recall (a place is found when a flagged span overlaps
  it) and word precision (flagged words inside a place).
- **Candidates**: of the places the detector found, the share whose original is among the
  candidates the finder weighed there (channel table and T5).
- **Choice**: of the found places, the share the restorer restored right at its threshold.
- **End to end**: recall and wrongful edits per 100 words at the model's threshold (score.py's
  measure, ``training.markup.score``), and words per second of the whole restorer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewrite import Restorer  # noqa: E402
from training.detector import read_passage, slots_needing_change  # noqa: E402
from training.markup import markup_files, score, spun_text  # noqa: E402


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markup", nargs="+", required=True, help="Markup files or folders.")
    parser.add_argument("--model", default=None, help="Model folder with a finder (default: the shipped one).")
    parser.add_argument("--json", default=None, help="Write the figures here.")
    parser.add_argument("--tortured", type=int, default=0,
                        help="Also restore this many tortured phrases in carrier sentences (training.evaluate's protocol).")
    parser.add_argument("--sample", default=None, help="Also count the edits this text (e.g. the sample article) gets.")
    args = parser.parse_args(argv)

    files = markup_files(args.markup)
    restorer = Restorer.from_pretrained(args.model, mode="find")
    finder = restorer.finder
    texts = [f.read_text(encoding="utf-8") for f in files]
    spun = [spun_text(t) for t in texts]
    words_total = sum(len(s.split()) for s in spun)

    start = time.perf_counter()
    results = restorer.restore_many(spun)
    seconds = time.perf_counter() - start

    # detection: the detector's own threshold over every word
    threshold = finder.detector.config.threshold
    curve = {t: [0, 0, 0] for t in (0.5, 0.6, 0.7, 0.8, 0.9)}  # threshold -> found, flagged, right
    places = found = flagged = right = 0
    weighed = weighed_right = restored_found = 0
    for markup, text, passage, result in zip(texts, spun, [read_passage(f) for f in files], results):
        slots = slots_needing_change(markup)
        offsets, pos = [], 0  # sentence offsets in the text, in the order read_passage cut them
        for sentence in passage.sentences:
            pos = text.index(sentence, pos)
            offsets.append(pos)
            pos += len(sentence)
        probs = finder.detector.word_probs(passage.sentences)
        flags = [(o + s, o + e) for o, row in zip(offsets, probs) for s, e, p in row if p >= threshold]
        for t, row in curve.items():
            at_t = [(o + s, o + e) for o, r in zip(offsets, probs) for s, e, p in r if p >= t]
            row[0] += sum(any(overlaps(f, (s, e)) for f in at_t) for s, e, _ in slots)
            row[1] += len(at_t)
            row[2] += sum(any(overlaps(f, (s, e)) for s, e, _ in slots) for f in at_t)
        places += len(slots)
        hit = [any(overlaps(f, (s, e)) for f in flags) for s, e, _ in slots]
        found += sum(hit)
        flagged += len(flags)
        right += sum(any(overlaps(f, (s, e)) for s, e, _ in slots) for f in flags)
        # candidates weighed at found places: rerun the finder's candidate step on the sentences
        for o, sentence, row in zip(offsets, passage.sentences, probs):
            cands = finder.places(0, sentence, row, [])
            for (s, e, alts), is_hit in zip(slots, hit):
                if not is_hit or not (o <= s and e <= o + len(sentence)):
                    continue
                weighed += 1
                options = {c.lower() for p in cands if (o + p.start, o + p.end) == (s, e) for c in p.options}
                t5 = {ed.replacement.lower() for ed in result.edits if (ed.offset, ed.offset + ed.length) == (s, e)}
                weighed_right += bool((options | t5) & alts)
        for (s, e, alts), is_hit in zip(slots, hit):
            if is_hit and any((ed.offset, ed.offset + ed.length) == (s, e) and ed.replacement.lower() in alts
                              for ed in result.edits):
                restored_found += 1
    restored = wrongful = need = 0
    for markup, result in zip(texts, results):
        r = score(markup, result.text)
        restored += r["restored"]
        need += r["slots_to_restore"]
        wrongful += r["wrongful_edits"]
    figures = {
        "files": len(files), "words": words_total, "model": str(restorer.model_folder),
        "detection": {"threshold": threshold, "places": places, "found": found,
                      "place_recall": round(found / max(places, 1), 3), "flagged_words": flagged,
                      "word_precision": round(right / max(flagged, 1), 3),
                      "by_threshold": [{"threshold": t, "place_recall": round(f / max(places, 1), 3),
                                        "word_precision": round(r / max(n, 1), 3)} for t, (f, n, r) in curve.items()]},
        "candidates": {"found_places": weighed, "original_among_candidates": weighed_right,
                       "coverage": round(weighed_right / max(weighed, 1), 3)},
        "choice": {"found_places_restored_right": restored_found,
                   "share": round(restored_found / max(found, 1), 3)},
        "end_to_end": {"min_confidence": restorer.config.min_confidence, "recall": round(restored / max(need, 1), 3),
                       "wrongful_per_100_words": round(100 * wrongful / max(words_total, 1), 2),
                       "seconds": round(seconds, 1), "words_per_second": round(words_total / seconds, 1)},
    }
    if args.tortured:
        from training.evaluate import TORTURED, tortured_rate

        rate = tortured_rate(restorer, str(TORTURED), args.tortured, 0, 32)
        figures["tortured_phrases"] = {k: rate[k] for k in ("phrases", "restore_rate", "changed_rate")}
    if args.sample:
        result = restorer.restore(Path(args.sample).read_text(encoding="utf-8"))
        pairs: dict[str, int] = {}
        for e in result.edits:
            key = f"{e.original} -> {e.replacement}"
            pairs[key] = pairs.get(key, 0) + 1
        figures["sample"] = {"edits": len(result.edits), "flags": len(result.flags), "pairs": pairs}
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
