"""Fine-tune the language-model restorer on a borrowed GPU: what travels there, what comes back.

The ``device`` tool sends one call's working tree plus its ``carry`` paths, 64 MiB in all, to a
machine that reaches no network, and brings back at most 8 files of 16 MiB (64 MiB in all) from
``$OUT``. The shipped T5 alone fills 45 MB of that tree; the restorer needs the SmolLM2 base (96.6 MB
of GGUF blocks), the tokenised pairs (41M tokens), and back, the tuned layers (57 MB bf16 for
layers 22-29). So the payload goes in parts, one a call, and the model comes back in parts:

    here    python -m research.lm_gpu prepare --dataset data/full     # .carry/lm/pNN + the calls to make
    device  bash research/recipes/lm_gpu.sh    # one call per part, each carrying one; the last trains
    here    python -m research.lm_gpu assemble FILES_AT --out runs/lm_gpu/model

The payload is one tar, cut into parts that fit beside the working tree:

    payload.json     format, the base's tensors (name, kind, shape, bytes), the splits, the options
    base/            the base folder's small files (config.json, tokenizer.json, ...)
    base.blocks.xz   the GGUF's blocks (Q8_0 embeddings, Q4_1 layers, F32 norms), rows in the order
                     of ``LlamaForCausalLM``: ``dequantize`` gives the tensors of
                     ``rewrite.lm.base_folder()`` bit for bit (``encode_base`` checks every one)
    data/            manifest.json, and train.xz / validation.xz (``encode_split``)
    init/            with --init: the model folder training continues from (its tuned layers)

The blocks travel, not floats or a smaller re-quantization: the frozen layers must be exactly the
ones users get from the GGUF, and the blocks are already 4.6 bits a weight (the nibbles' entropy
is 3.85 bits, the int8 embeddings' 7.46, so lossless coding gains only what xz gains: 6-8%).
"""

from __future__ import annotations

import io
import json
import logging
import lzma
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np

from training.errors import TrainingError

log = logging.getLogger(__name__)

FORMAT = 1
MIB = 1 << 20
DEVICE_TREE_LIMIT = 64 * MIB  # what one call may send: working tree + carry
RETURN_FILES, RETURN_FILE_BYTES, RETURN_TOTAL = 8, 16 * MIB, 64 * MIB  # what comes back from $OUT
PAYLOAD, MODEL = "payload", "model"  # the stems of the two kinds of parts
PART_NAME = re.compile(r"^(?P<stem>[a-z]+)-(?P<sha>[0-9a-f]{12})-(?P<i>\d{2})-of-(?P<n>\d{2})\.part$")
CARRY_DIR = Path(".carry/lm")  # ignored by .gitignore (/.carry/)

# (values, bytes) per block of each GGUF tensor kind the base uses
BLOCKS = {"F32": (1, 4), "Q8_0": (32, 34), "Q4_1": (32, 20)}
_GGUF_LAYER = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
               "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down"}


# ---------------------------------------------------------------- the base: GGUF blocks <-> tensors


def gguf_name(name: str) -> str:
    """The GGUF tensor behind a ``LlamaForCausalLM`` one: ``model.layers.3.mlp.up_proj.weight`` ->
    ``blk.3.ffn_up.weight``."""
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    if name in fixed:
        return fixed[name]
    match = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.weight", name)
    if not match or match.group(2) not in _GGUF_LAYER:
        raise TrainingError(f"base tensor {name} has no GGUF counterpart; the base is not a Llama model")
    return f"blk.{match.group(1)}.{_GGUF_LAYER[match.group(2)]}.weight"


def dequantize(raw: np.ndarray, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    """Float32 values of GGUF blocks, computed as gguf-py (and so transformers) computes them:
    Q8_0 ``q * d``, Q4_1 ``d * q + m`` (``d``, ``m`` fp16 widened to fp32; low nibbles first).
    ``raw``: uint8, the blocks of ``prod(shape)`` values in row-major order."""
    if kind not in BLOCKS:
        raise TrainingError(f"GGUF tensor kind {kind} is not supported (only {', '.join(BLOCKS)})")
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    if kind == "F32":
        return raw.view(np.float32).reshape(shape).copy()
    blocks = raw.reshape(-1, BLOCKS[kind][1])
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    if kind == "Q8_0":
        q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)
        return (q * d).reshape(shape)
    m = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 4:]
    q = np.concatenate([qs & np.uint8(0x0F), qs >> np.uint8(4)], axis=1).astype(np.float32)
    return ((d * q) + m).reshape(shape)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def _row_order(values: np.ndarray, target: np.ndarray, name: str) -> np.ndarray:
    """Indices ``p`` with ``values[p] == target`` row by row: llama.cpp stores the q and k
    projections' rows permuted for its rotary layout, and transformers undoes that on loading."""
    if _same_bits(values, target):
        return np.arange(len(target))
    where = {row.tobytes(): i for i, row in enumerate(values)}
    try:
        order = np.array([where[row.tobytes()] for row in target])
    except KeyError:
        raise TrainingError(f"base tensor {name} is not a row permutation of {gguf_name(name)}; "
                            "the cached base was not made from this GGUF file: delete it and rerun") from None
    return order


def encode_base(gguf_file: Path, base_dir: Path) -> tuple[list[dict], bytes]:
    """``(entries, blocks)``: for each tensor of ``base_dir/model.safetensors``, its GGUF blocks
    with rows in the tensor's order, checked to dequantize to exactly the tensor."""
    try:
        import gguf
    except ImportError as exc:
        raise TrainingError("preparing the base needs the gguf package: pip install 'unspin[lm]'") from exc
    from safetensors import safe_open

    reader = gguf.GGUFReader(str(gguf_file))
    tensors = {t.name: t for t in reader.tensors}
    entries, chunks, offset = [], [], 0
    with safe_open(str(base_dir / "model.safetensors"), "np") as hf:
        for name in hf.keys():
            target = hf.get_tensor(name)
            source = tensors.get(gguf_name(name))
            if source is None:
                raise TrainingError(f"{gguf_file.name} lacks {gguf_name(name)} (for {name})")
            kind = source.tensor_type.name
            rows = target.shape[0] if target.ndim == 2 else 1
            raw = np.ascontiguousarray(source.data).view(np.uint8).reshape(rows, -1)
            values = dequantize(raw, kind, target.shape).reshape(rows, -1)
            order = _row_order(values, target.reshape(rows, -1), name)
            raw = np.ascontiguousarray(raw[order])
            if not _same_bits(dequantize(raw, kind, target.shape), target):
                raise TrainingError(f"{name}: the GGUF blocks do not give the cached tensor back exactly")
            entries.append({"name": name, "kind": kind, "shape": list(target.shape), "offset": offset,
                            "nbytes": raw.nbytes})
            chunks.append(raw.tobytes())
            offset += raw.nbytes
    return entries, b"".join(chunks)


def decode_base(entries: list[dict], blocks: bytes) -> dict:
    """The base's ``{name: float32 torch tensor}`` from ``encode_base``'s output."""
    import torch

    buffer = np.frombuffer(blocks, dtype=np.uint8)
    return {e["name"]: torch.from_numpy(dequantize(buffer[e["offset"] : e["offset"] + e["nbytes"]], e["kind"],
                                                   tuple(e["shape"])))
            for e in entries}


# ---------------------------------------------------------------- the data: tokenised splits


def encode_split(arrays: dict[str, np.ndarray]) -> bytes:
    """A tokenised split (``training.data`` arrays) as xz bytes: each pair's spun ids then its
    original ids, as uint16, so the original (mostly a copy of the spun text) costs almost nothing.
    The 41M SmolLM2 tokens of data/full take 0.61 bytes each (23.8 MiB)."""
    src_len, tgt_len = np.diff(arrays["src_off"]), np.diff(arrays["tgt_off"])
    if max(int(arrays["src"].max(initial=0)), int(arrays["tgt"].max(initial=0))) > 0xFFFF:
        raise TrainingError("token ids above 65535 cannot be packed as uint16")
    is_src = _source_positions(src_len, tgt_len)
    tokens = np.empty(len(is_src), dtype=np.uint16)
    tokens[is_src], tokens[~is_src] = arrays["src"], arrays["tgt"]
    buffer = io.BytesIO()
    np.savez(buffer, tokens=tokens, src_len=src_len.astype(np.uint16), tgt_len=tgt_len.astype(np.uint16),
             dtypes=np.array([str(arrays[k].dtype) for k in ("src", "src_off", "tgt", "tgt_off")]))
    return lzma.compress(buffer.getvalue(), preset=6)


def decode_split(data: bytes) -> dict[str, np.ndarray]:
    """``encode_split``'s input back, same values and dtypes."""
    with np.load(io.BytesIO(lzma.decompress(data))) as z:
        tokens, src_len, tgt_len = z["tokens"], z["src_len"].astype(np.int64), z["tgt_len"].astype(np.int64)
        dtypes = [str(d) for d in z["dtypes"]]
    is_src = _source_positions(src_len, tgt_len)
    arrays = {}
    for side, lengths, picked, (tok_dtype, off_dtype) in (("src", src_len, is_src, dtypes[:2]),
                                                          ("tgt", tgt_len, ~is_src, dtypes[2:])):
        offsets = np.zeros(len(lengths) + 1, dtype=off_dtype)
        np.cumsum(lengths, out=offsets[1:])
        arrays[side], arrays[f"{side}_off"] = tokens[picked].astype(tok_dtype), offsets
    return arrays


def _source_positions(src_len: np.ndarray, tgt_len: np.ndarray) -> np.ndarray:
    """True at the spun tokens of the interleaved stream ``src0 tgt0 src1 tgt1 ...``."""
    lengths = np.empty(2 * len(src_len), dtype=np.int64)
    lengths[0::2], lengths[1::2] = src_len, tgt_len
    return np.repeat(np.tile(np.array([True, False]), len(src_len)), lengths)


def sample_pairs(arrays: dict[str, np.ndarray], n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` pairs drawn at random (seeded), kept in their order."""
    count = len(arrays["src_off"]) - 1
    if n >= count:
        return arrays
    keep = np.zeros(count, dtype=bool)
    keep[np.random.default_rng(seed).choice(count, size=n, replace=False)] = True
    out = {}
    for side in ("src", "tgt"):
        lengths = np.diff(arrays[f"{side}_off"])
        offsets = np.zeros(n + 1, dtype=arrays[f"{side}_off"].dtype)
        np.cumsum(lengths[keep], out=offsets[1:])
        out[side], out[f"{side}_off"] = arrays[side][np.repeat(keep, lengths)], offsets
    return out


# ---------------------------------------------------------------- parts


def split_file(file: Path, stem: str, part_bytes: int, place) -> list[Path]:
    """Cut ``file`` into parts of at most ``part_bytes``, named ``<stem>-<sha12>-<i>-of-<n>.part``;
    ``place(i)`` gives the folder of part ``i`` (1-based). The file's hash in every name keeps
    parts of different payloads apart."""
    from rewrite.model_folder import file_sha256

    size = file.stat().st_size
    count = max(1, -(-size // part_bytes))
    if count > 99:
        raise TrainingError(f"{file.name} would take {count} parts of {part_bytes} bytes; give larger parts")
    sha = file_sha256(file)[:12]
    parts = []
    with open(file, "rb") as fh:
        for i in range(1, count + 1):
            folder = Path(place(i))
            folder.mkdir(parents=True, exist_ok=True)
            part = folder / f"{stem}-{sha}-{i:02d}-of-{count:02d}.part"
            part.write_bytes(fh.read(part_bytes))
            parts.append(part)
    return parts


def find_parts(paths, stem: str) -> dict[str, dict[int, Path]]:
    """``{sha12: {i: path}}`` of the ``stem`` parts in ``paths`` (files, or folders searched
    recursively)."""
    found: dict[str, dict[int, Path]] = {}
    for path in map(Path, paths):
        for file in (sorted(path.rglob("*.part")) if path.is_dir() else [path]):
            match = PART_NAME.match(file.name)
            if match and match["stem"] == stem:
                found.setdefault(match["sha"], {})[int(match["i"])] = file
    return found


def part_count(parts: dict[int, Path]) -> int:
    return int(PART_NAME.match(next(iter(parts.values())).name)["n"])


def join_parts(parts: dict[int, Path], out: Path) -> Path:
    """Concatenate a complete set of parts into ``out`` and check its hash against their names."""
    from rewrite.model_folder import file_sha256

    count = part_count(parts)
    missing = [i for i in range(1, count + 1) if i not in parts]
    if missing:
        raise TrainingError(f"parts {missing} of {count} are missing")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")  # a damaged or interrupted join leaves nothing
    try:
        with open(tmp, "wb") as fh:
            for i in range(1, count + 1):
                with open(parts[i], "rb") as part:
                    shutil.copyfileobj(part, fh)
        sha = PART_NAME.match(parts[1].name)["sha"]
        if file_sha256(tmp)[:12] != sha:
            raise TrainingError(f"the joined parts of {sha} do not match their hash: a part is damaged; "
                                "carry them again")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def travelling_bytes(repo: Path) -> int:
    """Bytes of what a ``device`` call sends from ``repo`` without any carry: tracked files and
    untracked ones git does not ignore, plus ``shared/``."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=repo, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise TrainingError(f"cannot list the files of {repo} with git ({exc}); give --part-mib") from exc
    files = {repo / name for name in listed.decode().split("\0") if name}
    if (repo / "shared").is_dir():
        files.update(p for p in (repo / "shared").rglob("*"))
    return sum(f.stat().st_size for f in files if f.is_file() and not f.is_symlink())


# ---------------------------------------------------------------- here: prepare, assemble


def prepare(dataset: Path, repo: Path, part_mib: float | None = None, train_pairs: int | None = None,
            seed: int = 13, init: Path | None = None, max_len: int = 128) -> dict:
    """Write the payload's parts under ``repo/.carry/lm/pNN/`` and return the plan (also saved as
    ``.carry/lm/plan.json``): part size, parts, sizes, and what each call carries."""
    from rewrite.lm import base_folder, read_card

    from training.data import tokenizer_fingerprint

    base = base_folder()
    tokens = Path(dataset) / f"tokens-{tokenizer_fingerprint(Path(init) if init else base)}-{max_len}"
    if not (tokens / "train.npz").is_file():
        raise TrainingError(f"{tokens} has no tokenised splits; make them first: python -m training.train "
                            f"--arch lm --prepare-only true --dataset {dataset} --out runs/lm_prepare"
                            + (f" --init {init}" if init else ""))
    if not (Path(dataset) / "manifest.json").is_file():
        raise TrainingError(f"{dataset} has no manifest.json; give a folder written by `unspin build-dataset`")
    tree = travelling_bytes(repo)
    part_bytes = int(part_mib * MIB) if part_mib else DEVICE_TREE_LIMIT - tree - MIB
    if part_bytes < 4096 or part_bytes + tree > DEVICE_TREE_LIMIT:
        raise TrainingError(f"the working tree already sends {tree / MIB:.1f} MiB of the device's 64 MiB, so "
                            f"parts of {part_bytes / MIB:.1f} MiB do not fit beside it; shrink the tree or the parts")
    carry = repo / CARRY_DIR
    stage = carry.with_name("lm.stage")
    shutil.rmtree(carry, ignore_errors=True)
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "data").mkdir(parents=True)
    _xz_tree([f for f in base.iterdir() if f.name != "model.safetensors"], stage / "base")
    entries = _base_blocks(base, stage / "base.blocks.xz")
    shutil.copy(Path(dataset) / "manifest.json", stage / "data" / "manifest.json")
    splits = {}
    for split in ("train", "validation"):
        sample = train_pairs if split == "train" else None
        splits[split] = _split_file(tokens / f"{split}.npz", sample, seed, stage / "data" / f"{split}.xz")
    if init:
        read_card(Path(init))
        _xz_tree([f for f in Path(init).iterdir() if f.name != "tokenizer.json" and "metrics" not in f.name],
                 stage / "init")
    meta = {"format": FORMAT, "base": entries, "splits": splits, "max_len": max_len, "tokens_folder": tokens.name,
            "init": bool(init)}
    (stage / "payload.json").write_text(json.dumps(meta) + "\n")
    tar = carry.with_name("lm.payload.tar")
    with tarfile.open(tar, "w") as out:
        for file in sorted(stage.rglob("*")):
            if file.is_file():
                out.add(file, arcname=str(file.relative_to(stage)))
    parts = split_file(tar, PAYLOAD, part_bytes, lambda i: carry / f"p{i:02d}")
    plan = {"tree_mib": round(tree / MIB, 2), "part_mib": round(part_bytes / MIB, 2),
            "payload_mib": round(tar.stat().st_size / MIB, 2),
            "sizes_mib": {f.name: round(f.stat().st_size / MIB, 2) for f in sorted(stage.rglob("*")) if f.is_file()
                          and f.stat().st_size > MIB // 10},
            "splits": splits, "calls": [str(p.parent.relative_to(repo)) for p in parts]}
    (carry / "plan.json").write_text(json.dumps(plan, indent=2) + "\n")
    tar.unlink()
    shutil.rmtree(stage)
    return plan


def _xz_tree(files, folder: Path) -> None:
    """Each file as ``folder/<name>.xz`` (``_unxz_tree`` undoes it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        if Path(file).is_file():
            (folder / (Path(file).name + ".xz")).write_bytes(lzma.compress(Path(file).read_bytes(), preset=6))


def _unxz_tree(folder: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for file in folder.glob("*.xz"):
        (out / file.name[: -len(".xz")]).write_bytes(lzma.decompress(file.read_bytes()))


def _cache_dir() -> Path:
    from rewrite.model_folder import cache_root

    return cache_root() / "lm_gpu"


def _cached(name: str, make) -> Path:
    """``$UNSPIN_CACHE/lm_gpu/<name>``, made by ``make(path)`` the first time: the slow parts of a
    payload (15 minutes of xz on a busy 2-core machine) are made once, so cutting the parts again
    for a changed checkout takes seconds."""
    file = _cache_dir() / name
    if not file.is_file():
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f"{file.name}.tmp{os.getpid()}")
        try:
            make(tmp)
            os.replace(tmp, file)
        finally:  # an interrupted make leaves no half-written file in the cache
            tmp.unlink(missing_ok=True)
    return file


def _base_blocks(base: Path, out: Path) -> list[dict]:
    """Write the base's blocks (xz) to ``out``; return their entries (see ``encode_base``)."""
    from rewrite.lm import base_gguf
    from rewrite.model_folder import file_sha256

    gguf_file = base_gguf()
    key = f"base-{file_sha256(gguf_file)[:16]}"
    entries_file = _cache_dir() / f"{key}.json"

    def make(path: Path) -> None:
        log.info("reading the base's GGUF blocks")
        entries, blocks = encode_base(gguf_file, base)
        log.info("compressing %.1f MB of base blocks", len(blocks) / 1e6)
        path.write_bytes(lzma.compress(blocks, preset=6))
        entries_file.write_text(json.dumps(entries) + "\n")

    shutil.copy(_cached(f"{key}.blocks.xz", make), out)
    return json.loads(entries_file.read_text())


def _split_file(npz: Path, sample: int | None, seed: int, out: Path) -> dict:
    """Write a tokenised split (a random ``sample`` of its pairs when given) as ``encode_split``
    bytes to ``out``; return its pair and token counts."""
    from rewrite.model_folder import file_sha256

    from training.data import load_split

    def make(path: Path) -> None:
        arrays = load_split(npz)
        if sample:
            arrays = sample_pairs(arrays, sample, seed)
        log.info("compressing %s (%d pairs)", npz.name, len(arrays["src_off"]) - 1)
        path.write_bytes(encode_split(arrays))

    key = f"{npz.stem}-{file_sha256(npz)[:16]}-{sample or 'all'}-{seed}.xz"
    shutil.copy(_cached(key, make), out)
    with np.load(io.BytesIO(lzma.decompress(out.read_bytes()))) as z:
        return {"pairs": len(z["src_len"]), "tokens": int(len(z["tokens"]))}


def assemble(sources, out: Path) -> Path:
    """The model folder from the parts ``send`` wrote (``sources``: folders or files), with the
    tokenizer put back from the local base; ``Restorer.from_pretrained(out)`` loads it."""
    from rewrite.lm import base_folder
    from rewrite.model_folder import file_sha256, folder_written

    found = find_parts(sources, MODEL)
    if len(found) != 1:
        raise TrainingError(f"expected the parts of one model in {', '.join(map(str, sources))}, found "
                            f"{len(found)}; give the folder one device call brought back")
    parts = next(iter(found.values()))
    out = Path(out)
    tar = out.with_name(out.name + ".tar")
    try:  # a model that does not assemble leaves neither the joined tar nor a partial folder
        join_parts(parts, tar)
        with folder_written(out) as tmp, tarfile.open(tar) as archive:
            archive.extractall(tmp, filter="data")
            returned = json.loads((tmp / "returned.json").read_text())
            tokenizer = base_folder() / "tokenizer.json"
            if file_sha256(tokenizer) != returned["tokenizer_sha256"]:
                raise TrainingError(f"the model was trained with another tokenizer than {tokenizer}; "
                                    "install the base the card names")
            shutil.copy(tokenizer, tmp / "tokenizer.json")
            (tmp / "returned.json").unlink()
    finally:
        tar.unlink(missing_ok=True)
    return out


# ---------------------------------------------------------------- there: receive, send


def receive(parts_dir: Path, store: Path) -> dict:
    """Keep the payload parts carried in ``parts_dir`` in ``store`` (outside the working tree, so
    they outlive the call while the machine stays warm); once all are there, unpack them:

        store/cache/smollm2-<hash>/   the base folder (``UNSPIN_CACHE=store/cache``)
        store/data/                   manifest.json, tokens-<fp>-<len>/{train,validation}.npz
        store/init/                   with --init: the model folder to continue from

    Returns ``{"ready": bool, "have": [...], "count": n, ...}``."""
    kept = store / "parts"
    kept.mkdir(parents=True, exist_ok=True)
    arrived = find_parts([parts_dir], PAYLOAD) if Path(parts_dir).is_dir() else {}
    for group in arrived.values():
        for part in group.values():
            if not (kept / part.name).is_file():
                shutil.copy(part, kept / (part.name + ".tmp"))
                os.replace(kept / (part.name + ".tmp"), kept / part.name)
    ready_file = store / "ready.json"
    ready = json.loads(ready_file.read_text()) if ready_file.is_file() else None
    sha = next(iter(arrived)) if len(arrived) == 1 else (ready or {}).get("sha")
    if len(arrived) > 1:
        raise TrainingError(f"the carried parts belong to {len(arrived)} payloads; carry one payload's parts")
    if sha is None:
        raise TrainingError(f"no payload parts in {parts_dir} and none unpacked in {store}; "
                            "carry a part that `python -m research.lm_gpu prepare` wrote")
    if ready and ready["sha"] == sha:
        return {**ready, "ready": True}
    group = find_parts([kept], PAYLOAD).get(sha, {})
    count = part_count(group)
    if len(group) < count:
        return {"ready": False, "sha": sha, "count": count, "have": sorted(group),
                "missing": [i for i in range(1, count + 1) if i not in group]}
    try:
        tar = join_parts(group, store / "payload.tar")
    except TrainingError:  # a damaged part: drop the kept copies, so the parts carried again are kept
        for part in group.values():
            part.unlink()
        raise
    _unpack(tar, store)
    ready = {"sha": sha, "count": count}
    ready_file.write_text(json.dumps(ready) + "\n")
    for part in group.values():
        part.unlink()
    return {**ready, "ready": True}


def _unpack(tar: Path, store: Path) -> None:
    from safetensors.torch import save_file

    from rewrite.lm import base_cache

    staged = store / "payload"
    shutil.rmtree(staged, ignore_errors=True)
    with tarfile.open(tar) as archive:
        archive.extractall(staged, filter="data")
    tar.unlink()
    meta = json.loads((staged / "payload.json").read_text())
    if meta.get("format") != FORMAT:
        raise TrainingError(f"payload format {meta.get('format')} is not {FORMAT}: prepare and run the same commit")
    base = store / "cache" / base_cache().name
    shutil.rmtree(base, ignore_errors=True)
    _unxz_tree(staged / "base", base)
    state = decode_base(meta["base"], lzma.decompress((staged / "base.blocks.xz").read_bytes()))
    save_file(state, str(base / "model.safetensors"), metadata={"format": "pt"})
    data = store / "data"
    shutil.rmtree(data, ignore_errors=True)
    (data / meta["tokens_folder"]).mkdir(parents=True)
    shutil.copy(staged / "data" / "manifest.json", data / "manifest.json")
    for split in ("train", "validation"):
        np.savez(data / meta["tokens_folder"] / f"{split}.npz",
                 **decode_split((staged / "data" / f"{split}.xz").read_bytes()))
    shutil.rmtree(store / "init", ignore_errors=True)
    if meta["init"]:
        _unxz_tree(staged / "init", store / "init")
        shutil.copy(base / "tokenizer.json", store / "init" / "tokenizer.json")
    shutil.rmtree(store / "run", ignore_errors=True)  # a new payload starts a new run
    shutil.rmtree(staged)


def send(model: Path, out: Path, log_file: Path | None = None, part_bytes: int = 15 * MIB) -> list[Path]:
    """Put an exported model folder (less its tokenizer.json, which ``assemble`` takes from the
    local base) into ``out`` as parts that the device brings back, and the log's tail beside them."""
    from rewrite.model_folder import file_sha256

    model, out = Path(model), Path(out)
    if not (model / "model.safetensors").is_file():
        raise TrainingError(f"{model} holds no exported model; training did not finish")
    if part_bytes > RETURN_FILE_BYTES:
        raise TrainingError(f"parts of {part_bytes / MIB:.1f} MiB do not come back (at most "
                            f"{RETURN_FILE_BYTES // MIB} MiB a file); give smaller parts")
    out.mkdir(parents=True, exist_ok=True)
    tar = model.parent / (model.name + ".tar")
    returned = json.dumps({"tokenizer_sha256": file_sha256(model / "tokenizer.json")})
    with tarfile.open(tar, "w") as archive:
        for file in sorted(model.iterdir()):
            if file.is_file() and file.name != "tokenizer.json":
                archive.add(file, arcname=file.name)
        info = tarfile.TarInfo("returned.json")
        info.size = len(returned)
        archive.addfile(info, io.BytesIO(returned.encode()))
    size = tar.stat().st_size
    count = -(-size // part_bytes)
    if size > RETURN_TOTAL - MIB:  # 1 MiB left for train.log
        tar.unlink()
        raise TrainingError(f"the model is {size / MIB:.1f} MiB, more than the device brings back "
                            f"({RETURN_TOTAL // MIB} MiB); tune fewer layers (raise --freeze-layers)")
    if count > RETURN_FILES - 1:
        tar.unlink()
        raise TrainingError(f"the model would take {count} parts of {part_bytes / MIB:.2f} MiB, more than the "
                            f"{RETURN_FILES - 1} files the device brings back beside train.log; give larger parts")
    parts = split_file(tar, MODEL, part_bytes, lambda i: out)
    tar.unlink()
    if log_file and Path(log_file).is_file():
        with open(log_file, "rb") as fh:
            fh.seek(max(0, Path(log_file).stat().st_size - MIB))
            (out / "train.log").write_bytes(fh.read())
    return parts


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    """``python -m research.lm_gpu prepare|receive|send|assemble`` (see the module docstring)."""
    import click

    @click.group(help="Carry `unspin train --arch lm` to a borrowed GPU and its model back (README: "
                      "'On a borrowed GPU').")
    def cli():
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    @cli.command("prepare", help="Here: write the payload's parts under .carry/lm/ and print the calls.")
    @click.option("--dataset", required=True, type=click.Path(exists=True, file_okay=False),
                  help="Built dataset whose LM-tokenised splits travel (tokens-<fp>-<len>/).")
    @click.option("--repo", default=".", type=click.Path(exists=True, file_okay=False),
                  help="The checkout the device calls send (its size sets the part size).")
    @click.option("--part-mib", type=float, default=None,
                  help="Part size (default: 64 MiB less what the checkout sends, less 1 MiB).")
    @click.option("--train-pairs", type=int, default=None, help="Send this many training pairs (random).")
    @click.option("--init", type=click.Path(exists=True, file_okay=False), default=None,
                  help="Continue from this LM model folder (e.g. one a GPU call brought back).")
    @click.option("--seed", type=int, default=13, show_default=True)
    def prepare_cmd(dataset, repo, part_mib, train_pairs, init, seed):
        plan = _run(prepare, Path(dataset), Path(repo).resolve(), part_mib, train_pairs, seed,
                    Path(init) if init else None)
        click.echo(json.dumps(plan, indent=2))
        n = len(plan["calls"])
        for i, folder in enumerate(plan["calls"], 1):
            env = "MINUTES=7 " if i == n else ""
            click.echo(f"call {i}/{n}: run(command=\"{env}bash research/recipes/lm_gpu.sh\", carry=[\"{folder}\"], "
                       f"timeout_s={600 if i == n else 120})")

    @cli.command("receive", help="There: keep the carried part; unpack once all are in. Exit 3: parts missing.")
    @click.option("--parts", "parts_dir", default=str(CARRY_DIR), type=click.Path())
    @click.option("--store", required=True, type=click.Path())
    def receive_cmd(parts_dir, store):
        status = _run(receive, Path(parts_dir), Path(store))
        click.echo(json.dumps(status))
        if not status["ready"]:
            click.echo(f"waiting: carry part(s) {status['missing']} of {status['count']} (.carry/lm/pNN) next")
            raise SystemExit(3)

    @cli.command("send", help="There: put the exported model into OUT as parts that come back.")
    @click.option("--model", required=True, type=click.Path())
    @click.option("--out", required=True, type=click.Path())
    @click.option("--log", "log_file", default=None, type=click.Path())
    def send_cmd(model, out, log_file):
        for part in _run(send, Path(model), Path(out), Path(log_file) if log_file else None):
            click.echo(f"{part} {part.stat().st_size} bytes")

    @cli.command("assemble", help="Here: rebuild the model folder from the parts a device call brought back.")
    @click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
    @click.option("--out", required=True, type=click.Path())
    def assemble_cmd(sources, out):
        click.echo(_run(assemble, [Path(s) for s in sources], Path(out)))

    cli.main(args=argv, prog_name="python -m research.lm_gpu")


def _run(function, *args):
    """Call ``function``; a ``TrainingError`` (or the rewrite package's ``ModelError``) becomes
    one line on stderr and exit 2."""
    import click

    from rewrite.errors import ModelError

    try:
        return function(*args)
    except (TrainingError, ModelError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
