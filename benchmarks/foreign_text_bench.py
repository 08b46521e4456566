"""Seconds and edits for 4,000 characters of text that is not English, through the shipped model.

    python benchmarks/foreign_text_bench.py                    # -> benchmarks/results/foreign_text.json
    python benchmarks/foreign_text_bench.py --before           # also as before: every piece with a word sent

Japanese, Russian and emoji (sentences written for this benchmark, repeated to one paragraph of
4,000 characters)
and, for scale, 4,000 characters of the sample spun article, each restored once with
``Restorer.restore`` (after one warm-up call). ``--before`` times them again with the old
segment filter (any word, in any script, sent to the model), the behaviour the issue measured:
42 s for the Japanese.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # measure this checkout's code, wherever the package is installed
CHARS = 4000
# Each repeated into one paragraph of 4,000 characters (the costly case: no line breaks, so the
# model got pieces of up to 64 tokens, hundreds of characters and over 512 byte tokens each).
TEXTS = {
    "Japanese": "東京都は月曜日、新しい政策を発表した。少なくとも十五人が負傷したと当局は述べた。",
    "Russian": "Правительство объявило в понедельник о новых мерах. Пострадали не менее 15 человек. ",
    "emoji": "😀👩‍👩‍👧 🎉🎉 👍🏽 🇯🇵 🙂🙃 ✨🔥 2024 — 15 % ",
}


def samples() -> dict[str, str]:
    article = (REPO / "seeds" / "sample_spun_article.txt").read_text(encoding="utf-8")
    texts = {name: (line * (CHARS // len(line) + 1))[:CHARS] for name, line in TEXTS.items()}
    texts["English (sample article)"] = (article * (CHARS // len(article) + 1))[:CHARS]
    return texts


def measure(restorer, texts: dict[str, str]) -> dict[str, dict]:
    rows = {}
    for name, text in texts.items():
        started = time.perf_counter()
        result = restorer.restore(text)
        seconds = time.perf_counter() - started
        rows[name] = {"characters": len(text), "seconds": round(seconds, 3), "edits": len(result.edits),
                      "unchanged": result.text == text}  # fmt: skip
        click.echo(f"{name:26} {len(text):5} chars  {seconds:7.2f} s  {len(result.edits):3} edits")
    return rows


@click.command()
@click.option("--backend", default="auto", show_default=True, help="Restorer backend.")
@click.option("--before", is_flag=True, help="Also time the old filter (every piece with a word goes to the model).")
@click.option("--out", type=click.Path(path_type=Path), default=REPO / "benchmarks" / "results" / "foreign_text.json",
              show_default=True)  # fmt: skip
def main(backend: str, before: bool, out: Path) -> None:
    """Time non-English text through the shipped model."""
    import rewrite.restorer
    from rewrite import Restorer
    from rewrite.model_folder import hide_developer_warnings
    from rewrite.text import WORD_RE, is_word

    hide_developer_warnings()
    restorer = Restorer.from_pretrained(backend=backend)
    restorer.restore("Rubio mentioned it.")  # warm-up
    texts = samples()
    report = {"model": restorer.model_info.get("name"), "backend": restorer.model_info.get("backend"),
              "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
              "command": "python benchmarks/foreign_text_bench.py" + (" --before" if before else ""),
              "load_average_at_start": round(os.getloadavg()[0], 1),
              "now": measure(restorer, texts)}  # fmt: skip
    if before:
        click.echo("before (any word, in any script, sent to the model):")
        kept = rewrite.restorer.has_english_word
        rewrite.restorer.has_english_word = lambda piece: any(is_word(t) for t in WORD_RE.findall(piece))
        try:
            report["before"] = measure(restorer, {k: v for k, v in texts.items() if not k.startswith("English")})
        finally:
            rewrite.restorer.has_english_word = kept
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
