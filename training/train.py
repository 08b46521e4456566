"""Train (or fine-tune) the restorer on a built dataset.

    config = TrainConfig(dataset="data/news", out="runs/default")   # training/config.py
    train(config)            # resumes from runs/default/checkpoint if it exists

Reads like its steps: ``set_seed`` -> ``prepare_tokenizer`` -> ``prepare_data`` -> ``get_model``
-> ``Trainer(...).fit()`` -> ``export``. What differs between model families (tokenizer, data,
model, export) is asked of the family ``--arch`` names (``training.families``). Runs data-parallel
under ``torchrun`` (gloo on CPU, nccl on GPU): each rank takes every world-th batch and gradients
are averaged by DDP.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

from rewrite.exits import user_errors
from rewrite.model_folder import folder_written

from .config import TrainConfig, config_from_flags, train_flags
from .data import TokenData, load_split, save_split, tokenizer_fingerprint, write_token_manifest
from .errors import ConfigError, DatasetError
from .families import family

log = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- tokenizer + data


def prepare_tokenizer(config: TrainConfig) -> Path:
    """The tokenizer folder to use (the family's choice: ``--init``'s, the base model's, a given
    one, or one trained on the data)."""
    return family(config.arch).tokenizer_folder(config)


def prepare_data(config: TrainConfig, tokenizer_dir: Path) -> dict[str, TokenData]:
    """Tokenised train/validation splits, cached in the dataset folder per tokenizer."""
    arch = family(config.arch)
    folder = Path(config.dataset) / f"tokens-{tokenizer_fingerprint(tokenizer_dir)}-{config.max_len}"
    tokenizer = arch.load_tokenizer(tokenizer_dir)
    splits = {}
    for split in ("train", "validation"):
        file = folder / f"{split}.npz"
        if not file.is_file():
            from .build import load_dataset_dir

            dataset = load_dataset_dir(config.dataset)
            if len(dataset[split]) == 0:
                raise DatasetError(f"the {split} split of {config.dataset} is empty; build with more text")
            folder.mkdir(parents=True, exist_ok=True)
            log.info("tokenising %s split (%d pairs)", split, len(dataset[split]))
            save_split(arch.tokenize_split(dataset[split], tokenizer, config.max_len), file)
            write_token_manifest(folder, {"tokenizer": str(tokenizer_dir), "max_len": config.max_len})
        splits[split] = arch.token_data(load_split(file), tokenizer)
    if len(splits["train"]) == 0:
        raise DatasetError(f"the train split of {config.dataset} is empty")
    return splits


def preflight(config: TrainConfig) -> None:
    """Cheap checks of the inputs, before any process starts or tokenises."""
    from .build import check_dataset_dir

    check_dataset_dir(config.dataset, arrow=False)
    family(config.arch).preflight(config)


def get_model(config: TrainConfig, tokenizer_dir: Path):
    """The model to train, built by its family."""
    return family(config.arch).build(config, tokenizer_dir)


# ---------------------------------------------------------------- distributed helpers


def dist_info() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def pick_device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda but no CUDA device is available")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


# ---------------------------------------------------------------- the loop


class Trainer:
    """AdamW + warmup then inverse-sqrt (or linear-to-zero) schedule, bf16 autocast, resumable
    checkpoints."""

    def __init__(self, config: TrainConfig, model, data: dict[str, TokenData], device: torch.device):
        self.config, self.data, self.device = config, data, device
        self.family = family(config.arch)
        self.rank, self.world, _ = dist_info()
        self.model = model.to(device)
        self.module = model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr,
            betas=(0.9, 0.98),
            fused=device.type == "cuda",
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.tokens_seen = 0
        self.history: list[dict] = []
        self.ckpt = Path(config.out) / "checkpoint"

    def _lr_factor(self, step: int) -> float:
        warm = max(1, self.config.warmup_steps)
        step = max(step, 1)
        if self.config.schedule == "linear":  # a cooldown: ends at 0 on the last step
            total = max(self.config.max_steps, warm + 1)
            return min(step / warm, max(0.0, (total - step) / (total - warm)))
        return min(step / warm, math.sqrt(warm / step))

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    # -------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        with folder_written(self.ckpt) as tmp:
            self.module.save_pretrained(tmp)
            torch.save(
                {
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "step": self.step,
                    "epoch": self.epoch,
                    "batch_in_epoch": self.batch_in_epoch,
                    "tokens_seen": self.tokens_seen,
                    "history": self.history,
                    "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
                },
                tmp / "trainer_state.pt",
            )

    def maybe_resume(self) -> bool:
        if not (self.ckpt / "trainer_state.pt").is_file():
            return False
        from safetensors.torch import load_file

        self.module.load_state_dict(load_file(self.ckpt / "model.safetensors", device=str(self.device)), strict=False)
        self.module.tie_weights()
        state = torch.load(self.ckpt / "trainer_state.pt", map_location=self.device, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch, self.tokens_seen = state["batch_in_epoch"], state["tokens_seen"]
        self.history = state["history"]
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        log.info("resumed from %s at step %d", self.ckpt, self.step)
        return True

    # -------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self) -> dict:
        self.model.eval()
        data = self.data["validation"]
        batches = data.batches(self.config.batch_tokens, self.config.seed, 0)[: self.config.eval_batches]
        loss_sum, tokens, correct = 0.0, 0, 0
        for idx in batches:
            batch = {k: v.to(self.device) for k, v in data.collate(idx).items()}
            with self.autocast():
                out = self.module(**batch)
            labels = getattr(out, "labels", batch["labels"])  # the LM restorer gives target positions only
            mask = labels != -100
            n = int(mask.sum())
            loss_sum += float(out.loss) * n
            tokens += n
            correct += int(((out.logits.argmax(-1) == labels) & mask).sum())
        self.model.train()
        return {"val_loss": loss_sum / max(tokens, 1), "val_token_acc": correct / max(tokens, 1)}

    # -------------------------------------------------------- training
    def fit(self) -> dict:
        cfg = self.config
        self.model.train()
        started, start_tokens = time.time(), self.tokens_seen
        window_tokens, window_start = 0, time.time()
        deadline = started + cfg.max_minutes * 60 if cfg.max_minutes else None
        train = self.data["train"]
        stop = False
        while not stop:
            batches = train.batches(cfg.batch_tokens, cfg.seed, self.epoch, self.rank, self.world)
            for b in range(self.batch_in_epoch, len(batches)):
                host = train.collate(batches[b])
                # counted on the host, and copied from pinned memory, so the CPU batches the next
                # step while the GPU still runs this one (a count on the GPU waited for it)
                n_tok = self.family.batch_tokens(host)
                pin = self.device.type == "cuda"
                batch = {k: (v.pin_memory() if pin else v).to(self.device, non_blocking=True) for k, v in host.items()}
                with self.autocast():
                    loss = self.model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                self.batch_in_epoch = b + 1
                self.tokens_seen += n_tok * self.world
                window_tokens += n_tok * self.world
                if self.step % cfg.log_every == 0:
                    rate = window_tokens / max(time.time() - window_start, 1e-9)
                    self._record({"step": self.step, "loss": loss.item(), "lr": self.scheduler.get_last_lr()[0],
                                  "tokens_per_s": round(rate), "epoch": self.epoch})
                    window_tokens, window_start = 0, time.time()
                if self.step % cfg.eval_every == 0 and self.rank == 0:
                    self._record({"step": self.step, **self.evaluate()})
                if self.step % cfg.save_every == 0:
                    self.save_checkpoint()
                out_of_time = deadline is not None and time.time() >= deadline
                if self.world > 1 and deadline is not None:
                    flag = torch.tensor([float(out_of_time)], device=self.device)
                    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                    out_of_time = bool(flag.item())
                if self.step >= cfg.max_steps or out_of_time:
                    stop = True
                    break
            else:
                self.epoch += 1
                self.batch_in_epoch = 0
        final = self.evaluate() if self.rank == 0 else {}
        self.save_checkpoint()
        seconds = time.time() - started
        return {
            "steps": self.step,
            "epochs_completed": self.epoch,
            "tokens_seen": self.tokens_seen,
            "wall_seconds_this_run": round(seconds, 1),
            "tokens_per_second_this_run": round((self.tokens_seen - start_tokens) / max(seconds, 1e-9)),
            **final,
        }

    def _record(self, entry: dict) -> None:
        entry["time"] = round(time.time(), 1)
        self.history.append(entry)
        if self.rank == 0:
            log.info("%s", json.dumps(entry))
            with open(Path(self.config.out) / "log.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")


# ---------------------------------------------------------------- export


def environment() -> dict:
    import transformers

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": commit,
    }


def export(model, tokenizer_dir: Path, config: TrainConfig, summary: dict, out: Path) -> Path:
    """Write the self-describing model folder: the family's files (weights, tokenizer), configs,
    manifest, summary."""
    manifest_file = Path(config.dataset) / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    if config.init and (Path(config.init) / "data_manifest.json").is_file():
        manifest["init_model_data_manifest"] = json.loads((Path(config.init) / "data_manifest.json").read_text())
    with folder_written(out) as tmp:
        family(config.arch).export_files(model.to("cpu"), tokenizer_dir, tmp)
        (tmp / "training_config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
        (tmp / "data_manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        (tmp / "training_summary.json").write_text(
            json.dumps({**summary, "environment": environment()}, indent=2) + "\n"
        )
    return out


def train(config: TrainConfig) -> Path:
    """Run (or resume) training and export the model to ``<out>/model``."""
    preflight(config)
    rank, world, local_rank = dist_info()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and config.device != "cpu" else "gloo"
        torch.distributed.init_process_group(backend)
    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        (out / "training_config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    tokenizer_dir = prepare_tokenizer(config) if rank == 0 else None
    if world > 1:
        holder = [str(tokenizer_dir)]
        torch.distributed.broadcast_object_list(holder, src=0)
        tokenizer_dir = Path(holder[0])
    data = prepare_data(config, tokenizer_dir)
    if config.prepare_only:
        log.info("prepared tokenizer %s and tokenised data in %s", tokenizer_dir, config.dataset)
        return tokenizer_dir
    if config.max_train_samples:
        data["train"] = subset(data["train"], config.max_train_samples)
    model = get_model(config, tokenizer_dir)
    log.info("model: %.1fM parameters; train %d pairs (%d tokens)",
             sum(p.numel() for p in model.parameters()) / 1e6, len(data["train"]), data["train"].n_tokens)
    device = pick_device(config, local_rank)
    trainer = Trainer(config, model, data, device)
    trainer.maybe_resume()
    summary = trainer.fit()
    path = out / "model"
    if rank == 0:
        export(trainer.module, tokenizer_dir, config, {**summary, "history": trainer.history}, path)
        log.info("model exported to %s", path)
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return path


def subset(data: TokenData, n: int) -> TokenData:
    """The first ``n`` examples, batched as ``data`` is (an ``LmTokenData`` stays one)."""
    import copy

    n = min(n, len(data))
    part = copy.copy(data)
    TokenData.__init__(part, {
        "src": data.src[: data.src_off[n]], "src_off": data.src_off[: n + 1],
        "tgt": data.tgt[: data.tgt_off[n]], "tgt_off": data.tgt_off[: n + 1],
    })
    return part


@click.command("train-process", help="One training process: what `unspin train` runs under torchrun "
                                      "(`python -m training.train`), with the same flags.")
@train_flags
def train_process(config_file, fp32, **flags):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with user_errors():
        train(config_from_flags(config_file, fp32, flags)[0])


def main(argv: list[str] | None = None) -> None:
    """``python -m training.train --dataset D --out O [--flag value ...]`` (what torchrun runs): the
    flags of ``unspin train`` (one per ``TrainConfig`` field), run in this process."""
    train_process.main(args=argv, prog_name="python -m training.train")


if __name__ == "__main__":
    main()
