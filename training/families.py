"""The model families ``unspin train`` can train, chosen once by ``--arch`` (``TrainConfig.arch``).

    arch   training side     inference side   what it is
    t5     training.t5       rewrite.t5       a T5 trained from scratch here (the shipped default)
    lm     training.lm       rewrite.lm       a fine-tune of the pretrained SmolLM2-135M-Instruct

A family's training module gives the hooks ``training.train`` calls (see ``training.t5``):
``preflight``, ``tokenizer_folder``, ``load_tokenizer``, ``tokenize_split``, ``token_data``,
``build``, ``batch_tokens`` and ``export_files``; nothing outside a family asks which family it is.
Light on purpose: ``training.config`` imports it to check ``--arch``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ARCHES = {"t5": "training.t5", "lm": "training.lm"}  # --arch -> the family's training module


def family(arch: str) -> ModuleType:
    """The training module of the family ``arch`` (one of ``ARCHES``)."""
    from .errors import ConfigError

    if arch not in ARCHES:
        raise ConfigError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHES)}")
    return importlib.import_module(ARCHES[arch])
