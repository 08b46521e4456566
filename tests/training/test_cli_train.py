"""`unspin train` and `unspin evaluate` end to end on a dataset built from a small corpus."""

import json

import pytest
from click.testing import CliRunner

from training.build import load_dataset_dir
from training.evaluate import TORTURED
from unspin.cli import cli
from tests.training.test_train import dataset  # noqa: F401  (module-scoped fixture)


@pytest.mark.slow  # a tiny training run
def test_train_then_evaluate(dataset, tmp_path):  # noqa: F811
    runner = CliRunner()
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"preset": "tiny", "vocab_size": 320, "batch_tokens": 2000, "eval_every": 4,
                                  "save_every": 4, "log_every": 2, "warmup_steps": 2, "threads": 1}))
    result = runner.invoke(cli, ["train", "--dataset", str(dataset), "--out", str(tmp_path / "run"),
                                 "--config", str(config), "--max-steps", "4"])
    assert result.exit_code == 0, result.output
    model = tmp_path / "run" / "model"
    result = runner.invoke(cli, ["evaluate", "--model", str(model), "--data", str(dataset), "--max-examples", "20",
                                 "--tortured-max", "6", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    nothing = metrics["do_nothing"]
    assert nothing["slot_recall"] == 0.0 and nothing["wrongful_edits_per_100_words"] == 0.0
    assert nothing["unchanged_rate_unspun"] == 1.0 and nothing["unspun_examples"] > 0
    examples = min(20, len(load_dataset_dir(dataset)["test"]))
    for system in ("model", "frequency_baseline", "frequency_at_known_spans"):  # scored on the same sentences
        assert (metrics[system]["examples"], metrics[system]["spun_slots"]) == (examples, nothing["spun_slots"])
    assert nothing["spun_slots"] > 0
    if TORTURED.is_file():  # evaluation data that lives only in the workspace's ../shared
        assert metrics["tortured_phrases"]["phrases"] == 6
    else:
        assert "tortured_phrases" not in metrics
    assert json.loads((model / "metrics.json").read_text())["examples"]


def test_train_and_evaluate_errors(dataset, tmp_path):  # noqa: F811
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--dataset", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "build-dataset" in result.output
    result = runner.invoke(cli, ["train", "--dataset", str(dataset), "--out", str(tmp_path / "run"),
                                 "--init", str(tmp_path)])
    assert result.exit_code == 2 and "not a model folder" in result.output
    result = runner.invoke(cli, ["evaluate", "--model", str(tmp_path / "none"), "--data", str(tmp_path)])
    assert result.exit_code == 2 and "error" in result.output.lower()


def test_every_train_config_field_has_a_flag_with_help():
    import dataclasses

    from training.cli import train_cmd
    from training.train import train_process
    from training.config import TrainConfig

    for command in (train_cmd, train_process):
        options = {p.name: p for p in command.params}
        for field in dataclasses.fields(TrainConfig):
            option = options[field.name]
            assert option.opts == ["--" + field.name.replace("_", "-")]
            assert option.help.startswith(field.metadata["help"])


@pytest.fixture
def captured(monkeypatch):
    """Run `unspin train` / `python -m training.train` with training (and the jemalloc re-run)
    replaced: the configs they would train with, and the command lines they would start."""
    from training import cli, train

    seen = {"configs": [], "argv": []}
    monkeypatch.setattr(train, "train", lambda config: seen["configs"].append(config) or "model")
    monkeypatch.setattr(train, "preflight", lambda config: None)
    monkeypatch.setattr(cli, "jemalloc_env", lambda: None)
    monkeypatch.setattr(cli.subprocess, "call", lambda args, env: seen["argv"].append(args) or 0)
    return seen


def test_train_flags_reach_the_config(captured, tmp_path):
    runner = CliRunner()
    base = ["train", "--dataset", "d", "--out", "o"]
    for extra, want in [
        ([], dict(bf16=True, arch="t5", freeze_layers=22, max_steps=20_000)),
        (["--fp32"], dict(bf16=False)),
        (["--bf16", "false"], dict(bf16=False)),
        (["--bf16"], dict(bf16=True)),
        (["--prepare-only", "--max-minutes", "1.5"], dict(prepare_only=True, max_minutes=1.5)),
        (["--arch", "lm", "--freeze-layers", "3", "--init", "m"], dict(arch="lm", freeze_layers=3, init="m")),
        (["--weight-decay", "0.1", "--threads", "2"], dict(weight_decay=0.1, threads=2)),  # no hand-written option
    ]:
        result = runner.invoke(cli, base + extra)
        assert result.exit_code == 0, result.output
        config = captured["configs"].pop()
        assert {k: getattr(config, k) for k in want} == want, extra
    settings = tmp_path / "train.json"
    settings.write_text(json.dumps({"dataset": "from-file", "preset": "tiny", "max_steps": 7, "lr": 0.01}))
    result = runner.invoke(cli, base + ["--config", str(settings), "--max-steps", "9"])
    assert result.exit_code == 0, result.output
    config = captured["configs"].pop()
    assert (config.dataset, config.preset, config.max_steps, config.lr) == ("d", "tiny", 9, 0.01)  # flags win
    settings.write_text(json.dumps({"max_stepz": 7}))
    result = runner.invoke(cli, base + ["--config", str(settings)])
    assert result.exit_code == 2 and "unknown training settings max_stepz" in result.output
    result = runner.invoke(cli, base + ["--schedule", "cosine"])
    assert result.exit_code != 0 and "inverse_sqrt" in result.output and not captured["configs"]


def test_child_process_gets_the_same_settings(captured, tmp_path):
    from training.train import train_process

    settings = tmp_path / "train.json"
    settings.write_text(json.dumps({"preset": "tiny", "lr": 0.01}))
    result = CliRunner().invoke(cli, ["train", "--dataset", "d", "--out", "o", "--config", str(settings), "--nproc", "2",
                                      "--fp32", "--max-steps", "5", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    (argv,) = captured["argv"]
    assert argv[1:5] == ["-m", "torch.distributed.run", "--nproc-per-node=2", "-m"] and argv[5] == "training.train"
    assert not captured["configs"]  # the parent trains nothing itself
    result = CliRunner().invoke(train_process, argv[6:])
    assert result.exit_code == 0, result.output
    (config,) = captured["configs"]
    assert (config.dataset, config.out, config.preset, config.lr, config.bf16, config.max_steps, config.device) == (
        "d", "o", "tiny", 0.01, False, 5, "cpu")
