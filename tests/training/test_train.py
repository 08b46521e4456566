import json
import os
import subprocess
import sys

import pytest

from training.errors import ConfigError, DatasetError, TrainingError
from training.train import TrainConfig, train


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small built dataset from the tiny corpus (seed lexicon only)."""
    from tests.training.conftest import SEED_TABLE
    from training.build import BuildConfig, build_dataset
    from training.lexicon import LexiconConfig
    from training.spinner import EngineConfig, SpinnerConfig

    root = tmp_path_factory.mktemp("train-data")
    table = root / "seed.tsv"
    table.write_text(SEED_TABLE)
    corpus = root / "corpus.txt"
    lines = [f"Officials say at least {k} people died in the war overnight." for k in range(120)]
    lines += [f"The Security Council met on day {k} and people said the war came ahead of talks." for k in range(120)]
    corpus.write_text("\n\n".join(lines) + "\n")
    build_dataset(BuildConfig(corpus=[str(corpus)], out=str(root / "ds"), workers=1, validation_fraction=0.1,
                              test_fraction=0.1, lexicon=LexiconConfig(sources=("seed",), seed_table=str(table)),
                              spinner=SpinnerConfig(engines=[EngineConfig("s", {"seed": 1.0}, 0.2, 0.6)])),
                  progress=False)
    return root / "ds"


def tiny(dataset, out, **kw):
    values = dict(dataset=str(dataset), out=str(out), preset="tiny", vocab_size=320, max_steps=12, eval_every=6,
                  save_every=6, log_every=3, batch_tokens=2000, warmup_steps=5, threads=1)
    values.update(kw)
    return TrainConfig(**values)


@pytest.mark.slow  # tiny training runs
def test_train_exports_self_describing_model(dataset, tmp_path):
    path = train(tiny(dataset, tmp_path / "run"))
    names = {p.name for p in path.iterdir()}
    assert {"model.safetensors", "config.json", "spiece.model", "tokenizer.json", "training_config.json",
            "data_manifest.json", "training_summary.json"} <= names
    summary = json.loads((path / "training_summary.json").read_text())
    assert summary["steps"] == 12 and summary["tokens_seen"] > 0 and "val_loss" in summary
    assert summary["environment"]["torch"]
    assert json.loads((path / "training_config.json").read_text())["seed"] == 13
    assert json.loads((path / "data_manifest.json").read_text())["format"] == "unspin-dataset/1"
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("val_loss" in entry for entry in log)


@pytest.mark.slow  # tiny training runs
def test_resume_continues_from_checkpoint(dataset, tmp_path):
    train(tiny(dataset, tmp_path / "run", max_steps=6))
    train(tiny(dataset, tmp_path / "run", max_steps=12))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [e["step"] for e in log if "loss" in e]
    assert steps == [3, 6, 9, 12]  # the second run started at step 7, not 1


@pytest.mark.slow  # tiny training runs
def test_resume_matches_uninterrupted_run(dataset, tmp_path):
    from safetensors.torch import load_file

    train(tiny(dataset, tmp_path / "a", max_steps=12, bf16=False))
    train(tiny(dataset, tmp_path / "b", max_steps=6, bf16=False))
    train(tiny(dataset, tmp_path / "b", max_steps=12, bf16=False))
    a = load_file(tmp_path / "a" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "b" / "checkpoint" / "model.safetensors")
    for key in a:
        assert (a[key] - b[key]).abs().max() < 1e-5, key


@pytest.mark.slow  # tiny training runs
def test_fine_tune_from_init(dataset, tmp_path):
    first = train(tiny(dataset, tmp_path / "base", max_steps=4))
    second = train(tiny(dataset, tmp_path / "tuned", max_steps=4, init=str(first)))
    assert (second / "tokenizer.json").read_bytes() == (first / "tokenizer.json").read_bytes()


@pytest.mark.slow  # tiny training runs
def test_linear_schedule_cools_down_to_zero(dataset, tmp_path):
    import torch

    from training.train import Trainer

    config = tiny(dataset, tmp_path / "run", schedule="linear", max_steps=20, warmup_steps=5)
    trainer = Trainer(config, torch.nn.Linear(2, 2), {}, torch.device("cpu"))
    factors = [trainer._lr_factor(step) for step in range(0, 21)]
    assert factors[5] == 1.0 and factors[20] == 0.0
    assert factors[1:6] == sorted(factors[1:6]) and factors[5:] == sorted(factors[5:], reverse=True)
    inverse = Trainer(tiny(dataset, tmp_path / "b", max_steps=20, warmup_steps=5), torch.nn.Linear(2, 2), {},
                      torch.device("cpu"))
    assert inverse._lr_factor(20) == pytest.approx(0.5)  # sqrt(5 / 20)
    with pytest.raises(ConfigError, match="schedule"):
        tiny(dataset, tmp_path / "c", schedule="cosine")


def test_jemalloc_env(tmp_path, monkeypatch):
    from training import alloc

    library = tmp_path / "libjemalloc.so.2"
    library.write_bytes(b"")
    monkeypatch.setattr(alloc, "CANDIDATES", (str(library),))
    env = alloc.jemalloc_env({"PATH": "/bin"})
    assert env["LD_PRELOAD"] == str(library) and "dirty_decay_ms:-1" in env["MALLOC_CONF"] and env["PATH"] == "/bin"
    assert alloc.jemalloc_env({"LD_PRELOAD": str(library)}) is None  # already loaded
    assert alloc.jemalloc_env({"UNSPIN_JEMALLOC": "0"}) is None  # turned off
    monkeypatch.setattr(alloc, "CANDIDATES", (str(tmp_path / "missing.so"),))
    assert alloc.jemalloc_env({}) is None


@pytest.mark.slow  # tiny training runs
def test_errors(dataset, tmp_path):
    with pytest.raises(ConfigError, match="--dataset"):
        TrainConfig(dataset="")
    with pytest.raises(ConfigError, match="not a model folder"):
        train(tiny(dataset, tmp_path / "run", init=str(tmp_path)))
    with pytest.raises(DatasetError, match="build-dataset"):
        train(tiny(tmp_path / "nothing", tmp_path / "run"))
    import shutil

    small = train(tiny(dataset, tmp_path / "small", max_steps=2, vocab_size=300))
    large = train(tiny(dataset, tmp_path / "large", max_steps=2, vocab_size=320))
    for name in ("tokenizer.json", "spiece.model"):
        shutil.copy(large / name, small / name)  # a model folder whose tokenizer is not its own
    with pytest.raises(TrainingError, match="vocab 300 != tokenizer length 320"):
        train(tiny(dataset, tmp_path / "mismatch", max_steps=2, init=str(small)))


@pytest.mark.slow
def test_data_parallel_under_torchrun(dataset, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "-m", "training.train",
           "--dataset", str(dataset), "--out", str(tmp_path / "ddp"), "--preset", "tiny", "--vocab-size", "320",
           "--max-steps", "6", "--eval-every", "3", "--save-every", "3", "--log-every", "3", "--batch-tokens", "2000",
           "--device", "cpu"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ddp" / "model" / "model.safetensors").is_file()
    summary = json.loads((tmp_path / "ddp" / "model" / "training_summary.json").read_text())
    assert summary["steps"] == 6


def test_a_failed_export_leaves_the_old_model_and_nothing_half_written(dataset, tmp_path):
    from training.train import export

    class FullDisk:
        def to(self, *args):
            return self

        def save_pretrained(self, folder):
            (folder / "model.safetensors").write_bytes(b"half")
            raise OSError("No space left on device")

    out = tmp_path / "run" / "model"
    out.mkdir(parents=True)
    (out / "model.safetensors").write_bytes(b"the model of an earlier run")
    with pytest.raises(OSError, match="No space"):
        export(FullDisk(), tmp_path / "tokenizer", tiny(dataset, tmp_path / "run"), {"steps": 0}, out)
    assert [p.name for p in out.parent.iterdir()] == ["model"]
    assert (out / "model.safetensors").read_bytes() == b"the model of an earlier run"
