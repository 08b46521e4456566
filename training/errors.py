"""Errors of the training package. Each message says what went wrong and what to do.

``TrainingError`` is an ``rewrite.errors.UnspinError``: the commands treat both alike (one line,
exit status 2; ``rewrite.exits``)."""

from rewrite.errors import UnspinError


class TrainingError(UnspinError):
    """Base class: a problem the user can fix (bad input, missing file, bad config)."""


class CorpusError(TrainingError):
    """A corpus file cannot be read, is empty, binary, not UTF-8 or lacks a column."""


class LexiconError(TrainingError):
    """A lexicon file is missing or has a malformed line."""


class DatasetError(TrainingError):
    """A built dataset is missing, empty or does not fit the model."""


class ConfigError(TrainingError):
    """A configuration value is out of range or inconsistent."""
