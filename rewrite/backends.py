"""Backends turn a batch of sentences into restored sentences with per-token probabilities.

A backend is any object with ``generate(sentences: list[str]) -> list[Generated]`` (one batch in,
one ``Generated`` per sentence out, same order). ``load_backend(folder, name)`` builds one by name:

    torch         PyTorch, input-guided decoding (``rewrite.decoding``): exactly the greedy output
    torch-greedy  PyTorch, plain ``model.generate`` greedy search: the slow baseline, same output
    ct2           CTranslate2 greedy search, int8 weights (``pip install 'unspin[fast]'``): the
                  fastest; about 3 sentences in 100 come out different from greedy
    ct2-float32   CTranslate2 greedy search, float32: greedy's output (measured, not guaranteed)
    auto          the family's ``AUTO_BACKEND`` (a T5: ct2-float32; a language model: torch)
                  when CTranslate2 is installed and converts the model, else torch

The classes come from the folder's model family (``rewrite.families``): a T5 folder gets
``rewrite.t5.TorchBackend`` (torch, torch-greedy) or ``Ct2Backend`` (ct2, ct2-float32), a
language-model folder (``rewrite.lm``: ``base_model.json`` beside the tuned layers)
``LmBackend`` or ``Ct2LmBackend``.

    >>> backend = load_backend("rewrite/models/default", "torch")
    >>> g = backend.generate(["Rubio mentioned it."])[0]
    >>> g.text, g.token_spans[:2], g.token_probs[:2]
    ('Rubio said it.', [(0, 5), (5, 10)], [0.99, 0.97])

``rewrite.model_folder.check_model_folder`` names the first file a model folder is missing.
"""

from __future__ import annotations

import importlib.util
import logging
import os

from types import ModuleType

from . import t5
from .ct2 import CT2_COMPUTE_TYPES
from .errors import InputError, ModelError
from .families import family_of
from .generated import Generated as Generated  # what every backend's generate returns
from .model_folder import check_model_folder

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "torch-greedy", "ct2", "ct2-float32")

def load_backend(folder: str | os.PathLike, name: str = "auto", threads: int = 0):
    """The backend ``name`` (one of ``BACKENDS``) for the model folder ``folder``.

    ``threads`` > 0 caps the threads the backend computes with (for torch: the process-wide
    ``torch.set_num_threads``); 0 keeps the library's default. The folder's family
    (``rewrite.families.family_of``) gives the backend classes; ``"auto"`` picks the family's
    ``AUTO_BACKEND`` when CTranslate2 is importable and falls back to ``torch`` (logging why) when
    it is not or when the model does not convert.
    """
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if threads < 0:
        raise InputError(f"threads must be 0 (the library default) or more, got {threads}")
    folder = check_model_folder(folder)
    family = family_of(folder)
    torch_backend, ct2_backend = family.TORCH_BACKEND, family.CT2_BACKEND
    if name == "auto":
        name = resolve_auto(family)
        if name in CT2_COMPUTE_TYPES:
            try:
                return ct2_backend.load(folder, CT2_COMPUTE_TYPES[name], threads=threads)
            except ModelError as exc:
                logger.warning("the %s backend is unavailable (%s); using torch", name, exc)
                name = "torch"
    if name in CT2_COMPUTE_TYPES:
        return ct2_backend.load(folder, CT2_COMPUTE_TYPES[name], threads=threads)
    return torch_backend.load(folder, method="greedy" if name == "torch-greedy" else "guided", threads=threads)


def resolve_auto(family: ModuleType = t5) -> str:
    """The backend ``"auto"`` stands for here for a folder of ``family`` (a module of
    ``rewrite.families``, the T5 when not given): its ``AUTO_BACKEND``, or torch without CTranslate2."""
    choice = family.AUTO_BACKEND
    if choice in CT2_COMPUTE_TYPES and not ct2_installed():
        return "torch"
    return choice


def ct2_installed() -> bool:
    """Whether CTranslate2 (the ``fast`` extra) can be imported."""
    return importlib.util.find_spec("ctranslate2") is not None


