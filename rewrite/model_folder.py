"""Model folders and the machine they load on: the one home of the helpers every loader shares.

    >>> folder = check_model_folder("rewrite/models/default")   # ModelError names a missing file
    >>> describe_model(folder)["version"]                        # first 12 hex digits of the weights' SHA-256
    'a3f9c2...'
    >>> file_sha256(folder / "config.json")                      # hashlib.file_digest, hex
    >>> cache_root(), available_cpus()                           # $UNSPIN_CACHE or ~/.cache/unspin; CPUs we may use
    >>> with quiet_transformers(): ...                           # no weight-loading progress bar
    >>> with folder_written("runs/x/model") as tmp: ...         # fill tmp; it becomes runs/x/model whole

Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from .errors import ModelError

REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
CARD_FILES = ("training_config.json", "data_manifest.json", "metrics.json")


def check_model_folder(folder: str | os.PathLike) -> Path:
    """``folder`` as a Path if it holds every file a model needs; otherwise ``ModelError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist; pass the folder a training run wrote")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise ModelError(f"model folder {folder} has no {name}; copy the complete folder a training run wrote")
    return folder


def describe_model(folder: Path) -> dict:
    """Facts about a model folder for ``Restorer.model_info``: name, version (weights hash),
    parameter count, and whatever training config, data manifest and metrics it carries."""
    sha256 = file_sha256(folder / "model.safetensors")
    info: dict = {"name": folder.name, "path": str(folder), "version": sha256[:12], "sha256": sha256}
    config = read_json(folder / "config.json")
    info["vocab_size"] = config.get("vocab_size")
    info["d_model"] = config.get("d_model")
    for name in CARD_FILES:
        path = folder / name
        info[path.stem] = read_json(path) if path.is_file() else None
    return info


def read_json(path: Path) -> dict:
    """A model folder's JSON file; ``ModelError`` when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc}); restore it from the training run") from exc


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks (``hashlib.file_digest``)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cache_root() -> Path:
    """The user's unspin cache folder: ``$UNSPIN_CACHE`` or ``~/.cache/unspin``."""
    return Path(os.environ.get("UNSPIN_CACHE") or Path.home() / ".cache" / "unspin")


def available_cpus() -> int:
    """The CPUs this process may use (its affinity mask; all CPUs where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def quiet_transformers():
    """No weight-loading progress bar: loading a small model takes a moment, and the bar
    would land in the middle of the CLI's output."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


# Loggers and warning-issuing modules of the libraries that load and run models: what they warn
# about ("Token indices sequence length is longer than the specified maximum sequence length",
# deprecations) is meant for developers of this package, not for its users.
LIBRARY_LOGGERS = ("transformers", "torch", "ctranslate2", "sentencepiece", "huggingface_hub")


def hide_developer_warnings() -> None:
    """Keep the model libraries' developer warnings off a user's terminal: their loggers log
    errors only and their Python warnings are ignored. For the command line and the service
    (``unspin -v`` leaves them on); never called on import, so a program using the library keeps
    its own settings. ``TRANSFORMERS_VERBOSITY``, when set, wins for transformers."""
    import warnings

    for name in LIBRARY_LOGGERS:
        if name == "transformers" and "TRANSFORMERS_VERBOSITY" in os.environ:
            continue
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read when transformers configures itself
    pattern = "|".join(LIBRARY_LOGGERS)
    warnings.filterwarnings("ignore", module=rf"({pattern})(\.|$)")


@contextlib.contextmanager
def folder_written(out: str | os.PathLike):
    """Yield an empty temporary folder beside ``out`` to fill; when the block ends without an error,
    it takes ``out``'s place. A folder already at ``out`` is moved aside (``out.old<pid>``) and removed
    only once the new one is in place, so ``out`` never holds a half-written folder: if the block
    raises, the temporary folder is removed and ``out`` is as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = (out.with_name(f"{out.name}.{mark}{os.getpid()}") for mark in ("tmp", "old"))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        try:
            tmp.rename(out)
        except BaseException:
            if old.exists():
                old.rename(out)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
