"""The noisy-channel reranker: the T5's edits and the inverse channel's candidates, each scored by
the pretrained language model, combined by a logistic model fitted on synthetic validation pairs.

Two systems propose wordings to put back in a line: the trained T5 (its edits, every one kept,
with its confidence) and the training-free baseline's inverse channel (``research.lm_baseline``:
the lexicon read backwards). The pretrained SmolLM2 scores every proposal the same way, as the
gain in nats of its context window over keeping the spun wording. ``features`` turns a proposal
into numbers (the T5's confidence, whether the T5 proposed something else there, the LM's gain,
how many lexicon sources list the pair, ...), and a logistic model weighs them: its probability
is the edit's confidence, and overlapping proposals go to the likelier one.

The weights are fitted on the builder's validation split (``fit``): a proposal is right when it
puts back the original wording at a place the spinner changed. Real spun text is only scored
with them, never fitted on:

    python -m research.rerank fit --data data/full3 --corpus ../shared/corpora --out runs/rerank
    python -m research.rerank evaluate --markup ../shared/eval/real_dev --corpus ../shared/corpora \
        --rerank runs/rerank/reranker.json                   # the reranked T5
    python -m research.rerank evaluate --markup ../shared/eval/real_dev --corpus ../shared/corpora
                                                             # the training-free baseline alone
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from rewrite.files import atomic_write
from rewrite.edits import Edit

from training.errors import ConfigError
from research.lm_baseline import Candidate, non_overlapping, restore_by_line

log = logging.getLogger(__name__)

FEATURES = ("bias", "t5", "t5_proposed", "t5_other", "gain", "gain_positive", "channel", "support",
            "channel_first", "unscored", "words")
GAIN_CLIP = 8.0


def features(c: Candidate, t5: list[tuple[int, int, str, float]], unscored: bool = False) -> list[float]:
    """The numbers the reranker weighs for candidate ``c`` of a line whose T5 edits are ``t5``
    (``(start, end, replacement, confidence)``, line offsets)."""
    same = [conf for s, e, r, conf in t5 if (s, e) == (c.start, c.end) and r.lower() == c.text.lower()]
    other = any(s < c.end and c.start < e for s, e, r, _ in t5 if not ((s, e) == (c.start, c.end)
                                                                       and r.lower() == c.text.lower()))
    gain = max(-GAIN_CLIP, min(GAIN_CLIP, c.gain)) / 4
    return [1.0, same[0] if same else 0.0, float(bool(same)), float(other), gain, max(gain, 0.0),
            float(c.support > 0), min(c.support, 4) / 4, float(c.rank == 0), float(unscored),
            min(len(c.text.split()), 4) / 4]


def proposals(lines: list[str], t5, baseline) -> list[list[tuple[Candidate, list[float]]]]:
    """For each line: every candidate with its features. ``t5`` is a ``rewrite.Restorer`` (every
    edit kept), ``baseline`` an ``LmBaselineRestorer`` (its channel and scorer)."""
    restored = t5.restore_many(lines, min_confidence=0.0) if lines else []
    out = []
    for line, r in zip(lines, restored):
        edits = [(e.offset, e.offset + e.length, e.replacement, e.confidence) for e in r.edits]
        found = baseline.line_candidates(line, [(s, e, rep) for s, e, rep, _ in edits])
        scored = {(c.start, c.end, c.text) for c in found}
        rows = [(c, features(c, edits)) for c in found if c.text != line[c.start : c.end]]
        for s, e, rep, _ in edits:  # a T5 edit the LM could not score (it starts inside a token)
            if (s, e, rep) not in scored:
                c = Candidate(s, e, rep, 0.0, 0, -1)
                rows.append((c, features(c, edits, unscored=True)))
        out.append(rows)
    return out


def gold_spans(spun: str, edits: list[dict]) -> dict[tuple[int, int], str]:
    """The builder's edits of one pair (original offsets) as spun-text spans -> original wording."""
    spans, shift = {}, 0
    for e in sorted(edits, key=lambda e: e["start"]):
        start = e["start"] + shift
        end = start + len(e["replacement"])
        if spun[start:end] == e["replacement"]:
            spans[start, end] = e["original"]
        shift += len(e["replacement"]) - (e["end"] - e["start"])
    return spans


def label(c: Candidate, gold: dict[tuple[int, int], str]) -> int:
    return int(gold.get((c.start, c.end), "\0").lower() == c.text.lower())


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z > -50 else 0.0


def probability(weights: list[float], feats: list[float]) -> float:
    """The logistic model's probability that a proposal with ``feats`` is right."""
    return sigmoid(sum(w * f for w, f in zip(weights, feats)))


def fit_logistic(x: list[list[float]], y: list[int], l2: float = 1e-2, steps: int = 50) -> list[float]:
    """Weights of a logistic model by Newton's method with an L2 penalty (bias unpenalised)."""
    import numpy as np

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(set(y)) < 2:
        raise ConfigError("fitting the reranker needs right and wrong proposals: give more examples")
    w = np.zeros(xs.shape[1])
    penalty = np.full(xs.shape[1], l2 * len(ys))
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(xs @ w, -50, 50)))
        grad = xs.T @ (p - ys) + penalty * w
        hess = (xs * (p * (1 - p))[:, None]).T @ xs + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return [float(v) for v in w]


class RerankedRestorer:
    """Restores text with a T5 ``Restorer``, an ``LmBaselineRestorer`` and fitted weights;
    ``restore_many`` answers like ``rewrite.Restorer.restore_many``."""

    def __init__(self, t5, baseline, weights: list[float]):
        if len(weights) != len(FEATURES):
            raise ConfigError(f"the reranker has {len(FEATURES)} weights ({', '.join(FEATURES)}), got {len(weights)}")
        self.t5, self.baseline, self.weights = t5, baseline, weights
        self.model_folder = None

    @classmethod
    def load(cls, path: str | Path, t5, baseline) -> "RerankedRestorer":
        path = Path(path)
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
            if card["features"] != list(FEATURES):
                raise ConfigError(f"{path} was fitted on other features: refit it with `python -m research.rerank fit`")
            return cls(t5, baseline, card["weights"])
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError(f"cannot read reranker weights {path} ({err}): fit them with "
                              "`python -m research.rerank fit`") from err

    def line_edits(self, line: str, rows: list[tuple[Candidate, list[float]]]) -> list[Edit]:
        scored = sorted(((probability(self.weights, feats), c) for c, feats in rows),
                        key=lambda pc: (-pc[0], pc[1].start, pc[1].end, pc[1].text))
        return non_overlapping(line, [(c, round(p, 4)) for p, c in scored])

    def restore_many(self, texts: list[str], min_confidence: float = 0.0) -> list[Restoration]:
        return restore_by_line(texts, lambda lines: [self.line_edits(line, rows) for line, rows in
                                                     zip(lines, proposals(lines, self.t5, self.baseline))],
                               min_confidence)


def fit(data: str, corpus: list[str], out: str | Path, model: str | None = None, split: str = "validation",
        max_examples: int = 200, seed: int = 13, held_out: float = 0.25) -> dict:
    """Collect proposals on ``max_examples`` pairs of ``data``'s ``split``, fit the weights on all
    but a ``held_out`` share of the pairs, report them on that share, refit on every pair and
    write ``reranker.json`` (weights, features, counts, settings) to ``out``."""
    from rewrite import Restorer

    from training.build import load_dataset_dir
    from research.lm_baseline import LmBaselineRestorer

    dataset = load_dataset_dir(data)
    if split not in dataset or len(dataset[split]) == 0:
        raise ConfigError(f"{data} has no {split!r} pairs to fit the reranker on")
    rows = dataset[split].shuffle(seed=seed).select(range(min(max_examples, len(dataset[split]))))
    t5 = Restorer.from_pretrained(model)
    baseline = LmBaselineRestorer.build(corpus)
    started = time.time()
    spun = list(rows["spun"])
    found = proposals(spun, t5, baseline)
    seconds = time.time() - started
    examples = [[(feats, label(c, gold_spans(s, e))) for c, feats in line]
                for s, e, line in zip(spun, rows["edits"], found)]
    cut = int(len(examples) * (1 - held_out))
    train = [pair for line in examples[:cut] for pair in line]
    test = [pair for line in examples[cut:] for pair in line]
    weights = fit_logistic([f for f, _ in train], [y for _, y in train])
    report = {}
    for threshold in (0.3, 0.5, 0.7, 0.9):
        chosen = [y for f, y in test if probability(weights, f) >= threshold]
        report[str(threshold)] = {"proposals_kept": len(chosen), "right": sum(chosen)}
    weights = fit_logistic([f for line in examples for f, _ in line], [y for line in examples for _, y in line])
    card = {"features": list(FEATURES), "weights": weights,
            "fitted_on": {"data": str(data), "split": split, "pairs": len(examples), "seed": seed,
                          "proposals": sum(len(line) for line in examples),
                          "right": sum(y for line in examples for _, y in line),
                          "t5": str(t5.model_folder), "corpus": list(corpus), "collect_seconds": round(seconds, 1)},
            "held_out": {"pairs": len(examples) - cut, "proposals": len(test), "right": sum(y for _, y in test),
                         "by_probability": report}}
    out = Path(out)
    # features and labels by pair, to refit without the language model
    atomic_write(out / "proposals.json", (json.dumps({"features": list(FEATURES), "pairs": examples}) + "\n").encode())
    atomic_write(out / "reranker.json", (json.dumps(card, indent=2) + "\n").encode())
    return card


def cli_group():
    """The click group of ``python -m research.rerank``: ``fit`` and ``evaluate``."""
    import click

    from rewrite.exits import user_errors

    @click.group()
    def cli() -> None:
        """The noisy-channel reranker (research/rerank.py)."""

    @cli.command("fit")
    @click.option("--data", required=True, type=click.Path(exists=True), help="A built dataset (unspin build-dataset).")
    @click.option("--corpus", "corpus", multiple=True, required=True, type=click.Path(exists=True),
                  help="Clean text whose common words the inverse channel may put back.")
    @click.option("--out", required=True, type=click.Path(), help="Folder for reranker.json.")
    @click.option("--model", default=None, help="The T5 model folder (default: the shipped model).")
    @click.option("--split", default="validation", show_default=True)
    @click.option("--max-examples", default=200, show_default=True, type=click.IntRange(8))
    @click.option("--seed", default=13, show_default=True)
    def fit_cmd(data, corpus, out, model, split, max_examples, seed):
        """Fit the reranker's weights on a dataset's synthetic pairs."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        with user_errors():
            card = fit(data, list(corpus), out, model, split, max_examples, seed)
        click.echo(json.dumps({k: card[k] for k in ("features", "weights", "fitted_on", "held_out")}, indent=2))

    @cli.command("evaluate")
    @click.option("--markup", "markup", multiple=True, required=True, type=click.Path(),
                  help="Annotated real spun text: .markup files or folders of them (repeatable).")
    @click.option("--corpus", "corpus", multiple=True, required=True, type=click.Path(),
                  help="Clean text whose common words the baseline may put back (repeatable).")
    @click.option("--rerank", "weights", default=None, type=click.Path(),
                  help="reranker.json written by `fit`: score the reranked T5 (without it: the baseline alone).")
    @click.option("--model", default=None, help="With --rerank: the T5 model folder (default: the shipped model).")
    @click.option("--backend", default="auto", show_default=True, help="With --rerank: the T5's backend.")
    @click.option("--json", "as_json", is_flag=True, help="Print all metrics as JSON.")
    def evaluate_cmd(markup, corpus, weights, model, backend, as_json):
        """Score the training-free baseline, or with --rerank the reranked T5, on markup files."""
        from rewrite import Restorer
        from training.markup import choose_threshold, evaluate_markup, format_report, markup_files

        from research.lm_baseline import LmBaselineRestorer

        with user_errors():
            files = markup_files(list(markup))
            restorer = LmBaselineRestorer.build(list(corpus))
            if weights:
                restorer = RerankedRestorer.load(weights, Restorer.from_pretrained(model, backend=backend), restorer)
            result = evaluate_markup(files, restorer)
        if as_json:
            click.echo(json.dumps(result, indent=2, ensure_ascii=False))
            return
        name = ("reranked (T5 + inverse lexicon, scored by SmolLM2)" if weights
                else "baseline lm (pretrained SmolLM2, inverse lexicon)")
        click.echo(format_report(result, choose_threshold(result), f"{len(files)} markup files, model {name}"))

    return cli


def main(argv: list[str] | None = None) -> None:
    """``python -m research.rerank fit|evaluate`` (see the module docstring)."""
    cli_group().main(args=argv, prog_name="python -m research.rerank")


if __name__ == "__main__":
    main()
