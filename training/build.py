"""Dataset builder: clean corpus -> (spun, original) sentence pairs with their edits.

    >>> build_dataset(BuildConfig(corpus=["../shared/corpora"], out="data/news",
    ...                           weights={"current_events": 5}))
    DatasetDict({train: 412k rows, validation: 4.1k, test: 4.2k})

Steps (each a function below):
1. ``collect_sentences``: read documents, split paragraphs into sentences, normalise whitespace
   only, drop too short/long sentences and exact duplicates;
2. ``assign_splits``: each document (never a single sentence) goes to a split by a seeded hash of
   its id; when a small corpus leaves validation or test without a document, the builder moves
   one there from the largest split, and with fewer than three documents it stops with an error;
3. ``spin_all``: spin every (sentence, copy) with the synthetic spinner in worker processes,
   copies per sentence from the per-source weights (training split only);
4. ``verify``: re-apply each pair's recorded edits to its original; a pair that does not
   reproduce its spun text is dropped and counted;
5. ``write``: a ``datasets.DatasetDict`` (Arrow) at the top of the output folder, so
   ``datasets.load_from_disk(out)`` loads it, plus ``parquet/`` and ``manifest.json`` beside it,
   written to a temporary folder and renamed into place at the end. A split left empty is an
   error, never a folder ``datasets`` cannot load.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import multiprocessing as mp
import sys
import time
from pathlib import Path

from rewrite.edits import Edit, apply_edits
from rewrite.errors import InputError
from rewrite.model_folder import file_sha256, folder_written
from rewrite.align import token_opcodes
from rewrite.text import WORD_RE, count_words, normalise_whitespace, split_sentences

from .corpus import corpus_files, read_corpus, read_text_lines
from .errors import ConfigError, CorpusError
from .flags import setting
from .lexicon import LexiconConfig, load_lexicon
from .spinner import Spinner, SpinnerConfig

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")
ARROW_INDEX = "dataset_dict.json"  # what DatasetDict.save_to_disk writes beside its split folders


@dataclasses.dataclass
class BuildConfig:
    """Everything that determines a built dataset (saved in its manifest)."""

    corpus: list[str] = dataclasses.field(default_factory=list)  # files or folders to read
    out: str = "data/dataset"  # output folder (written atomically)
    weights: dict[str, float] = dataclasses.field(default_factory=dict)  # source substring -> copies
    pairs: list[str] = dataclasses.field(default_factory=list)  # real {"spun","original"} jsonl files
    text_column: str = setting("text", "Text column of .jsonl/.csv/.parquet corpora.")
    doc_column: str | None = setting(None, "Column of .jsonl/.csv/.parquet corpora naming each row's document: "
                                     "rows with one id go to one split (default: each row is a document).")
    min_words: int = setting(4, "Shortest sentence kept, in words.")
    max_words: int = setting(80, "Longest sentence kept, in words.")
    validation_fraction: float = setting(0.01, "Share of documents in the validation split.")
    test_fraction: float = setting(0.01, "Share of documents in the test split.")
    max_sentences: int | None = setting(None, "Stop after this many distinct sentences (smoke runs).")
    workers: int = setting(2, "Processes that spin (forked, sharing the lexicon).")
    seed: int = setting(13, "Seed of the splits (and of the spins, unless --spin-seed is given).")
    spin_seed: int | None = setting(None, "A fresh spin of the same splits: set this, keep --seed.")
    spinner: SpinnerConfig = dataclasses.field(default_factory=SpinnerConfig)
    lexicon: LexiconConfig = dataclasses.field(default_factory=LexiconConfig)

    def __post_init__(self) -> None:
        if isinstance(self.spinner, dict):
            self.spinner = SpinnerConfig(**self.spinner)
        if isinstance(self.lexicon, dict):
            self.lexicon = LexiconConfig(**{**self.lexicon, "sources": tuple(self.lexicon["sources"])})
        if not self.corpus and not self.pairs:
            raise ConfigError("give at least one --corpus path (or --pairs file)")
        if not 1 <= self.min_words <= self.max_words:
            raise ConfigError("need 1 <= min_words <= max_words")
        if self.validation_fraction <= 0 or self.test_fraction <= 0 or self.validation_fraction + self.test_fraction >= 1:
            raise ConfigError("validation_fraction and test_fraction must be above 0 (training validates, "
                              "evaluation tests) and sum to less than 1")
        if any(w < 0 for w in self.weights.values()):
            raise ConfigError("source weights must be >= 0")
        self.spinner.seed = self.seed if self.spin_seed is None else self.spin_seed

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def split_of(doc_id: str, seed: int, validation: float, test: float) -> str:
    """Seeded, stable assignment of a whole document to a split."""
    h = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    u = int.from_bytes(h, "little") / 2**64
    return "validation" if u < validation else "test" if u < validation + test else "train"


def weight_for(source: str, weights: dict[str, float]) -> float:
    """Weight of a source: the first configured key that is a substring of its name, else 1."""
    for key, value in weights.items():
        if key in source:
            return value
    return 1.0


def collect_sentences(config: BuildConfig, stats: dict) -> list[tuple]:
    """[(source, doc_id, sentence_index, sentence)] of the distinct kept sentences, in corpus order."""
    seen: set[str] = set()
    rows = []
    stats.update(documents=0, sentences_read=0, duplicates=0, length_filtered=0)
    for path in config.corpus:
        for doc in read_corpus(path, config.text_column, config.doc_column):
            stats["documents"] += 1
            index = 0
            for para in doc.paragraphs:
                for start, end in split_sentences(para):
                    sentence = normalise_whitespace(para[start:end])
                    stats["sentences_read"] += 1
                    n_words = count_words(sentence)
                    if not config.min_words <= n_words <= config.max_words:
                        stats["length_filtered"] += 1
                        continue
                    if sentence in seen:
                        stats["duplicates"] += 1
                        continue
                    seen.add(sentence)
                    rows.append((doc.source, doc.doc_id, index, sentence))
                    index += 1
                    if config.max_sentences and len(seen) >= config.max_sentences:
                        return rows
    if not seen:
        raise CorpusError(
            f"the corpus {config.corpus} yielded no sentences of {config.min_words}-{config.max_words} words"
        )
    return rows


def assign_splits(doc_ids: list[str], config: BuildConfig) -> dict[str, str]:
    """doc_id -> split by ``split_of``; then every split gets at least one document.

    A small corpus can hash no document into validation or test (1% each by default): the
    builder then moves the train document that hashes lowest there (still seeded and stable).
    Fewer than three documents cannot fill three splits: ``CorpusError`` says what to give.
    """
    doc_ids = list(dict.fromkeys(doc_ids))
    if len(doc_ids) < len(SPLITS):
        raise CorpusError(
            f"the corpus has {len(doc_ids)} document(s) with usable sentences; train, validation and test "
            "need one each: give more text, or separate documents with blank lines (a .txt file without "
            "blank lines is read one paragraph, i.e. one line, a document)"
        )
    splits = {d: split_of(d, config.seed, config.validation_fraction, config.test_fraction) for d in doc_ids}
    for wanted in SPLITS:
        members = {s: sorted((d for d in doc_ids if splits[d] == s), key=lambda d: _doc_hash(d, config.seed))
                   for s in SPLITS}
        if not members[wanted]:
            donor = max(SPLITS, key=lambda s: len(members[s]))
            splits[members[donor][0]] = wanted
            log.info("no document hashed into %s: moved %s there", wanted, members[donor][0])
    return splits


def _doc_hash(doc_id: str, seed: int) -> bytes:
    return hashlib.blake2b(f"move{seed}:{doc_id}".encode(), digest_size=8).digest()


def with_copies(sentences: list[tuple], splits: dict[str, str], weights: dict[str, float], seed: int) -> list[tuple]:
    """[(split, source, doc_id, sentence_index, copy, sentence)]: training sentences repeated by
    their source's weight (a fractional weight adds a copy to that share of sentences)."""
    rows = []
    for source, doc_id, index, sentence in sentences:
        split = splits[doc_id]
        weight = weight_for(source, weights) if split == "train" else 1.0
        copies = int(weight) + (split_rng_fraction(doc_id, index, seed) < weight % 1)
        rows.extend((split, source, doc_id, index, copy, sentence) for copy in range(copies))
    return rows


def split_rng_fraction(doc_id: str, index: int, seed: int) -> float:
    """A seeded uniform number per sentence: decides the fractional part of a source weight."""
    h = hashlib.blake2b(f"w{seed}:{doc_id}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


# ---------------------------------------------------------------- spinning in workers

_SPINNER: Spinner | None = None  # set before the pool forks, so workers share it


def _spin_chunk(chunk: list[tuple]) -> list[dict]:
    out = []
    for split, source, doc_id, index, copy, sentence in chunk:
        spun, edits, engine, rate = _SPINNER.spin_example(sentence, doc_id, index, copy)
        out.append(
            dict(
                spun=spun,
                original=sentence,
                edits=[edit_row(e) for e in edits],
                source=source,
                doc_id=doc_id,
                split=split,
                engine=engine,
                rate=round(rate, 4),
            )
        )
    return out


def spin_all(rows: list[tuple], spinner: Spinner, workers: int, progress: bool) -> list[dict]:
    """Spin every row, in order, with ``workers`` forked processes sharing the spinner."""
    global _SPINNER
    _SPINNER = spinner
    chunk = 2000
    chunks = [rows[i : i + chunk] for i in range(0, len(rows), chunk)]
    bar = _progress(len(rows), "Spinning sentences", progress)
    results: list[dict] = []
    # The lexicon and the spinner's index are tens of millions of objects that live as long as
    # the build: frozen, the cyclic collector stops walking them (seconds a pass, in every
    # worker, writing to every page the workers share with this process).
    gc.freeze()
    try:
        if workers <= 1 or len(chunks) == 1:
            for c in chunks:
                results.extend(_spin_chunk(c))
                bar.update(len(c))
        else:
            with mp.get_context("fork").Pool(workers) as pool:
                for part in pool.imap(_spin_chunk, chunks):
                    results.extend(part)
                    bar.update(len(part))
    finally:
        gc.unfreeze()
    bar.close()
    return results


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="pair", disable=not enabled)


# ---------------------------------------------------------------- edits as dataset rows


def edit_row(edit: Edit) -> dict:
    """An edit as a dataset row stores it (format ``unspin-dataset/1``): ``original[start:end]``
    became ``replacement``, from lexicon ``source``.

        >>> edit_row(Edit(4, 3, "war", "struggle", 1.0, "seed"))
        {'start': 4, 'end': 7, 'original': 'war', 'replacement': 'struggle', 'source': 'seed'}
    """
    return {"start": edit.offset, "end": edit.offset + edit.length, "original": edit.original,
            "replacement": edit.replacement, "source": edit.source}


def row_edit(row: dict) -> Edit:
    """The ``Edit`` a dataset row's edit stands for (the inverse of ``edit_row``)."""
    return Edit(row["start"], row["end"] - row["start"], row["original"], row["replacement"], 1.0, row["source"])


# ---------------------------------------------------------------- real pairs


def align_edits(original: str, spun: str) -> list[Edit]:
    """Word-level edits turning ``original`` into ``spun`` (``rewrite.align.token_opcodes`` over WORD_RE tokens)."""
    a = [m.span() for m in WORD_RE.finditer(original)]
    b = [m.span() for m in WORD_RE.finditer(spun)]
    ta = [original[s:e] for s, e in a]
    tb = [spun[s:e] for s, e in b]
    edits = []
    for op, i1, i2, j1, j2 in token_opcodes(ta, tb):
        if op == "equal":
            continue
        # Anchor spans on the surrounding equal tokens so whitespace is carried exactly.
        start = a[i1][0] if i1 < len(a) else len(original)
        end = a[i2 - 1][1] if i2 > i1 else start
        rs = b[j1][0] if j1 < len(b) else len(spun)
        re_ = b[j2 - 1][1] if j2 > j1 else rs
        if i2 == i1:  # insertion: attach to the preceding gap
            start = end = a[i1 - 1][1] if i1 > 0 else 0
            rs = b[j1 - 1][1] if j1 > 0 else 0
        if j2 == j1:  # deletion: swallow the gap after the deleted tokens
            end = a[i2][0] if i2 < len(a) else len(original)
            re_ = rs = b[j1][0] if j1 < len(b) else len(spun)
        edits.append(Edit(start, end - start, original[start:end], spun[rs:re_], 1.0, "pairs"))
    return edits


def read_pairs(files: list[str]) -> list[dict]:
    """Rows of real pairs (one document a line; ``split`` is set by ``assign_splits``)."""
    rows = []
    for file in files:
        for lineno, line in enumerate(read_text_lines(Path(file)), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                spun, original = obj["spun"], obj["original"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CorpusError(f"{file}:{lineno}: expected a JSON object with 'spun' and 'original' ({exc})") from exc
            if not isinstance(spun, str) or not isinstance(original, str):
                raise CorpusError(f"{file}:{lineno}: 'spun' and 'original' must be strings")
            spun, original = normalise_whitespace(spun), normalise_whitespace(original)
            doc_id = f"pairs/{Path(file).stem}/{lineno}"
            edits = align_edits(original, spun)
            rows.append(
                dict(spun=spun, original=original, edits=[edit_row(e) for e in edits], source="pairs",
                     doc_id=doc_id, split="", engine="real", rate=0.0)
            )
    return rows


# ---------------------------------------------------------------- verify + write


def verify(rows: list[dict], stats: dict) -> list[dict]:
    """Keep the pairs whose edits rebuild the spun text from the original."""
    kept = []
    for row in rows:
        try:
            rebuilt = apply_edits(row["original"], [row_edit(e) for e in row["edits"]])
        except InputError:  # an edit that does not match its original or overlaps another
            continue
        if rebuilt == row["spun"]:
            kept.append(row)
    stats["dropped_roundtrip"] = len(rows) - len(kept)
    return kept


def summarise(rows: list[dict]) -> dict:
    """Pairs per split, and per engine the share of words spun."""
    per_split = {s: 0 for s in SPLITS}
    engines: dict[str, dict] = {}
    for row in rows:
        per_split[row["split"]] += 1
        e = engines.setdefault(row["engine"], {"pairs": 0, "words": 0, "words_spun": 0})
        e["pairs"] += 1
        e["words"] += count_words(row["original"])
        e["words_spun"] += sum(count_words(ed["original"]) for ed in row["edits"])
    for e in engines.values():
        e["share_spun"] = round(e["words_spun"] / max(1, e["words"]), 4)
    sources: dict[str, int] = {}
    for row in rows:
        for ed in row["edits"]:
            sources[ed["source"]] = sources.get(ed["source"], 0) + 1
    return {"pairs": per_split, "engines": engines, "edits_per_lexicon_source": sources}


def file_hashes(paths: list[str]) -> dict[str, str]:
    out = {}
    for path in paths:
        for file in corpus_files(path):
            out[str(file)] = file_sha256(file)
    return out


def write(rows: list[dict], out: Path, manifest: dict) -> None:
    """Write Arrow + Parquet + manifest into a temporary folder that then takes ``out``'s place."""
    import datasets

    features = datasets.Features(
        {
            "spun": datasets.Value("string"),
            "original": datasets.Value("string"),
            "edits": datasets.List(
                {
                    "start": datasets.Value("int32"),
                    "end": datasets.Value("int32"),
                    "original": datasets.Value("string"),
                    "replacement": datasets.Value("string"),
                    "source": datasets.Value("string"),
                }
            ),
            "source": datasets.Value("string"),
            "doc_id": datasets.Value("string"),
            "engine": datasets.Value("string"),
            "rate": datasets.Value("float32"),
        }
    )
    splits = {}
    for split in SPLITS:
        part = [{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split]
        if not part:  # datasets writes an empty split it cannot load again (IndexError)
            raise CorpusError(f"the {split} split has no pairs left (every pair of its documents was dropped); "
                              "give more text")
        cols = {k: [r[k] for r in part] for k in features}
        splits[split] = datasets.Dataset.from_dict(cols, features=features)
    dd = datasets.DatasetDict(splits)
    with folder_written(out) as tmp:
        dd.save_to_disk(str(tmp))  # datasets.load_from_disk(out) loads it
        (tmp / "parquet").mkdir()
        for split, ds in dd.items():
            ds.to_parquet(str(tmp / "parquet" / f"{split}.parquet"))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def build_dataset(config: BuildConfig, progress: bool | None = None) -> dict:
    """Build the dataset described by ``config``; returns the manifest."""
    progress = sys.stderr.isatty() if progress is None else progress
    started = time.time()
    stats: dict = {}
    lexicon = load_lexicon(config.lexicon)
    spinner = Spinner(lexicon, config.spinner)
    sentences = collect_sentences(config, stats) if config.corpus else []
    real = read_pairs(config.pairs)
    splits = assign_splits([doc_id for _, doc_id, _, _ in sentences] + [r["doc_id"] for r in real], config)
    for row in real:
        row["split"] = splits[row["doc_id"]]
    rows = with_copies(sentences, splits, config.weights, config.seed)
    t_spin = time.time()
    pairs = spin_all(rows, spinner, config.workers, progress)
    spin_seconds = time.time() - t_spin
    pairs = verify(pairs + real, stats)
    manifest = {
        "format": "unspin-dataset/1",
        "config": config.to_dict(),
        "corpus_files": file_hashes(config.corpus) if config.corpus else {},
        "pair_files": file_hashes(config.pairs) if config.pairs else {},
        "lexicon_sizes": lexicon.sizes(),
        "lexicon_files": lexicon.files,
        "stats": stats,
        **summarise(pairs),
        "spin_pairs_per_second": round(len(rows) / max(spin_seconds, 1e-9), 1),
        "seconds": round(time.time() - started, 1),
    }
    write(pairs, Path(config.out), manifest)
    log.info("dataset written to %s: %s", config.out, manifest["pairs"])
    return manifest


def check_dataset_dir(folder: str | Path, arrow: bool = True) -> Path:
    """``folder`` if `unspin build-dataset` wrote it: its manifest.json and, unless ``arrow`` is
    False (a training machine may get only the manifest and the tokenised splits), its Arrow
    ``DatasetDict``. Returns the folder holding the ``DatasetDict``: ``folder`` itself, or its
    ``hf/`` for a dataset built before the Arrow files moved to the top."""
    from .errors import DatasetError

    folder = Path(folder)
    arrow_dir = folder / "hf" if (folder / "hf" / ARROW_INDEX).is_file() else folder
    if (arrow and not (arrow_dir / ARROW_INDEX).is_file()) or not (folder / "manifest.json").is_file():
        raise DatasetError(f"{folder} is not a built dataset (no {ARROW_INDEX + ' or ' if arrow else ''}"
                           "manifest.json); run `unspin build-dataset`")
    return arrow_dir if arrow else folder


def load_dataset_dir(folder: str | Path):
    """Load a built dataset folder (``DatasetDict``), with a clear error when it is not one."""
    import datasets

    return datasets.load_from_disk(str(check_dataset_dir(folder)))


