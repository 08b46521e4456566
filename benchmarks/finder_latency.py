"""Latency and memory of the default restorer on one ~100-word news paragraph, as one service
request with one client sees it (the model call alone; the HTTP layer adds ~1 ms).

    python benchmarks/finder_latency.py [--mode auto|fast] [--runs 20] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewrite import Restorer  # noqa: E402

# A team-written spun paragraph of 100 words (not from any evaluation set).
PARAGRAPH = (
    "The senator mentioned on Wednesday that the struggle in the region had left not less than 40 individuals "
    "useless, and that officials were making ready for a bigger battle if the talks collapsed. He additionally "
    "mentioned the administration would search for new sanctions in opposition to the government, which has "
    "denied any wrongdoing. Residents fled the capital in a single day as the fighting came nearer, and aid "
    "groups warned that food and water were running low. The United Nations said it was deeply concerned and "
    "called on both sides to guard civilians, while diplomats met in Geneva to discuss a ceasefire plan."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="auto", choices=["auto", "fast"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    restorer = Restorer.from_pretrained(mode=args.mode)
    restorer.restore(PARAGRAPH)  # warm-up (the service times one paragraph before /readyz)
    load = time.perf_counter() - start
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        restorer.restore(PARAGRAPH)
        times.append(time.perf_counter() - t)
    times.sort()
    words = len(PARAGRAPH.split())
    figures = {"mode": args.mode, "finder": restorer.finder is not None, "words": words, "runs": args.runs,
               "load_and_warm_s": round(load, 1), "median_ms": round(1000 * statistics.median(times)),
               "p95_ms": round(1000 * times[max(0, int(0.95 * len(times)) - 1)]),
               "words_per_second": round(words / statistics.median(times), 1),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    print(json.dumps(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
