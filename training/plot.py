"""The quality curve as a picture: recall of the places real spinners changed against wrongful
edits per 100 words, one point per ``min_confidence``, one line per system, each system's chosen
threshold marked (``unspin evaluate --markup ... --plot FILE.png``)::

    >>> curve = Curve.from_result("default", evaluate_markup(files, restorer), chosen=0.5)
    >>> plot_curves([curve], "curve.png")                     # a PNG of about 50 kB
    >>> Curve.from_metrics(Path("rewrite/models/default/markup_metrics.json"), "default")

``curve`` rows are those of ``training.markup.evaluate_markup`` (and of a model folder's
``markup_metrics.json``): ``{"min_confidence", "recall", "wrongful_per_100_words", ...}``.
matplotlib (the ``train`` extra) is imported only when drawing, with the Agg backend.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from .errors import DatasetError, TrainingError

logger = logging.getLogger(__name__)

# The budget the shipped threshold is chosen under (``training.markup.choose_threshold``).
WRONGFUL_BUDGET = 1.0
# Thresholds written beside their point (others are plain dots, so that labels do not pile up).
LABELLED = (0.0, 0.5, 0.7, 0.9, 0.97)


@dataclasses.dataclass(frozen=True)
class Curve:
    """One system's curve: ``points`` as (min_confidence, recall, wrongful per 100 words), sorted
    by threshold; ``chosen`` the threshold to mark (``None``: none)."""

    name: str
    points: tuple[tuple[float, float, float], ...]
    chosen: float | None = None

    def __post_init__(self) -> None:
        if not self.points:
            raise DatasetError(f"the curve of {self.name} has no points; score some markup first")

    @classmethod
    def from_result(cls, name: str, result: dict, chosen: float | None = None) -> Curve:
        """From ``evaluate_markup``'s result or a ``markup_metrics.json`` (its ``curve`` rows)."""
        rows = sorted(result.get("curve") or [], key=lambda row: row["min_confidence"])
        points = tuple((r["min_confidence"], r["recall"], r["wrongful_per_100_words"]) for r in rows)
        return cls(name, points, chosen)

    @classmethod
    def from_metrics(cls, path: Path, name: str) -> Curve:
        """From a model folder's ``markup_metrics.json``, its recommended threshold marked."""
        try:
            metrics = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {path} ({exc}); run `unspin evaluate --markup ... --model DIR` "
                               "to write it") from exc
        chosen = (metrics.get("recommended") or {}).get("min_confidence")
        return cls.from_result(name, metrics, chosen)

    def at(self, threshold: float) -> tuple[float, float, float]:
        """The point of ``threshold`` (the nearest one scored)."""
        return min(self.points, key=lambda point: abs(point[0] - threshold))


def plot_curves(curves: list[Curve], path: str | Path, title: str | None = None) -> Path:
    """Draw ``curves`` into the PNG ``path`` (its folder is created); returns the path."""
    try:
        import matplotlib
    except ImportError:
        raise TrainingError("drawing the curve needs matplotlib: pip install 'unspin[train]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not curves:
        raise DatasetError("no curve to draw")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    try:
        for index, curve in enumerate(curves):
            _draw(ax, curve, f"C{index}")
        most = max(w for curve in curves for _t, _r, w in curve.points)
        ax.axvline(WRONGFUL_BUDGET, color="0.55", linestyle="--", linewidth=1)
        ax.text(WRONGFUL_BUDGET, 0.03, f"budget: {WRONGFUL_BUDGET:g} wrongful / 100 words ", color="0.4",
                fontsize=8, rotation=90, ha="right", va="bottom", transform=ax.get_xaxis_transform())
        ax.set_xlim(0, max(most, WRONGFUL_BUDGET) * 1.12)
        ax.set_ylim(0, max(r for curve in curves for _t, r, _w in curve.points) * 1.18 + 0.01)
        ax.set_xlabel("wrongful edits per 100 words (lower is better); points labelled by min_confidence")
        ax.set_ylabel("recall: spun places restored (higher is better)")
        ax.set_title(title or "Recall against wrongful edits, by min_confidence", fontsize=11)
        ax.grid(True, color="0.9")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    logger.info("curve of %d system(s) drawn to %s", len(curves), path)
    return path


def _draw(ax, curve: Curve, color: str) -> None:
    thresholds, recall, wrongful = zip(*curve.points)
    label = curve.name if curve.chosen is None else f"{curve.name} (chosen min_confidence {curve.chosen:g})"
    ax.plot(wrongful, recall, marker="o", markersize=3.5, linewidth=1.5, color=color, label=label)
    for t, r, w in curve.points:
        if any(abs(t - shown) < 1e-9 for shown in LABELLED):
            ax.annotate(f"{t:.2f}", (w, r), textcoords="offset points", xytext=(4, -10), fontsize=7, color=color)
    if curve.chosen is not None:
        _t, r, w = curve.at(curve.chosen)
        ax.plot([w], [r], marker="*", markersize=15, color=color, markeredgecolor="black", linestyle="none")
        ax.annotate(f"chosen {curve.chosen:.2f}: recall {r:.3f} at {w:.2f} wrongful", (w, r),
                    textcoords="offset points", xytext=(10, -16), ha="left", fontsize=8, color="black")
