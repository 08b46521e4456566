"""A deterministic fake restorer for the conversion tests (importable by spawned workers and Ray
actors). The CLI gets it through ``use_fake`` (in-process) or, in a subprocess, by running this
module: ``python -m tests.rewrite.convert_fakes SRC --out OUT ...`` is ``unspin convert`` with
the fake in place of the model.

It swaps a few known spun words back ("mentioned" -> "said") wherever they occur, with proper
code-point edits, so the tests check conversion mechanics, not model quality.

Environment knobs (read when the fake is made, so subprocesses see them):
``UNSPIN_FAKE_DELAY``: seconds to sleep per ``restore_many`` call (kill tests);
``UNSPIN_FAKE_MODEL_ID``: the model id it reports (model-change tests);
``UNSPIN_FAKE_BATCH_FILES`` / ``UNSPIN_FAKE_BATCH_ROWS``: documents / table rows per batch when
run as ``-m tests.rewrite.convert_fakes`` (``ConvertConfig.batch_files`` and ``batch_rows``,
which the product CLI does not expose).
"""

from __future__ import annotations

import os
import re
import time

from rewrite import Edit, Restoration


SWAPS = {
    "mentioned": ("said", 0.9),
    "individuals": ("people", 0.8),
    "not less than": ("at least", 0.7),
    "struggle": ("war", 0.4),
}
# Like the real restorer, phrases match across any run of whitespace (line breaks included).
_SWAP_RE = re.compile(r"\b(" + "|".join(r"\s+".join(map(re.escape, k.split())) for k in sorted(SWAPS, key=len, reverse=True)) + r")\b")
_WORD = re.compile(r"\w+")


def fake_restore(text: str, min_confidence: float = 0.0) -> Restoration:
    edits = []
    for match in _SWAP_RE.finditer(text):
        replacement, confidence = SWAPS[" ".join(match.group().split())]
        if confidence >= (min_confidence or 0.0):
            edits.append(Edit(match.start(), len(match.group()), match.group(), replacement, confidence))
    out, last = [], 0
    for e in edits:
        out += [text[last : e.offset], e.replacement]
        last = e.offset + e.length
    out.append(text[last:])
    words = len(_WORD.findall(text))
    return Restoration("".join(out), edits, len(edits) / words if words else 0.0)


class FakeRestorer:
    def __init__(self, delay: float = 0.0, model: str = "fake-1"):
        self.delay = delay
        self.model_info = {"id": model, "name": "fake"}
        self.calls: list[int] = []

    def restore_many(self, texts, min_confidence: float = 0.0, protect_quotes: bool = False):
        self.calls.append(len(texts))
        if self.delay:
            time.sleep(self.delay)
        return [fake_restore(t, min_confidence) for t in texts]


def make_fake() -> FakeRestorer:
    return FakeRestorer(float(os.environ.get("UNSPIN_FAKE_DELAY", "0")), os.environ.get("UNSPIN_FAKE_MODEL_ID", "fake-1"))


class ExplodingRestorer(FakeRestorer):
    """Raises on any batch holding the word 'explode' (tests per-file isolation)."""

    def restore_many(self, texts, min_confidence: float = 0.0, protect_quotes: bool = False):
        if any("explode" in t for t in texts):
            raise RuntimeError("boom")
        return super().restore_many(texts, min_confidence, protect_quotes)


def make_exploding() -> ExplodingRestorer:
    return ExplodingRestorer()


def use_fake(monkeypatch, factory=make_fake) -> None:
    """Make ``unspin convert`` (``rewrite.convert.cli``) restore with ``factory`` instead of a model."""
    import rewrite.convert.cli

    monkeypatch.setattr(rewrite.convert.cli, "RestorerFactory", lambda model_dir=None, backend="auto", mode="auto": factory)


if __name__ == "__main__":  # the CLI with the fake, for tests that kill it
    import functools

    import rewrite.convert.cli
    from tests.rewrite.convert_fakes import make_fake as importable_fake  # picklable by spawned workers

    rewrite.convert.cli.RestorerFactory = lambda model_dir=None, backend="auto", mode="auto": importable_fake
    sizes = {name: int(os.environ[f"UNSPIN_FAKE_{name.upper()}"]) for name in ("batch_files", "batch_rows")
             if os.environ.get(f"UNSPIN_FAKE_{name.upper()}")}
    rewrite.convert.cli.ConvertConfig = functools.partial(rewrite.convert.cli.ConvertConfig, **sizes)
    rewrite.convert.cli.convert(prog_name="unspin convert")
