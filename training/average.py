"""Weight averaging of a fine-tune with the model it was tuned from (WiSE-FT: Wortsman et al.,
"Robust fine-tuning of zero-shot models", CVPR 2022).

A fine-tune on a new synthetic channel learns that channel's swaps and partly forgets the base
model's; the average of the two, tensor by tensor, keeps much of both:

    out = (1 - weight) * base + weight * tuned

Both folders must hold the same tensors (the same architecture; a language-model folder's tuned
layers alike). The result is a model folder like ``tuned``'s (its tokenizer, configs and data
manifest) with ``averaging.json`` saying what was averaged; the tuned model's own metrics and card
are left out, since they describe another model. The folder is written under a temporary name and
renamed at the end, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from rewrite.errors import ModelError
from rewrite.model_folder import file_sha256, folder_written

from .errors import ConfigError

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
# Files of the tuned folder that describe the tuned model itself, not the average.
NOT_COPIED = frozenset({WEIGHTS_FILE, "metrics.json", "markup_metrics.json", "README.md", "averaging.json"})


def _weights_file(folder: Path, role: str) -> Path:
    file = folder / WEIGHTS_FILE
    if not file.is_file():
        raise ModelError(f"{role} model {folder}: no {WEIGHTS_FILE}; give a model folder "
                         "(a training run's model/, or rewrite/models/default)")
    return file


def average_models(base: str | Path, tuned: str | Path, weight: float, out: str | Path) -> Path:
    """Write ``(1 - weight) * base + weight * tuned`` to the model folder ``out``; returns it."""
    import torch
    from safetensors.torch import load_file, save_file

    base, tuned, out = Path(base), Path(tuned), Path(out)
    if not 0 <= weight <= 1:
        raise ConfigError(f"weight must lie in [0, 1] (0: the base model, 1: the tuned one), not {weight}")
    if out.resolve() in (base.resolve(), tuned.resolve()):
        raise ConfigError(f"--out {out} is one of the models being averaged; write to a new folder")
    base_file, tuned_file = _weights_file(base, "base"), _weights_file(tuned, "tuned")
    a, b = load_file(base_file), load_file(tuned_file)
    if a.keys() != b.keys():
        only = sorted(a.keys() ^ b.keys())
        raise ModelError(f"{base} and {tuned} hold different tensors ({len(only)} in one only, e.g. {only[0]}); "
                         "average a fine-tune with the model it was tuned from")
    mixed = {}
    for name, tensor in b.items():
        if a[name].shape != tensor.shape:
            raise ModelError(f"tensor {name} is {tuple(a[name].shape)} in {base} but {tuple(tensor.shape)} in "
                             f"{tuned}; average a fine-tune with the model it was tuned from")
        mixed[name] = torch.lerp(a[name].float(), tensor.float(), weight).to(tensor.dtype)

    with folder_written(out) as tmp:
        for item in tuned.iterdir():
            if item.name not in NOT_COPIED:
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        save_file(mixed, tmp / WEIGHTS_FILE, metadata={"format": "pt"})
        record = {
            "method": "weight averaging (WiSE-FT): (1 - weight) * base + weight * tuned, tensor by tensor",
            "weight": weight,
            "base": {"path": str(base), "sha256": file_sha256(base_file)},
            "tuned": {"path": str(tuned), "sha256": file_sha256(tuned_file)},
        }
        (tmp / "averaging.json").write_text(json.dumps(record, indent=2) + "\n")
    log.info("averaged %s and %s (weight %.2f) into %s", base, tuned, weight, out)
    return out
