"""Click commands for the training side: ``build-dataset``, ``train``, ``evaluate``, ``channel-coverage``,
``average-models``. (``train_process``, the one-process trainer behind ``python -m training.train``,
is in ``training.train``.)

Thin: parse, build a config, call the library; ``rewrite.exits.user_errors`` turns its errors (a
``TrainingError``, or the rewrite package's: a missing model, a bad backend name) into a message
and exit status 2.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import click

from rewrite.exits import user_errors

from .alloc import jemalloc_env
from .config import config_from_flags, train_flags
from .errors import ConfigError
from .flags import config_options, given, to_argv

def _parse_weights(values: tuple[str, ...]) -> dict[str, float]:
    weights = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            weights[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected SOURCE=NUMBER, e.g. current_events=5", param_hint="--weight")
    return weights


def _parse_rate(rate: str) -> tuple[float, float]:
    """``"0.05-0.30"`` -> ``(0.05, 0.3)``."""
    lo, _, hi = rate.partition("-")
    try:
        return float(lo), float(hi)
    except ValueError:
        raise ConfigError(f"--rate {rate!r}: expected MIN-MAX, e.g. 0.05-0.30") from None


def _build_flags(command):
    """build-dataset's plain settings: a flag per ``setting`` field of ``BuildConfig`` and
    ``SpinnerConfig`` (``training.flags``)."""
    from .build import BuildConfig
    from .spinner import SpinnerConfig

    return config_options(SpinnerConfig)(config_options(BuildConfig)(command))


@click.command("build-dataset")
@click.option("--corpus", "corpus", multiple=True, type=click.Path(), help="Corpus file or folder (repeatable).")
@click.option("--out", required=True, type=click.Path(), help="Output folder (written atomically).")
@click.option("--weight", "weights", multiple=True, help="SOURCE=N copies per sentence of a source, e.g. current_events=5.")
@click.option("--pairs", "pairs", multiple=True, type=click.Path(), help='JSONL of real {"spun","original"} pairs.')
@click.option("--rate", default=None, help="Spin-rate range MIN-MAX for every engine, e.g. 0.05-0.30.")
@click.option("--ppdb", "ppdb_file", type=click.Path(dir_okay=False), default=None,
              help="PPDB synonym list (word1 word2 a line; default: ../shared/lexicons/ppdb_synonyms.txt, skipped when absent).")
@click.option("--no-source", "no_sources", multiple=True, help="Switch a lexicon source off (seed, moby, mythes, meteor, ppdb, rules).")
@click.option("--engine", "engine_names", multiple=True,
              help="Spin with only this engine (mixed, thesaurus, phrasal; repeatable; default: all three).")
@_build_flags
def build_dataset_cmd(corpus, out, weights, pairs, rate, ppdb_file, no_sources, engine_names, **flags):
    """Spin a clean corpus into (spun, original) training pairs."""
    from .build import BuildConfig, build_dataset
    from .lexicon import SOURCES, LexiconConfig
    from .spinner import SpinnerConfig, default_engines

    with user_errors():
        engines = default_engines()
        unknown = sorted(set(engine_names) - {e.name for e in engines})
        if unknown:
            raise ConfigError(f"unknown engine {', '.join(unknown)}: choose from "
                             f"{', '.join(e.name for e in engines)}")
        engines = [e for e in engines if not engine_names or e.name in engine_names]
        sources = tuple(s for s in SOURCES if s not in no_sources)
        for engine in engines:
            engine.weights = {k: v for k, v in engine.weights.items() if k in sources}
            if rate:
                engine.rate_min, engine.rate_max = _parse_rate(rate)
                engine.__post_init__()
        engines = [e for e in engines if sum(e.weights.values()) > 0]
        spinner = SpinnerConfig(engines=engines, **given(SpinnerConfig, flags))
        config = BuildConfig(corpus=list(corpus), out=out, weights=_parse_weights(weights), pairs=list(pairs),
                             spinner=spinner, **given(BuildConfig, flags),
                             lexicon=LexiconConfig(sources=sources, **({"ppdb_file": ppdb_file} if ppdb_file else {})))
        manifest = build_dataset(config)
    click.echo(f"wrote {out}")
    click.echo(f"pairs per split: {manifest['pairs']}")
    for name, e in manifest["engines"].items():
        click.echo(f"engine {name}: {e['pairs']} pairs, {e['share_spun']:.1%} of words spun")
    click.echo(f"lexicon sizes: {json.dumps(manifest['lexicon_sizes'])}")
    click.echo(f"edits per lexicon source: {json.dumps(manifest['edits_per_lexicon_source'])}")
    click.echo(f"spinning: {manifest['spin_pairs_per_second']} pairs/s; total {manifest['seconds']} s")


@click.command("train")
@train_flags
@click.option("--nproc", type=int, default=1, show_default=True, help="Data-parallel processes (torchrun).")
def train_cmd(config_file, fp32, nproc, **flags):
    """Train a restorer from scratch, or fine-tune one with --init (resumes if interrupted)."""
    from .train import preflight, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with user_errors():
        config, values = config_from_flags(config_file, fp32, flags)
        preflight(config)
    # Several processes (torchrun), or jemalloc (about 1.5x faster on CPU, see training/alloc.py):
    # run `python -m training.train` with the same settings.
    preloaded = jemalloc_env()  # None: off, missing, or this process already has it
    if nproc > 1 or preloaded is not None:
        args = [sys.executable, "-m", "training.train"]
        env = preloaded or dict(os.environ)
        if nproc > 1:
            args[1:1] = ["-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
            env.setdefault("OMP_NUM_THREADS", "1")
        if config_file:
            args += ["--config", config_file]
        sys.exit(subprocess.call(args + to_argv(values), env=env))
    with user_errors():
        path = train(config)
    click.echo(f"model written to {path}")


@click.command("evaluate")
@click.option("--model", default="", help="Model folder (default: the shipped model).")
@click.option("--data", default=None, type=click.Path(), help="Built dataset folder (its test split is used).")
@click.option("--markup", "markup", multiple=True, type=click.Path(),
              help="Score restorations of real spun text: .markup files or folders of them (repeatable).")
@click.option("--backend", default="auto", show_default=True, help="Backend for --markup.")
@click.option("--clean", "clean", multiple=True, type=click.Path(),
              help="With --markup, also count the edits made to this clean (never spun) text, per 100 words: "
                   "a text file, one passage a line (repeatable).")
@click.option("--max-examples", type=int, default=2000, show_default=True)
@click.option("--tortured-max", type=int, default=600, show_default=True, help="Tortured phrases to test (0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print all metrics as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="With --markup, draw recall against wrongful edits per 100 words by min_confidence into "
                   "this PNG, the chosen threshold marked (a model card shows a curve.png beside the weights).")
@click.option("--compare", "compare", multiple=True, type=click.Path(file_okay=False),
              help="With --markup, also score this model folder on the same files: its table, and its line in "
                   "--plot (repeatable).")
def evaluate_cmd(model, data, markup, backend, clean, max_examples, tortured_max, as_json, plot, compare):
    """Score a model on a dataset's test split against the baselines (writes metrics.json), or on
    real spun text annotated as markup (--markup: recall and wrongful edits per confidence, and
    edits per 100 words of the markup's originals, clean text; --clean adds clean text of your own)."""
    from .evaluate import EvalConfig, evaluate, format_table

    if (plot or compare) and not markup:
        raise click.UsageError("--plot and --compare draw and score the --markup curve; give --markup too")
    if clean and not markup:
        raise click.UsageError("--clean is measured beside --markup: give the markup files too")
    if markup:
        _evaluate_markup(model, markup, backend, as_json, clean, plot=plot, compare=compare)
        return
    if not data:
        raise click.UsageError("give --data (a built dataset) or --markup (annotated real spun text)")

    with user_errors():
        config = EvalConfig(model=model, data=data, max_examples=max_examples, tortured_max=tortured_max or None)
        if not tortured_max:
            config = dataclasses.replace(config, tortured="")
        results = evaluate(config)
    if as_json:
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
        return
    click.echo(format_table(results))
    if "sample_article" in results:
        click.echo("\nrestored sample article:\n" + results["sample_article"])


def _evaluate_markup(model: str, paths: tuple[str, ...], backend: str, as_json: bool,
                     clean_paths: tuple[str, ...] = (), plot: str | None = None,
                     compare: tuple[str, ...] = ()) -> None:
    from rewrite import Restorer

    from .markup import choose_threshold, clean_passages, evaluate_markup, format_report, markup_files

    with user_errors():
        files = markup_files(list(paths))
        clean = clean_passages(list(clean_paths))
        restorer = Restorer.from_pretrained(model or None, backend=backend)
        result = evaluate_markup(files, restorer, clean=clean)
    chosen = choose_threshold(result)
    if model:  # beside the model, like metrics.json: the curve and per-file figures, no text
        numbers = {name: {t: {k: v for k, v in r.items() if not isinstance(v, list)} for t, r in by_t.items()}
                   for name, by_t in result["files"].items()}  # misses quote the text: not kept
        summary = {"source": ", ".join(sorted({str(f.parent) for f in files})), "files_scored": len(files),
                   "clean": "the files' originals (each place written as its first alternative)"
                            + (f"; held out: {', '.join(clean_paths)}" if clean_paths else ""),
                   "curve": result["curve"], "recommended": chosen, "files": numbers}
        (Path(restorer.model_folder) / "markup_metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    systems = [(model or "default", result, chosen)]
    with user_errors():
        for folder in compare:
            other = evaluate_markup(files, Restorer.from_pretrained(folder, backend=backend), clean=clean)
            systems.append((folder, other, choose_threshold(other)))
        if plot:
            from .plot import Curve, plot_curves

            curves = [Curve.from_result(Path(n).name or n, r, c and c["min_confidence"]) for n, r, c in systems]
            plot_curves(curves, plot, title=f"{len(files)} annotated files: {', '.join(sorted({f.parent.name for f in files}))}")
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    for system, scored, picked in systems:
        click.echo(format_report(scored, picked, f"{len(files)} markup files, model {system}"))
    if plot:
        click.echo(f"curve drawn to {plot}")


@click.command("channel-coverage")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (coverage, places, per source/kind, misses).")
@click.option("--examples", type=int, default=10, show_default=True, help="Misses listed per kind (text output).")
@click.option("--no-source", "no_sources", multiple=True, help="Switch a lexicon source off, as in build-dataset.")
def channel_coverage_cmd(files, as_json, examples, no_sources):
    """Share of the places in [[spun||original]] markup FILES the builder's spinner can produce."""
    from pathlib import Path

    from .coverage import channel_coverage, format_report
    from .lexicon import SOURCES, LexiconConfig, load_lexicon
    from .spinner import Spinner, SpinnerConfig

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with user_errors():
        lexicon = load_lexicon(LexiconConfig(sources=tuple(s for s in SOURCES if s not in no_sources)))
        report = channel_coverage([Path(f) for f in files], Spinner(lexicon, SpinnerConfig()))
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(format_report(report, examples))


@click.command("average-models")
@click.option("--base", required=True, type=click.Path(), help="The model the fine-tune started from (its --init).")
@click.option("--tuned", required=True, type=click.Path(), help="The fine-tuned model folder.")
@click.option("--weight", type=float, default=0.5, show_default=True,
              help="Share of the tuned model: 0 gives the base, 1 the tuned model.")
@click.option("--out", required=True, type=click.Path(), help="Output model folder (written atomically).")
def average_models_cmd(base, tuned, weight, out):
    """Average a fine-tune with the model it was tuned from, tensor by tensor (WiSE-FT)."""
    from .average import average_models

    with user_errors():
        average_models(base, tuned, weight, out)
    click.echo(f"wrote {out}: {1 - weight:g} x {base} + {weight:g} x {tuned}")
