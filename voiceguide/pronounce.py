"""Apply the content lexicon to text before it is spoken.

Replacement is by whole word, case-insensitively, longest entry first, and
never inside another word: ``MEC`` changes, ``mechanism`` does not; ``G-CSF`` is
one word, so the entry for ``csf`` does not touch it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from .content import LexiconEntry

__all__ = ["apply"]


@lru_cache(maxsize=16)
def _pattern(words: tuple[str, ...]) -> re.Pattern | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    # a word boundary that also treats hyphens and digits as part of a word
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


def apply(text: str, lexicon: Sequence[LexiconEntry], *, espeak: bool = False) -> str:
    """``text`` with every lexicon word replaced by how to say it."""
    if not lexicon:
        return text
    table = {e.word.lower(): (f"[[{e.espeak}]]" if espeak and e.espeak else e.say) for e in lexicon}
    pattern = _pattern(tuple(table))
    return pattern.sub(lambda m: table[m.group(0).lower()], text)
