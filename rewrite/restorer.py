"""The restorer: spun text in, standard wording out, every change reported as an ``Edit``.

    >>> restorer = Restorer.from_pretrained()          # the shipped default model
    >>> r = restorer.restore("Rubio mentioned on Wednesday.")
    >>> r.text, r.edits
    ('Rubio said on Wednesday.', [Edit(offset=6, length=9, original='mentioned', replacement='said', confidence=0.97)])

The pipeline (``Restorer.restore_many``), top to bottom:

1. cut every text into segments: lines (paragraphs) -> sentences -> pieces of at most
   ``max_words`` tokens (a longer sentence is split, never cut);
2. run the whitespace-normalised segments through the backend, batched by length;
3. align each output to its segment word by word; each difference is a candidate change;
4. the faithfulness guard refuses whole outputs and single changes that are not local swaps;
5. changes become edits on the input (offsets in code points), with a confidence from the
   model's token probabilities; ``min_confidence`` and ``protect_quotes`` filter them;
6. the edits are applied to the original string: every character outside an edit is kept as is.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from .align import align, fold_quotes, typographic_like
from .backends import load_backend
from .generated import Generated
from .edits import Edit, apply_edits
from .errors import Cancelled, InputError, ModelError
from .finder import SpinFinder, has_finder
from .lm import is_missing_base
from .guard import GuardConfig, check_change, check_sentence
from .model_folder import describe_model
from .text import WORD_RE, count_words, has_english_word, normalise_whitespace, quote_spans, split_long, split_sentences

logger = logging.getLogger(__name__)

SHIPPED_MODELS = Path(__file__).parent / "models"  # each folder a model, usable by its name
DEFAULT_MODEL = SHIPPED_MODELS / "default"
# "auto": the spin finder when the model folder has one, else the backend alone; "fast": the
# backend alone (the T5's own edits); "find": the finder, an error where the folder has none.
MODES = ("auto", "fast", "find")

_LINE_RE = re.compile(r"[^\r\n]+")


@dataclasses.dataclass(frozen=True)
class Restoration:
    """The restored ``text``, the ``edits`` that turn the input into it (sorted, non-overlapping),
    and ``spin_ratio``: the share of the input's words that were restored."""

    text: str
    edits: list[Edit]
    spin_ratio: float
    # Places the detector is sure were spun but that no edit restores (``rewrite.finder.Flag``).
    flags: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text": self.text, "edits": [e.to_dict() for e in self.edits], "spin_ratio": self.spin_ratio,
                "flags": [f.to_dict() for f in self.flags]}


@dataclasses.dataclass(frozen=True)
class RestorerConfig:
    """How text is cut up for the model and what the guard lets through. Validated on creation."""

    max_words: int = dataclasses.field(
        default=64,
        metadata={"help": "Most word and punctuation tokens sent to the model at once; longer sentences are split."},
    )
    max_chars: int = dataclasses.field(
        default=1000, metadata={"help": "A piece still longer than this (e.g. one huge token) is left as it is."}
    )
    batch_size: int = dataclasses.field(default=32, metadata={"help": "Sentences per backend call."})
    min_confidence: float = dataclasses.field(
        default=0.0,
        metadata={"help": "Confidence below which edits are dropped when a call gives none; a model folder's "
                          "restorer.json sets its measured recommendation."},
    )
    guard: GuardConfig = dataclasses.field(default_factory=GuardConfig, metadata={"help": "Faithfulness limits."})

    def __post_init__(self) -> None:
        if self.max_words < 2 or self.max_chars < 1 or self.batch_size < 1:
            raise InputError("max_words must be >= 2, max_chars and batch_size >= 1")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise InputError(f"min_confidence must be between 0 and 1, got {self.min_confidence}")


@dataclasses.dataclass(frozen=True)
class _Segment:
    """One model input: ``text`` is the input's own slice at ``start`` of text number ``doc``."""

    doc: int
    start: int
    text: str


class Restorer:
    """Restores spun text with a backend (see ``rewrite.backends``) and reports every edit."""

    def __init__(self, backend, config: RestorerConfig | None = None, model_folder: Path | None = None,
                 finder=None):
        self.backend = backend
        self.config = config or RestorerConfig()
        self.model_folder = model_folder
        self.finder = finder  # rewrite.finder.SpinFinder, or None: the backend's edits alone
        if finder is not None:
            finder.guard = self.config.guard

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike | None = None,
        backend: str = "auto",
        config: RestorerConfig | None = None,
        threads: int = 0,
        mode: str = "auto",
    ) -> "Restorer":
        """Load a model folder (``None``: the shipped default model; a shipped model's name, e.g.
        ``"fast"``: that model) with a backend.

        ``mode``: ``"auto"`` (the spin finder of ``rewrite.finder`` when the folder has one and the
        SmolLM2 base is installed, else the backend's edits alone), ``"fast"`` (the backend's edits
        alone) or ``"find"`` (the finder, an error without it).

        ``backend``: ``"torch"`` (input-guided decoding, exactly the greedy output),
        ``"torch-greedy"`` (plain greedy search, the slow baseline), ``"ct2"`` (CTranslate2 int8,
        needs ``unspin[fast]``) or ``"auto"`` (the fastest of those that is installed; see
        ``rewrite.backends``). ``threads`` > 0 caps the threads the backend uses.
        """
        path = shipped_model(path)
        if path is None:
            if not DEFAULT_MODEL.is_dir():
                raise ModelError(
                    f"the default model is missing ({DEFAULT_MODEL}); reinstall unspin, or train a model "
                    "with `unspin train` and pass its folder (--model DIR)"
                )
            path = DEFAULT_MODEL
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        backend_impl = load_backend(path, backend, threads=threads)
        config = config or model_restorer_config(Path(path))
        finder = None
        if mode != "fast" and has_finder(Path(path)):
            try:
                finder = SpinFinder.load(Path(path), threads=threads)
            except ModelError as exc:
                if mode == "find" or not is_missing_base(exc):
                    raise
                # a base install without the SmolLM2 package: the T5's edits alone, as before
                logger.warning("restoring with the T5 alone (mode 'fast'): the spin finder needs the base "
                               "language model: %s", exc)
            if finder is not None:
                config = dataclasses.replace(config, min_confidence=finder.config.min_confidence)
        elif mode == "find":
            raise ModelError(f"{path} has no spin finder (finder.json and detector/); use mode 'fast'")
        return cls(backend_impl, config, Path(path), finder)

    @functools.cached_property
    def model_info(self) -> dict:
        """Name, version (weights hash), card facts and metrics of the loaded model, and the
        backend decoding with it."""
        backend = getattr(self.backend, "name", type(self.backend).__name__)
        if self.model_folder is None:
            return {"name": type(self.backend).__name__, "path": None, "version": None, "backend": backend}
        return {**describe_model(self.model_folder), "backend": backend}

    def restore(self, text: str, min_confidence: float | None = None, protect_quotes: bool = False) -> Restoration:
        """Restore one text; see ``restore_many``."""
        return self.restore_many([text], min_confidence, protect_quotes)[0]

    def restore_many(
        self,
        texts: Iterable[str],
        min_confidence: float | None = None,
        protect_quotes: bool = False,
        cancel: threading.Event | None = None,
    ) -> list[Restoration]:
        """Restore each text. Edits below ``min_confidence`` are dropped (``None``: the model's
        recommended threshold, ``config.min_confidence``; ``0`` keeps every edit); with
        ``protect_quotes`` nothing inside quotation marks is changed. When ``cancel`` (anything
        with ``is_set()``) is set, for instance by a server whose client went away, the call
        raises ``Cancelled`` before its next model batch, whatever the backend."""
        if min_confidence is None:
            min_confidence = self.config.min_confidence
        if isinstance(texts, str):
            raise InputError("restore_many takes a list of texts; use restore for one text")
        texts = [_check_text(text) for text in texts]
        if not 0.0 <= min_confidence <= 1.0:
            raise InputError(f"min_confidence must be between 0 and 1, got {min_confidence}")
        segments = [segment for doc, text in enumerate(texts) for segment in self._segments(doc, text)]
        # The model reads straight quotes (the training text's); alignment folds them back.
        outputs = self._generate([fold_quotes(normalise_whitespace(segment.text)) for segment in segments], cancel)
        found: list[list[tuple[Edit, int]]] = [[] for _ in texts]
        for segment, output in zip(segments, outputs):
            found[segment.doc].extend(self._edits(segment, output))
        flags: list[list] = [[] for _ in texts]
        if self.finder is not None:  # the backend's edits become candidates among the finder's
            found, flags = self.finder.find(texts, segments, [[e for e, _ in row] for row in found], cancel)
        return [_restoration(text, edits, min_confidence, protect_quotes, doc_flags)
                for text, edits, doc_flags in zip(texts, found, flags)]

    def _segments(self, doc: int, text: str) -> Iterable[_Segment]:
        """Lines -> sentences -> pieces of at most ``max_words`` tokens that hold an English word
        (a piece in another script, or of numbers and symbols only, stays as it is, unread)."""
        for line in _LINE_RE.finditer(text):
            for s_start, s_end in split_sentences(line.group()):
                sentence_start = line.start() + s_start
                sentence = text[sentence_start : line.start() + s_end]
                for p_start, p_end in split_long(sentence, self.config.max_words):
                    piece = sentence[p_start:p_end]
                    if not has_english_word(piece):
                        continue
                    if len(piece) > self.config.max_chars:
                        logger.info("left %d characters at offset %d as they are: too long for the model",
                                    len(piece), sentence_start + p_start)
                        continue
                    yield _Segment(doc, sentence_start + p_start, piece)

    def _generate(self, inputs: list[str], cancel: threading.Event | None = None) -> list[Generated]:
        """Backend outputs for ``inputs``: each distinct input once, in batches of similar length."""
        unique = sorted(set(inputs), key=lambda text: (len(text), text))
        outputs: dict[str, Generated] = {}
        size = self.config.batch_size
        for first in range(0, len(unique), size):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"restoration stopped on request after {first} of {len(unique)} sentences")
            batch = unique[first : first + size]
            generated = self.backend.generate(batch)
            if len(generated) != len(batch):
                raise ModelError(f"the backend returned {len(generated)} outputs for {len(batch)} sentences")
            outputs.update(zip(batch, generated))
        return [outputs[text] for text in inputs]

    def _edits(self, segment: _Segment, output: Generated) -> list[tuple[Edit, int]]:
        """Guarded edits (with the number of words each restores) for one segment."""
        if not output.complete:
            logger.info("kept %r as it was: the model's output was cut at the length limit", segment.text)
            return []
        changes = align(segment.text, output.text)
        if not changes:
            return []
        source_tokens = WORD_RE.findall(segment.text)
        reason = check_sentence(self.config.guard, source_tokens, WORD_RE.findall(output.text), changes)
        if reason:
            logger.info("kept %r as it was: %s (model wrote %r)", segment.text, reason, output.text)
            return []
        edits = []
        for change in changes:
            reason = check_change(self.config.guard, change, source_tokens, segment.text)
            if reason:
                old, new = " ".join(change.source_tokens), " ".join(change.target_tokens)
                logger.info("refused %r -> %r: %s", old, new, reason)
                continue
            start, end = change.source_span
            original = segment.text[start:end]
            edit = Edit(
                offset=segment.start + start,
                length=end - start,
                original=original,
                # The model saw single spaces; any other whitespace it wrote (a line break) is noise.
                replacement=typographic_like(original, normalise_whitespace(output.text[slice(*change.target_span)])),
                confidence=output.confidence(*change.target_span),
            )
            edits.append((edit, change.changed_words))
        return edits


def shipped_model(path: str | os.PathLike | None) -> str | os.PathLike | None:
    """A shipped model's folder when ``path`` is its name (``"fast"``: ``rewrite/models/fast``) and
    no folder of that name exists here; otherwise ``path`` unchanged."""
    if isinstance(path, str) and path and os.sep not in path and not Path(path).exists():
        if (SHIPPED_MODELS / path).is_dir():
            return SHIPPED_MODELS / path
    return path


def model_restorer_config(folder: Path) -> RestorerConfig:
    """The model folder's recommended restorer settings (``restorer.json``), else the defaults.

    The shipped model's file sets ``min_confidence`` to the threshold measured to keep wrongful
    edits under 0.5 per 100 words on the test split (see its metrics.json)."""
    path = folder / "restorer.json"
    if not path.is_file():
        return RestorerConfig()
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return RestorerConfig(**{k: v for k, v in values.items() if k in _CONFIG_FIELDS})
    except (json.JSONDecodeError, TypeError) as exc:
        raise ModelError(f"{path} is not a valid restorer config ({exc}); fix or delete it") from exc


def recommended_threshold(folder: Path, mode: str = "auto") -> float:
    """The ``min_confidence`` a model folder recommends for ``mode``: its spin finder's
    (``finder.json``) unless ``mode`` is ``"fast"`` or it has none, else its ``restorer.json``'s.
    Light: reads two JSON files, loads no weights."""
    if mode != "fast" and has_finder(folder):
        from .finder import read_finder_config

        return read_finder_config(folder).min_confidence
    return model_restorer_config(folder).min_confidence


_CONFIG_FIELDS = {f.name for f in dataclasses.fields(RestorerConfig)} - {"guard"}  # restorer.json's keys


def _restoration(
    text: str, candidates: list[tuple[Edit, int]], min_confidence: float, protect_quotes: bool, flags=()
) -> Restoration:
    """Filter one text's edits (each with the number of words it restores) and apply them."""
    quotes = quote_spans(text) if protect_quotes else []
    kept = [(e, words) for e, words in candidates if e.confidence >= min_confidence and not _overlaps(e, quotes)]
    edits = sorted((edit for edit, _ in kept), key=lambda e: e.offset)
    total = count_words(text)
    spin_ratio = min(1.0, sum(words for _, words in kept) / total) if total else 0.0
    return Restoration(apply_edits(text, edits), edits, spin_ratio, list(flags))


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        hint = "; decode it first (UTF-8)" if isinstance(text, (bytes, bytearray)) else ""
        raise InputError(f"text must be a str, got {type(text).__name__}{hint}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"text holds an unpaired surrogate at code point {exc.start}; it was decoded with "
            "errors='surrogateescape' or similar: decode it as UTF-8"
        ) from None
    return text


def _overlaps(edit: Edit, spans: list[tuple[int, int]]) -> bool:
    end = edit.offset + edit.length
    return any(edit.offset < s_end and end > s_start for s_start, s_end in spans)
