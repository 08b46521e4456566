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
