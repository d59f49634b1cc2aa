"""OCR word hygiene: drop tokens that are not words worth guiding the text branch with.

A pictogram (a pedestrian, an arrow, a logo) is often read as a lone character of another script
("穴" on a Paris sign) or as punctuation, and a misread fragment as one low-confidence letter. Put
into the text prompt and drawn into the glyph map, such tokens ask the model to write text that is
not there. Policy "standard" drops, in this order:

- a token with no letter and no digit (isolated punctuation, arrows, pictogram symbols);
- a one-character token read with confidence below 0.8;
- a one-letter token of a non-Latin script (CJK, Hangul, Cyrillic ...) when the
  other words of its row (or, alone on its row, of the image) are mostly in another script and
  no word of two or more characters there is in its script. A lone Latin letter is kept: in CJK
  text it is usually a real label ("出口 B").

Policy "off" keeps every token. Dropped tokens are returned with their reason for reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..types import OcrResult, TextRegion
from .scripts import LATIN, char_script, dominant_script, word_scripts

WORD_FILTERS = ("standard", "off")
DEFAULT_WORD_FILTER = "standard"
#: one-character tokens read below this confidence are dropped by "standard"
SINGLE_CHAR_MIN_CONFIDENCE = 0.8


@dataclass(frozen=True)
class DroppedWord:
    """A token the word filter left out, and why."""

    region: TextRegion
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.region.to_dict(), "reason": self.reason}


def check_word_filter(policy: str) -> str:
    if policy not in WORD_FILTERS:
        raise ValueError(f"word_filter must be one of {', '.join(WORD_FILTERS)}; got {policy!r}")
    return policy


def _has_letter_or_digit(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _same_row(a: TextRegion, b: TextRegion) -> bool:
    box_a, box_b = a.box, b.box
    if box_a is None or box_b is None:
        return False
    center_a, center_b = (box_a[1] + box_a[3]) / 2, (box_b[1] + box_b[3]) / 2
    return box_b[1] <= center_a <= box_b[3] or box_a[1] <= center_b <= box_a[3]


def _lone_foreign(region: TextRegion, others: list[TextRegion]) -> str | None:
    text = region.text.strip()
    script = char_script(text) if len(text) == 1 else None
    if script is None or script == LATIN:
        return None
    row = [o for o in others if _same_row(region, o)]
    context = row if any(word_scripts(o.text) for o in row) else others
    dominant = dominant_script(o.text for o in context)
    # other lone characters of the same script (two pictograms) do not vouch for each other
    if dominant is None or dominant == script or any(
            script in word_scripts(o.text) and len(o.text.strip()) > 1 for o in context):
        return None
    return f"lone {script} character among {dominant} words"


def _reason(region: TextRegion, others: list[TextRegion]) -> str | None:
    text = region.text.strip()
    if not _has_letter_or_digit(text):
        return "symbols or punctuation only"
    if len(text) == 1 and region.confidence < SINGLE_CHAR_MIN_CONFIDENCE:
        return f"one character read with confidence {region.confidence:.2f} < {SINGLE_CHAR_MIN_CONFIDENCE}"
    return _lone_foreign(region, others)


def filter_words(result: OcrResult, policy: str = DEFAULT_WORD_FILTER) -> tuple[OcrResult, tuple[DroppedWord, ...]]:
    """The result without the tokens `policy` drops, and those tokens with their reasons."""
    if check_word_filter(policy) == "off":
        return result, ()
    regions = list(result.regions)
    kept: list[TextRegion] = []
    dropped: list[DroppedWord] = []
    for index, region in enumerate(regions):
        others = regions[:index] + regions[index + 1:]
        reason = _reason(region, others)
        if reason is None:
            kept.append(region)
        else:
            dropped.append(DroppedWord(region, reason))
    return OcrResult(result.width, result.height, tuple(kept)), tuple(dropped)
