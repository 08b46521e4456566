"""What could still close the channel-coverage gap? Upper bounds, read off the misses.

    apt-get download dict-freedict-eng-deu dict-freedict-deu-eng ...   # into a folder, then
    for f in *.deb; do dpkg-deb -x "$f" x; done                         # x/usr/share/dictd/*.dict.dz
    unspin channel-coverage ../shared/eval/real_dev/*.markup --json > runs/coverage.json
    python research/gap_scan.py --coverage runs/coverage.json --dictd x/usr/share/dictd \\
        --json benchmarks/results/channel_gap_scan.json

For every place the channel misses (``misses`` in the coverage report), it asks:
- pivot: does a bilingual-dictionary pivot hold the pair? Two English words or phrases of at most 4
  words are paired when a FreeDict dictionary (English to X, or X to English, for every X given)
  gives both for the same X word. The match is generous (the original and the spun wording are
  compared with a plain -s/-es/-ed/-d/-ing stripped too), so the count is an upper bound.
- insertion: is the spun wording the original with one word added?
- same stem: is it one word that shares its first four letters with the original one?
- British spelling: is it a word in a British spelling (-ise, -isation, -our, -tre endings), which a
  lever that re-spells a synonym could make?

Only counts are written: the misses are ``real_dev``'s wording, which stays out of the project.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
from pathlib import Path

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
MAX_GROUP = 30  # an X word with more English translations than this is a junk entry
SUFFIXES = ("s", "es", "ing", "ed", "d")
BRITISH = re.compile(r"(?<=[a-z]{3})(is(e|es|ed|ing|ation|ations)|our|ours|tre|tres)$")


def _b64(text: str) -> int:
    value = 0
    for char in text:
        value = value * 64 + B64.index(char)
    return value


def dictd_entries(folder: Path, name: str):
    """(headword, entry text) of one dictd dictionary, ``name``.index + ``name``.dict.dz."""
    index, data = folder / f"{name}.index", folder / f"{name}.dict.dz"
    if not index.is_file():
        return
    raw = gzip.open(data).read()
    for line in index.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith("00-database"):
            continue
        offset, length = _b64(parts[1]), _b64(parts[2])
        yield parts[0], raw[offset:offset + length].decode("utf-8", "replace")


def english(text: str) -> str | None:
    """A translation as a lower-case English word or phrase of at most 4 words, or None."""
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>|\"[^\"]*\"", " ", text)
    text = re.sub(r"^\s*\d+\.\s*", "", text).strip(" .;:-").lower()
    text = re.sub(r"\s+", " ", text)
    if not text or len(text.split()) > 4 or re.search(r"[^a-z' -]", text):
        return None
    return text[3:] if text.startswith("to ") else text


def pivot_table(folder: Path, languages: list[str]) -> dict[str, set[str]]:
    groups = collections.defaultdict(set)  # (language, X word) -> English words and phrases
    for lang in languages:
        for head, body in dictd_entries(folder, f"freedict-{lang}-eng"):
            for line in body.split("\n")[1:]:
                groups[(lang, head.lower())].update(filter(None, map(english, re.split(r"[,;]", line))))
        for head, body in dictd_entries(folder, f"freedict-eng-{lang}"):
            word = english(head)
            for line in body.split("\n")[1:] if word else ():
                for piece in re.split(r"[,;]", line):
                    foreign = re.sub(r"^\d+\.\s*", "", re.sub(r"\([^)]*\)|<[^>]*>", " ", piece).strip(" .").lower())
                    if foreign.strip() and len(foreign.split()) <= 4:
                        groups[(lang, foreign.strip())].add(word)
    table = collections.defaultdict(set)
    for words in groups.values():
        if len(words) <= MAX_GROUP:
            for a in words:
                table[a].update(words - {a})
    return table


def forms(text: str) -> set[str]:
    text = text.lower().replace("\u2019", "'")
    words = text.split()
    out = {text}
    for suffix in SUFFIXES:
        if words and words[-1].endswith(suffix) and len(words[-1]) > len(suffix) + 2:
            out.add(" ".join(words[:-1] + [words[-1][: -len(suffix)]]))
    return out


def scan(misses: list[dict], table: dict[str, set[str]]) -> dict:
    counts = collections.Counter()
    by_kind = collections.defaultdict(collections.Counter)
    for miss in misses:
        spun = miss["spun"].lower().replace("\u2019", "'").split()
        found = set()
        for alternative in miss["alternatives"]:
            original = alternative.lower().replace("\u2019", "'").split()
            if any(s in table.get(o, ()) for o in forms(alternative) for s in forms(miss["spun"])):
                found.add("pivot")
            if len(spun) == len(original) + 1 and any(spun[:i] + spun[i + 1:] == original for i in range(len(spun))):
                found.add("insertion")
            if len(spun) == len(original) == 1 and spun != original and spun[0][:4] == original[0][:4]:
                found.add("same stem")
            if any(BRITISH.search(word) for word in spun) and not any(BRITISH.search(w) for w in original):
                found.add("British spelling")
        for lever in found | {"misses"}:
            counts[lever] += 1
            by_kind[miss["kind"]][lever] += 1
        counts["any lever"] += bool(found)
    return {"counts": dict(counts), "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coverage", required=True, help="the JSON of unspin channel-coverage --json")
    parser.add_argument("--dictd", required=True, help="a folder of FreeDict dictd files (*.index, *.dict.dz)")
    parser.add_argument("--languages", default="deu,fra,spa,ita,por,nld,swe,pol,fin,hun,ces,dan,rus")
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args()
    report = json.loads(Path(args.coverage).read_text())
    languages = args.languages.split(",")
    table = pivot_table(Path(args.dictd), languages)
    result = {
        "command": "python research/gap_scan.py --coverage C --dictd D --languages " + args.languages,
        "coverage": report["coverage"],
        "places": report["places"],
        "pivot_languages": languages,
        "pivot_heads": len(table),
        "pivot_pairs": sum(len(v) for v in table.values()),
        **scan(report["misses"], table),
    }
    result["at_most_if_every_lever_caught_every_case"] = round(
        report["coverage"] + result["counts"].get("any lever", 0) / report["places"], 3)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
