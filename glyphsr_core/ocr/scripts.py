"""Which writing system a character or word belongs to (from Unicode names; no extra package).

CJK groups Han, kana and bopomofo (Japanese mixes kanji and kana in one word); Hangul is its own.
Digits, punctuation and symbols belong to no script.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Iterable

CJK = "CJK"
HANGUL = "Hangul"
LATIN = "Latin"
OTHER = "Other"
_NAMED_SCRIPTS = {
    "LATIN", "GREEK", "CYRILLIC", "ARMENIAN", "HEBREW", "ARABIC", "SYRIAC", "THAANA", "DEVANAGARI", "BENGALI",
    "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL", "TELUGU", "KANNADA", "MALAYALAM", "SINHALA", "THAI", "LAO",
    "TIBETAN", "MYANMAR", "GEORGIAN", "ETHIOPIC", "KHMER", "MONGOLIAN",
}


def char_script(ch: str) -> str | None:
    """"Latin", "Greek", "Cyrillic", "CJK", "Hangul", ... for a letter; None for anything else.

    Letters whose Unicode name names no script (ordinal indicators, modifier letters) are "Other".
    """
    if not unicodedata.category(ch).startswith("L"):
        return None
    name = unicodedata.name(ch, "")
    if name.startswith(("CJK ", "IDEOGRAPHIC ", "BOPOMOFO")) or "HIRAGANA" in name or "KATAKANA" in name:
        return CJK
    if "HANGUL" in name:
        return HANGUL
    words = name.split()
    if words and words[0] in ("FULLWIDTH", "HALFWIDTH") and len(words) > 1:
        words = words[1:]
    if words and words[0] in _NAMED_SCRIPTS:
        return words[0].capitalize()
    return OTHER


def word_scripts(text: str) -> Counter:
    """How many letters of each script `text` has."""
    return Counter(s for s in map(char_script, text) if s is not None)


def dominant_script(texts: Iterable[str]) -> str | None:
    """The script with the most letters over `texts` (None when they have no letters)."""
    total: Counter = Counter()
    for text in texts:
        total.update(word_scripts(text))
    return total.most_common(1)[0][0] if total else None


def is_cjk_word(text: str) -> bool:
    """CJK letters and nothing but digits besides (words of a script written without spaces)."""
    scripts = word_scripts(text)
    return bool(scripts) and set(scripts) == {CJK}
