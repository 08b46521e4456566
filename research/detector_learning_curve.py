"""What a handful of annotated passages buys the spin detector: fit its head on 5, 10, 20, 35 and
all passages of the training markup (3 random draws each) and score word recall at word precision
0.75 and 0.80 on held-out markup. Measured figures: ``benchmarks/results/detector_learning_curve.json``.

    python research/detector_learning_curve.py --train ../shared/train/real_train --dev ../shared/eval/real_dev
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewrite.detector import DetectorConfig, FeatureReader  # noqa: E402
from training.detector import fit_head, predict, read_features, read_passage, recall_at_precision  # noqa: E402
from training.markup import markup_files  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--dev", nargs="+", required=True)
    parser.add_argument("--layers", default="6,12,18")
    parser.add_argument("--l2", type=float, default=50.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    reader = FeatureReader.from_base(DetectorConfig(layers=tuple(int(x) for x in args.layers.split(","))))
    train = [read_passage(p) for p in markup_files(args.train)]
    Xt, yt, gt = read_features(train, reader)
    Xd, yd, _ = read_features([read_passage(p) for p in markup_files(args.dev)], reader)
    rng = np.random.default_rng(0)
    rows = []
    for n in sorted({5, 10, 20, 35, len(train)}):
        if n > len(train):
            continue
        draws = []
        for _ in range(3 if n < len(train) else 1):
            keep = np.isin(gt, rng.choice(len(train), n, replace=False))
            p = predict(fit_head(Xt[keep], yt[keep], args.l2), Xd)
            draws.append((recall_at_precision(yd, p, 0.75)[0], recall_at_precision(yd, p, 0.8)[0]))
        r75, r80 = np.mean(draws, axis=0)
        rows.append({"passages": n, "dev_word_recall_at_p75": round(float(r75), 3),
                     "dev_word_recall_at_p80": round(float(r80), 3), "draws": len(draws)})
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
