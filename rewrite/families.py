"""Model families: which kind of model a folder holds, decided once, and the module that runs it.

    family  module       a folder of it holds                 backends (torch / CTranslate2)
    lm      rewrite.lm   base_model.json beside tuned layers  LmBackend / Ct2LmBackend
    t5      rewrite.t5   anything else (the shipped model)    TorchBackend / Ct2Backend

A family module gives ``NAME``, ``holds(folder)``, ``TORCH_BACKEND``, ``CT2_BACKEND`` and
``AUTO_BACKEND`` (what ``"auto"`` stands for when CTranslate2 is installed); the language model's
also builds its prompt (``rewrite.lm.prompt_ids``). ``rewrite.backends.load_backend`` asks
``family_of`` and nothing else decides by family. Training a family is ``training.families``'
business, under the same names (``unspin train --arch``); this side imports nothing from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from . import lm, t5

FAMILIES: tuple[ModuleType, ...] = (lm, t5)  # asked in this order; the last claims every folder


def family_of(folder: str | os.PathLike) -> ModuleType:
    """The family module of the model folder ``folder``."""
    return next(family for family in FAMILIES if family.holds(Path(folder)))

