"""Weight averaging of a fine-tune with its base (training/average.py, `unspin average-models`)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from rewrite.errors import ModelError
from training.average import average_models
from training.errors import ConfigError


@pytest.fixture
def pair(tiny_model_dir, tmp_path):
    """The tiny model as the base, and a 'fine-tune' of it: every tensor moved, plus the tuned run's own metrics."""
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    shutil.copytree(tiny_model_dir, base)
    shutil.copytree(tiny_model_dir, tuned)
    generator = torch.Generator().manual_seed(1)
    weights = {k: v + 0.1 * torch.randn(v.shape, generator=generator) for k, v in load_file(base / "model.safetensors").items()}
    save_file(weights, tuned / "model.safetensors", metadata={"format": "pt"})
    (tuned / "metrics.json").write_text('{"slot_recall": 0.5}\n')
    return base, tuned


def test_the_average_is_the_weighted_mean_of_every_tensor_and_loads(pair, tmp_path):
    from rewrite import Restorer, apply_edits

    base, tuned = pair
    out = average_models(base, tuned, 0.25, tmp_path / "avg")
    a, b, m = (load_file(f / "model.safetensors") for f in (base, tuned, out))
    assert m.keys() == b.keys()
    for name in b:
        assert torch.allclose(m[name], 0.75 * a[name] + 0.25 * b[name], atol=1e-6), name
        assert not torch.equal(m[name], a[name]) and not torch.equal(m[name], b[name])
    record = json.loads((out / "averaging.json").read_text())
    assert record["weight"] == 0.25 and len(record["base"]["sha256"]) == 64
    assert record["base"]["sha256"] != record["tuned"]["sha256"]
    assert not (out / "metrics.json").exists()  # the tuned model's metrics describe another model
    assert (out / "spiece.model").is_file() and not (tmp_path / "avg.tmp").exists()
    text = "The individuals mentioned the struggle is over."
    restored = Restorer.from_pretrained(out).restore(text)
    assert apply_edits(text, restored.edits) == restored.text  # a working model folder


def test_the_ends_of_the_weight_give_the_two_models(pair, tmp_path):
    base, tuned = pair
    for weight, model in ((0.0, base), (1.0, tuned)):
        out = average_models(base, tuned, weight, tmp_path / f"w{weight}")
        got, want = load_file(out / "model.safetensors"), load_file(model / "model.safetensors")
        assert all(torch.equal(got[k], want[k]) for k in want)


def test_models_that_do_not_match_are_refused_with_advice(pair, tmp_path):
    base, tuned = pair
    weights = load_file(tuned / "model.safetensors")
    name = next(iter(weights))
    save_file({**weights, name: torch.zeros(3, 3)}, tuned / "model.safetensors")
    with pytest.raises(ModelError, match="tuned from"):
        average_models(base, tuned, 0.5, tmp_path / "avg")
    save_file({k: v for k, v in weights.items() if k != name}, tuned / "model.safetensors")
    with pytest.raises(ModelError, match="different tensors"):
        average_models(base, tuned, 0.5, tmp_path / "avg")
    with pytest.raises(ModelError, match="no model.safetensors"):
        average_models(tmp_path / "nowhere", tuned, 0.5, tmp_path / "avg")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        average_models(base, tuned, 1.5, tmp_path / "avg")
    with pytest.raises(ConfigError, match="new folder"):
        average_models(base, tuned, 0.5, tuned)
    assert not (tmp_path / "avg").exists() and not (tmp_path / "avg.tmp").exists()


def test_a_failed_write_leaves_nothing(pair, tmp_path, monkeypatch):
    import safetensors.torch

    base, tuned = pair

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OSError):
        average_models(base, tuned, 0.5, tmp_path / "avg")
    assert sorted(p.name for p in tmp_path.iterdir()) == before and "avg" not in before


def test_cli_average_models(pair, tmp_path):
    from click.testing import CliRunner

    from unspin.cli import cli

    base, tuned = pair
    ok = CliRunner().invoke(cli, ["average-models", "--base", str(base), "--tuned", str(tuned), "--out", str(tmp_path / "avg")])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "avg" / "averaging.json").read_text())["weight"] == 0.5
    bad = CliRunner().invoke(cli, ["average-models", "--base", str(tmp_path / "nowhere"), "--tuned", str(tuned),
                                   "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "no model.safetensors" in bad.output
