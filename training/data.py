"""Tokenised training data: flat token arrays and length-bucketed batches.

A split is stored as four arrays (``.npz``): ``src`` and ``tgt`` are all examples' token ids
concatenated (uint16 when the vocab fits, each example ending in eos), ``src_off`` and
``tgt_off`` are the ``n + 1`` offsets into them:

    src = [5, 9, 1, 7, 1]   src_off = [0, 3, 5]   ->  example 0 = [5, 9, 1], example 1 = [7, 1]

Only numpy and torch are needed to train from these files, so a training machine needs neither
``datasets`` nor the lexicons.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rewrite.model_folder import file_sha256

from .errors import DatasetError


def tokenizer_fingerprint(tokenizer_dir: Path) -> str:
    return file_sha256(Path(tokenizer_dir) / "tokenizer.json")[:12]


def _encode(tokenizer, texts: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    ids: list[list[int]] = []
    for i in range(0, len(texts), 10_000):
        ids.extend(tokenizer(texts[i : i + 10_000], truncation=True, max_length=max_len).input_ids)
    return flatten(ids, np.uint16 if len(tokenizer) <= 65535 else np.int32)


def flatten(ids: list[list[int]], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Examples' token ids -> ``(flat, offsets)``: ``[[5, 9, 1], [7, 1]]`` -> ``[5, 9, 1, 7, 1]``, ``[0, 3, 5]``."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return np.fromiter((t for x in ids for t in x), dtype=dtype, count=int(offsets[-1])), offsets


def tokenize_split(dataset, tokenizer, max_len: int) -> dict[str, np.ndarray]:
    """``{"src", "src_off", "tgt", "tgt_off"}`` for one split of a built dataset."""
    src, src_off = _encode(tokenizer, list(dataset["spun"]), max_len)
    tgt, tgt_off = _encode(tokenizer, list(dataset["original"]), max_len)
    return {"src": src, "src_off": src_off, "tgt": tgt, "tgt_off": tgt_off}


def save_split(arrays: dict[str, np.ndarray], file: Path) -> None:
    tmp = file.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(file)


def load_split(file: Path) -> dict[str, np.ndarray]:
    if not file.is_file():
        raise DatasetError(f"tokenised split {file} not found; rerun `unspin train` to tokenise the dataset")
    with np.load(file) as z:
        arrays = {k: z[k] for k in ("src", "src_off", "tgt", "tgt_off")}
    if len(arrays["src_off"]) != len(arrays["tgt_off"]):
        raise DatasetError(f"{file}: source and target example counts differ; re-tokenise the dataset")
    return arrays


class TokenData:
    """One tokenised split with helpers to batch it."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.src, self.src_off = arrays["src"], arrays["src_off"]
        self.tgt, self.tgt_off = arrays["tgt"], arrays["tgt_off"]
        self.src_len = np.diff(self.src_off)
        self.tgt_len = np.diff(self.tgt_off)

    def __len__(self) -> int:
        return len(self.src_len)

    @property
    def n_tokens(self) -> int:
        return int(self.src_len.sum() + self.tgt_len.sum())

    def batches(self, max_tokens: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[np.ndarray]:
        """Length-bucketed batches of example indices, each with at most ``max_tokens`` padded
        source+target tokens, in a seeded random order; rank ``r`` of ``world`` gets every
        ``world``-th batch (the list is cut to a multiple of ``world`` so ranks stay in step)."""
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(self))
        # sort within windows of 100 batches' worth of examples: similar lengths, still random
        window = 4096
        longest = np.maximum(self.src_len, self.tgt_len)
        chunks = []
        for i in range(0, len(order), window):
            part = order[i : i + window]
            chunks.append(part[np.argsort(longest[part], kind="stable")])
        ordered = np.concatenate(chunks) if chunks else order
        batches, start = [], 0
        while start < len(ordered):
            end, width = start, 0
            while end < len(ordered):
                width = max(width, int(longest[ordered[end]]))
                if (end - start + 1) * width * 2 > max_tokens and end > start:
                    break
                end += 1
            batches.append(ordered[start:end])
            start = end
        perm = rng.permutation(len(batches))
        batches = [batches[i] for i in perm]
        usable = len(batches) - len(batches) % world if world > 1 else len(batches)
        return batches[rank:usable:world]

    def collate(self, idx: np.ndarray, pad_id: int = 0):
        """Padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding) tensors."""
        import torch

        def pad(flat, off, lengths, fill):
            width = int(lengths[idx].max())
            out = np.full((len(idx), width), fill, dtype=np.int64)
            for row, i in enumerate(idx):
                out[row, : lengths[i]] = flat[off[i] : off[i + 1]]
            return torch.from_numpy(out)

        input_ids = pad(self.src, self.src_off, self.src_len, pad_id)
        labels = pad(self.tgt, self.tgt_off, self.tgt_len, -100)
        return {"input_ids": input_ids, "attention_mask": (input_ids != pad_id).long(), "labels": labels}


def write_token_manifest(folder: Path, info: dict) -> None:
    (folder / "tokens.json").write_text(json.dumps(info, indent=2) + "\n")
