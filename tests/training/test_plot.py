"""The quality curve as a picture (`unspin evaluate --markup ... --plot FILE.png`) and in the card."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from training.errors import DatasetError
from training.plot import Curve, plot_curves

ROWS = [{"min_confidence": t, "recall": r, "wrongful_per_100_words": w}
        for t, r, w in ((0.9, 0.05, 0.1), (0.0, 0.17, 1.02), (0.5, 0.15, 0.67))]


def _pixels_of(image, hex_color: str) -> int:
    """How many pixels of the RGBA ``image`` have ``hex_color`` (matplotlib's C0, C1, ...)."""
    import numpy as np

    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    return int((np.abs(image[..., :3] - rgb).max(axis=-1) < 0.02).sum())


def test_a_curve_is_its_points_by_threshold_and_finds_the_nearest():
    curve = Curve.from_result("m", {"curve": ROWS}, chosen=0.5)
    assert [t for t, _r, _w in curve.points] == [0.0, 0.5, 0.9]
    assert curve.at(0.5) == (0.5, 0.15, 0.67) and curve.at(0.55) == (0.5, 0.15, 0.67)
    with pytest.raises(DatasetError, match="no points"):
        Curve.from_result("empty", {"curve": []})


def test_a_curve_from_a_model_folders_markup_metrics(tmp_path):
    path = tmp_path / "markup_metrics.json"
    path.write_text(json.dumps({"curve": ROWS, "recommended": {"min_confidence": 0.5}}))
    assert Curve.from_metrics(path, "m").chosen == 0.5
    with pytest.raises(DatasetError, match="run `unspin evaluate --markup"):
        Curve.from_metrics(tmp_path / "missing.json", "m")


def test_one_line_per_system_drawn_into_a_small_png(tmp_path):
    import matplotlib.image

    first = Curve.from_result("shipped", {"curve": ROWS}, chosen=0.5)
    second = Curve.from_result("other", {"curve": [{**row, "recall": row["recall"] / 2} for row in ROWS]})
    path = plot_curves([first, second], tmp_path / "plots" / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < 200_000
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (440, 640)
    assert _pixels_of(image, "#1f77b4") > 200 and _pixels_of(image, "#ff7f0e") > 200  # both lines drawn
    only_first = matplotlib.image.imread(plot_curves([first], tmp_path / "one.png"))
    assert _pixels_of(only_first, "#ff7f0e") == 0


def test_plot_and_compare_need_markup():
    from training.cli import evaluate_cmd

    result = CliRunner().invoke(evaluate_cmd, ["--plot", "x.png"])
    assert result.exit_code == 2 and "give --markup too" in result.output


@pytest.mark.slow
def test_evaluate_plots_each_compared_model(tmp_path, tiny_model_dir):
    from tests.training.test_markup import MARKUP
    from training.cli import evaluate_cmd

    (tmp_path / "a.markup").write_text(MARKUP, encoding="utf-8")
    plot = tmp_path / "curve.png"
    result = CliRunner().invoke(evaluate_cmd, ["--markup", str(tmp_path / "a.markup"), "--model", str(tiny_model_dir),
                                               "--backend", "torch", "--plot", str(plot),
                                               "--compare", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.count("1 markup files, model") == 2 and f"curve drawn to {plot}" in result.output
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_the_model_card_embeds_the_curve_when_it_is_beside_the_weights(tmp_path):
    from training.card import write_card

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    assert "curve.png" not in write_card(tmp_path).read_text()
    plot_curves([Curve.from_result("m", {"curve": ROWS}, chosen=0.5)], tmp_path / "curve.png")
    card = write_card(tmp_path).read_text()
    assert "![Recall against wrongful edits per 100 words, by min_confidence, the chosen threshold starred](curve.png)" in card
