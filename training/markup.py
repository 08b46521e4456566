"""Scoring restorations of real spun text annotated as markup.

Markup is the spun text with every place the spinner changed written ``[[spun||original|alt...]]``
(list the spun wording among the alternatives where it may stay):

    >>> markup = "Rubio [[mentioned||said]] it [[in a single day||overnight]]."
    >>> spun_text(markup)
    'Rubio mentioned it in a single day.'
    >>> r = score(markup, "Rubio said it in one day.")
    >>> r["restored"], r["slots_to_restore"], r["wrongful_edits"]
    (1, 2, 0)

A place counts as restored when the output there is one of its alternatives; a wrongful edit is
a token outside every place that the output changed, dropped or added (the measure of the
evaluation set's own ``score.py``, which this reimplements so the package needs nothing outside
itself). ``evaluate_markup`` restores every file once and scores it at each confidence threshold;
it restores the file's original too (``original_text``: clean text, where every edit is wrong),
so that clean text is measured wherever spun text is.

This module is the one parser of the format: ``parse_markup`` gives each line's plain text and
places (what ``training.coverage`` walks), ``SLOT`` and ``fold`` are shared with it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from .errors import CorpusError, DatasetError

SLOT = re.compile(r"\[\[(.*?)\|\|(.*?)\]\]", re.S)
TOKEN = re.compile(r"\w+(?:[’']\w+)*|[^\w\s]")
WIDEST_SLOT = 10  # most output tokens one place may take


def spun_text(markup: str) -> str:
    """The text a system is given to restore: every place written as its spun wording."""
    return SLOT.sub(r"\1", markup)


def original_text(markup: str) -> str:
    """The clean text behind the markup: every place written as its first alternative, the
    original wording (``[[mentioned||said|stated]]`` -> ``said``). Text no spinner touched: a
    faithful restorer leaves it as it is.

        >>> original_text("Rubio [[mentioned||said|stated]] it.")
        'Rubio said it.'
    """
    return SLOT.sub(lambda m: m.group(2).split("|")[0].strip(), markup)


def fold(token: str) -> str:
    """Case and apostrophe folded: ``"Doesn’t"`` -> ``"doesn't"``."""
    return token.lower().replace("’", "'")


@dataclasses.dataclass
class MarkupLine:
    """A markup line as segments: plain strings and ``(spun, alternatives)`` places."""

    segments: list

    def text(self, pick) -> tuple[str, list[tuple[int, int]]]:
        """The line with each place rendered by ``pick(k, spun, alts)``, and each place's span."""
        out, spans, at, k = [], [], 0, 0
        for seg in self.segments:
            if isinstance(seg, str):
                out.append(seg)
                at += len(seg)
                continue
            piece = pick(k, *seg)
            spans.append((at, at + len(piece)))
            out.append(piece)
            at += len(piece)
            k += 1
        return "".join(out), spans


def parse_markup(text: str, name: str = "<markup>") -> list[MarkupLine]:
    """Split markup into lines of plain text and places; a malformed place names file and line."""
    lines = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        segments, pos = [], 0
        for m in SLOT.finditer(raw):
            segments.append(raw[pos : m.start()])
            segments.append((m.group(1), [a.strip() for a in m.group(2).split("|")]))
            pos = m.end()
        rest = raw[pos:]
        if "[[" in rest or "]]" in rest:
            raise CorpusError(f"{name}:{lineno}: unclosed or malformed [[spun||original]] slot")
        segments.append(rest)
        lines.append(MarkupLine(segments))
    return lines


def _norm(text: str) -> str:
    return " ".join(fold(t) for t in TOKEN.findall(text.replace("’", "'")))


def _units(markup: str) -> list[tuple]:
    """The markup as units: ``("tok", token)`` outside places, ``("slot", spun, alts)`` for a place
    (``alts`` are normalised and include the spun wording, which the alignment may leave)."""
    units, pos = [], 0
    for m in SLOT.finditer(markup):
        units += [("tok", fold(t)) for t in TOKEN.findall(markup[pos : m.start()])]
        alts = tuple(a.strip() for a in m.group(2).split("|"))
        units.append(("slot", m.group(1), alts))
        pos = m.end()
    units += [("tok", fold(t)) for t in TOKEN.findall(markup[pos:])]
    return units


def _align(units: list[tuple], out: list[str]) -> list[tuple[int, int, int, int]]:
    """Cheapest alignment of output tokens to units, as steps ``(u0, j0, u1, j1)``: unit
    ``units[u0]`` (none when ``u1 == u0``) took ``out[j0:j1]``. A token costs 0 kept, 1 changed,
    dropped or added; a place takes any run of up to ``WIDEST_SLOT`` tokens, free when the run is
    its spun wording or an alternative, else 0.5."""
    inf = float("inf")
    n, m = len(units), len(out)
    accepted = [{_norm(a) for a in u[2]} | {_norm(u[1])} if u[0] == "slot" else None for u in units]
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for u in range(n + 1):
        for j in range(m + 1):
            c = cost[u][j]
            if c == inf:
                continue
            if j < m and c + 1 < cost[u][j + 1]:  # an added output token
                cost[u][j + 1], back[u][j + 1] = c + 1, (u, j)
            if u == n:
                continue
            if units[u][0] == "tok":
                steps = [(1, 0.0 if out[j] == units[u][1] else 1.0)] if j < m else []
                steps.append((0, 1.0))  # the token dropped
            else:
                steps = [(k, 0.0 if " ".join(out[j : j + k]) in accepted[u] else 0.5)
                         for k in range(min(WIDEST_SLOT, m - j) + 1)]
            for k, step in steps:
                if c + step < cost[u + 1][j + k]:
                    cost[u + 1][j + k], back[u + 1][j + k] = c + step, (u, j)
    path, u, j = [], n, m
    while (u, j) != (0, 0):
        pu, pj = back[u][j]
        path.append((pu, pj, u, j))
        u, j = pu, pj
    return path[::-1]


def score(markup: str, output: str) -> dict:
    """Places restored and wrongful edits of ``output`` against one markup text."""
    units = _units(markup)
    out = TOKEN.findall(output)
    out_n = [fold(t) for t in out]
    need = restored = ambiguous = ambiguous_ok = 0
    misses, wrongful = [], []
    for pu, pj, u, j in _align(units, out_n):
        if u == pu:
            wrongful.append(f"added {out[pj]!r}")
            continue
        got = " ".join(out_n[pj:j])
        if units[pu][0] == "tok":
            if got != units[pu][1]:
                wrongful.append(f"{units[pu][1]!r} -> {got!r}")
            continue
        _, spun, alts = units[pu]
        accepted = {_norm(a) for a in alts}
        if _norm(spun) in accepted:
            ambiguous += 1
            ambiguous_ok += got in accepted
            continue
        need += 1
        restored += got in accepted
        if got not in accepted:
            misses.append(f"{spun!r} -> {' '.join(out[pj:j])!r} (want {' | '.join(alts)})")
    return {"slots_to_restore": need, "restored": restored, "ambiguous_slots": ambiguous,
            "ambiguous_ok": ambiguous_ok, "wrongful_edits": len(wrongful), "misses": misses, "wrongful": wrongful}


def score_text(markup: str, output: str) -> dict:
    """``score`` line by line where the output kept the markup's lines, else as one text; adds
    ``words`` (whitespace-separated words of the spun text) and ``recall``."""
    m_lines, o_lines = markup.rstrip("\n").split("\n"), output.rstrip("\n").split("\n")
    pairs = list(zip(m_lines, o_lines)) if len(m_lines) == len(o_lines) else [(markup, output)]
    total: dict = {}
    for m, o in pairs:
        for key, value in score(m, o).items():
            total[key] = total.get(key, 0 if not isinstance(value, list) else []) + value
    total["words"] = len(spun_text(markup).split())
    total["recall"] = total["restored"] / max(total["slots_to_restore"], 1)
    return total


def markup_files(paths: list[str | Path]) -> list[Path]:
    """The ``.markup`` files named, or found directly in the folders named, sorted."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(path.glob("*.markup"))
        elif path.is_file():
            files.append(path)
        else:
            raise DatasetError(f"{path} does not exist; give .markup files or folders holding them")
    if not files:
        raise DatasetError(f"no .markup files in {', '.join(map(str, paths))}")
    return files


def clean_passages(paths: list[str | Path]) -> dict[str, str]:
    """Clean text to measure beside markup: ``{"FILE:LINE": passage}``, one passage a non-blank line."""
    passages = {}
    for path in map(Path, paths):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read clean text {path} as UTF-8 ({exc}); give a text file, one passage a line") from exc
        passages.update((f"{path.name}:{n}", line.strip()) for n, line in enumerate(lines, 1) if line.strip())
    if paths and not passages:
        raise DatasetError(f"no text in {', '.join(map(str, paths))}; give a text file, one passage a line")
    return passages


def read_markup(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path} as UTF-8 text ({exc})") from exc
    if not SLOT.search(text):
        raise DatasetError(f"{path} has no [[spun||original]] places; it is not a markup file")
    return text


THRESHOLDS = (0.0, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.85, 0.9, 0.92, 0.95, 0.97)


def evaluate_markup(files: list[Path], restorer, thresholds=THRESHOLDS, clean: dict[str, str] | None = None) -> dict:
    """Restore every file's spun text and its original (``original_text``) once (every edit
    kept) and score them at each confidence threshold: ``{"files": {name: {threshold: scores}},
    "curve": [{threshold, recall, wrongful_per_100_words, clean_edits_per_100_words, ...}],
    "clean_edits": [{file, original, replacement, confidence}]}``. An edit of an original is an
    edit of clean text, wrong whatever it writes; ``clean`` (``{name: text}``, held-out clean
    text) adds ``heldout_clean_edits_per_100_words`` to the curve."""
    shipped = getattr(getattr(restorer, "config", None), "min_confidence", None)
    thresholds = sorted({*thresholds, *([shipped] if shipped is not None else [])})
    texts = {f.name: read_markup(f) for f in files}
    restorations = restorer.restore_many([spun_text(t) for t in texts.values()], min_confidence=0.0)
    originals = {name: original_text(t) for name, t in texts.items()}
    clean_runs = restorer.restore_many(list(originals.values()), min_confidence=0.0)
    heldout = dict(clean or {})
    heldout_runs = restorer.restore_many(list(heldout.values()), min_confidence=0.0) if heldout else []
    per_file: dict[str, dict] = {name: {} for name in texts}
    curve = []
    for threshold in thresholds:
        sums = {"slots_to_restore": 0, "restored": 0, "wrongful_edits": 0, "words": 0, "edits": 0,
                "clean_edits": 0, "clean_words": 0}
        for (name, markup), r, c in zip(texts.items(), restorations, clean_runs):
            result = _scored(markup, r, threshold)
            result["clean_edits"] = sum(e.confidence >= threshold for e in c.edits)
            result["clean_words"] = len(originals[name].split())
            per_file[name][threshold] = result
            for key in sums:
                sums[key] += result[key]
        row = {"min_confidence": threshold, **sums,
               "recall": sums["restored"] / max(sums["slots_to_restore"], 1),
               "wrongful_per_100_words": 100 * sums["wrongful_edits"] / max(sums["words"], 1),
               "clean_edits_per_100_words": 100 * sums["clean_edits"] / max(sums["clean_words"], 1)}
        if heldout:
            row["heldout_clean_edits"] = sum(e.confidence >= threshold for r in heldout_runs for e in r.edits)
            row["heldout_clean_words"] = sum(len(t.split()) for t in heldout.values())
            row["heldout_clean_edits_per_100_words"] = 100 * row["heldout_clean_edits"] / max(row["heldout_clean_words"], 1)
        curve.append(row)
    clean_edits = [{"file": name, "original": e.original, "replacement": e.replacement, "confidence": e.confidence}
                   for name, r in [*zip(originals, clean_runs), *zip(heldout, heldout_runs)] for e in r.edits]
    return {"files": per_file, "curve": curve, "clean_edits": clean_edits}


def _scored(markup: str, restoration, threshold: float) -> dict:
    """``score_text`` of the restoration keeping the edits at or above ``threshold``, with ``edits``."""
    from rewrite.edits import apply_edits

    kept = [e for e in restoration.edits if e.confidence >= threshold]
    result = score_text(markup, apply_edits(spun_text(markup), kept))
    result["edits"] = len(kept)
    return result


MAX_WRONGFUL = 1.0  # wrongful edits per 100 words of spun text the shipped threshold allows
MAX_CLEAN = 0.5  # edits per 100 words of clean text (the files' originals) it allows


def choose_threshold(result: dict, max_wrongful: float = MAX_WRONGFUL, max_clean: float = MAX_CLEAN,
                     quantile: float = 0.95, rounds: int = 2000, seed: int = 0) -> dict | None:
    """The shipped threshold, chosen on annotated real text: the lowest ``min_confidence`` of the
    curve whose wrongful edits per 100 words of spun text stay within ``max_wrongful`` and whose
    edits per 100 words of the files' originals (clean text, where every edit is wrong) stay
    within ``max_clean``, both at the ``quantile`` of a bootstrap over files (files drawn with
    replacement, ``rounds`` times), so that a threshold that only just fits on these files is not
    taken. A result without clean figures is bounded by wrongful edits alone. ``None`` when no
    threshold fits."""
    import random

    files = result["files"]
    names = sorted(files)
    rng = random.Random(seed)
    draws = [[rng.choice(names) for _ in names] for _ in range(rounds)]

    def high(threshold, edits: str, words: str) -> float:
        """The ``quantile`` point of the bootstrap's rates per 100 words."""
        rates = sorted(100 * sum(files[n][threshold][edits] for n in sample)
                       / max(sum(files[n][threshold][words] for n in sample), 1) for sample in draws)
        return rates[min(int(quantile * rounds), rounds - 1)]

    p = round(quantile * 100)
    for row in sorted(result["curve"], key=lambda r: r["min_confidence"]):
        threshold = row["min_confidence"]
        wrongful = high(threshold, "wrongful_edits", "words")
        with_clean = all("clean_edits" in files[n][threshold] for n in names)
        clean = high(threshold, "clean_edits", "clean_words") if with_clean else None
        if wrongful <= max_wrongful and (clean is None or clean <= max_clean):
            chosen = {"min_confidence": threshold, "recall": row["recall"],
                      "wrongful_per_100_words": row["wrongful_per_100_words"],
                      f"wrongful_per_100_words_p{p}": round(wrongful, 3)}
            rule = f"lowest min_confidence whose wrongful edits per 100 words stay <= {max_wrongful}"
            if clean is not None:
                chosen["clean_edits_per_100_words"] = row["clean_edits_per_100_words"]
                chosen[f"clean_edits_per_100_words_p{p}"] = round(clean, 3)
                rule += f" and whose edits per 100 words of the files' originals stay <= {max_clean}"
            chosen["rule"] = rule + f" at the {quantile:.0%} point of a {rounds}-round bootstrap over files (seed {seed})"
            return chosen
    return None


def format_curve(result: dict) -> str:
    """The curve as a Markdown table; ``clean /100 words`` are edits of the files' originals (and
    ``held-out clean``, of the ``--clean`` text) where those were measured."""
    rows = result["curve"]
    clean = bool(rows) and all("clean_edits_per_100_words" in r for r in rows)
    heldout = bool(rows) and all("heldout_clean_edits_per_100_words" in r for r in rows)
    head = "| min_confidence | recall | wrongful /100 words | restored | places | wrongful | edits |"
    rule = "|---:|---:|---:|---:|---:|---:|---:|"
    if clean:
        head, rule = head + " clean edits /100 words |", rule + "---:|"
    if heldout:
        head, rule = head + " held-out clean edits /100 words |", rule + "---:|"
    lines = [head, rule]
    for row in rows:
        line = (f"| {row['min_confidence']:.2f} | {row['recall']:.3f} | {row['wrongful_per_100_words']:.2f} | "
                f"{row['restored']} | {row['slots_to_restore']} | {row['wrongful_edits']} | {row['edits']} |")
        if clean:
            line += f" {row['clean_edits_per_100_words']:.2f} |"
        if heldout:
            line += f" {row['heldout_clean_edits_per_100_words']:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def format_report(result: dict, chosen: dict | None, title: str) -> str:
    """What ``unspin evaluate --markup`` prints for one system: ``title``, the curve, and the
    threshold ``choose_threshold`` chose (``chosen``)."""
    pick = f"{chosen['min_confidence']} (recall {chosen['recall']:.3f})" if chosen else "none fits"
    return "\n".join([title, format_curve(result),
                      f"threshold for <= {MAX_WRONGFUL} wrongful edits per 100 words and <= {MAX_CLEAN} edits per 100 "
                      f"words of the originals (95% bootstrap over files): {pick}"])
