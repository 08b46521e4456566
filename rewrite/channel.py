"""The inverse channel as a compact table: a spun wording -> the originals it may stand for.

A spinner swaps a common wording for a synonym; read backwards, a synonym dictionary lists what a
spun wording may have been. The table ships with a model (``channel.tsv.gz``), built by
``unspin fit-detector`` from the builder's lexicons (read backwards, inflections included) and
from counts of real spinners' swaps in annotated spun text:

    spun<TAB>original<TAB>lexicon_support<TAB>real_count<TAB>rank

``spun`` and ``original`` are lower-cased tokens joined by one space; ``lexicon_support`` is how
many lexicon sources list the pair, ``real_count`` how often annotated real spun text showed it,
``rank`` the original's commonness (0: the most common corpus word; a phrase counts as its rarest
word). A spun wording's rows are best first.

    >>> table = ChannelTable.load(Path("rewrite/models/default/channel.tsv.gz"))
    >>> [c.original for c in table.candidates("mentioned")][:2]
    ['said', 'noted']
"""

from __future__ import annotations

import dataclasses
import gzip
import math
from pathlib import Path

from .errors import ModelError

FILE = "channel.tsv.gz"
HEADER = "#unspin-channel 1"


@dataclasses.dataclass(frozen=True, slots=True)  # slots: the table holds ~670k of them
class Candidate:
    """One original a spun wording may stand for, with the channel's evidence for it."""

    original: str
    support: int  # lexicon sources listing the pair
    real: int  # times annotated real spun text showed the pair
    rank: int  # commonness of the original (0: most common)

    def features(self) -> list[float]:
        """``[log1p(support), log1p(real), log1p(rank)]``: the channel's part of a candidate's score."""
        return [math.log1p(self.support), math.log1p(self.real), math.log1p(self.rank)]


class ChannelTable:
    """``candidates(spun)``: the originals of a lower-cased spun wording, best first."""

    def __init__(self, rows: dict[str, list[Candidate]], longest: int):
        self.rows = rows
        self.longest = longest  # most tokens in a spun wording

    @classmethod
    def load(cls, path: str | Path) -> "ChannelTable":
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path} is missing; rebuild the channel with `unspin fit-detector`")
        rows: dict[str, list[Candidate]] = {}
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                if f.readline().rstrip("\n") != HEADER:
                    raise ModelError(f"{path} is not an unspin channel table (first line {HEADER!r})")
                for line in f:
                    spun, original, support, real, rank = line.rstrip("\n").split("\t")
                    rows.setdefault(spun, []).append(Candidate(original, int(support), int(real), int(rank)))
        except (OSError, ValueError, EOFError) as exc:
            raise ModelError(f"cannot read {path} ({exc}); rebuild the channel with `unspin fit-detector`") from exc
        longest = max((k.count(" ") + 1 for k in rows), default=1)
        return cls(rows, longest)

    def candidates(self, spun: str) -> list[Candidate]:
        return self.rows.get(spun, [])

    def write(self, path: str | Path) -> None:
        """Write the table (``rows`` in their order) as ``channel.tsv.gz``."""
        path = Path(path)
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
            f.write(HEADER + "\n")
            for spun in sorted(self.rows):
                for c in self.rows[spun]:
                    f.write(f"{spun}\t{c.original}\t{c.support}\t{c.real}\t{c.rank}\n")
