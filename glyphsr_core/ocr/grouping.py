"""Words as a person reads them: letters of one printed word that OCR returned as separate tokens
are merged back into that word.

A printed word falls apart in three ways; each has its own evidence:

1. Inside one detected text line the recogniser reads the letters and the spaces between them.
   RapidOCR then cuts its reading into words at the spaces, but ALSO wherever two letters lie more
   than 5 recogniser columns apart (wide, italic or letter-spaced type: "MOBILE" came back as
   "M" + "OBILE", an italic "Mairie" as six one-letter words). A token the engine marks `attached`
   (read with no space before it) is joined to the token before it when one of the two has at most
   MAX_BROKEN_OFF characters (two long pieces are more often two words whose space the recogniser
   missed: "HOTEL" + "CENTRAL"). A space the recogniser read is
   kept, unless the two boxes touch or overlap (gap <= TOUCH_GAP x letter height): two characters
   closer than one character width have no space between them, whatever was decoded.
2. Letter-spaced type ("M a i r i e   d u"): the recogniser reads a space after every letter, or
   the detector boxes each letter alone. A run of MIN_SPACED_RUN or more one-letter tokens of an
   alphabetic script on one line of print is read the way a person reads it: by comparing each
   gap with the run's usual gap. A gap up to SPACED_FACTOR x the run's median gap (or below
   LETTER_GAP x letter height) joins letters into a word; a larger one, or one over
   SPACED_MAX_LETTER_GAP x letter height, starts a new word. A run of evenly spaced single letters
   ("A B C") is therefore read as one word: on signs that is far more often letter-spaced type.
3. Otherwise, between tokens of different detected lines (the detector boxed a letter alone),
   spacing decides: tokens on one line of print (reading directions within MAX_ANGLE_DEG,
   overlapping by at least MIN_ROW_OVERLAP of the smaller height across the reading direction)
   join when one of them is a single character and the gap along the line is below LETTER_GAP x
   letter height (the taller box's height). Two multi-letter tokens in separate boxes stay apart.

Never joined: CJK with non-CJK tokens ("出口" and "B" are two labels; runs of CJK characters are
joined by the engine already), tokens without a letter or digit (except as read, attached), and
tokens of different lines of print (stacked lines, vertical text, lines at different angles).

A merged word's confidence is the minimum of its parts: it is only as sure as its least sure
letter, and confidence thresholds downstream (the word filter, the fidelity check) keep their
meaning. Its quad is the union of the parts' quads in the line's frame (for horizontal text: the
union of the boxes; for rotated text: the rotated rectangle around both).
"""

from __future__ import annotations

import math
from statistics import median
from typing import Sequence

import numpy as np

from .engine import DetectedWord
from .scripts import CJK, HANGUL, char_script, word_scripts

#: separate boxes on one line of print join when their gap is below this many letter heights
LETTER_GAP = 0.3
#: pieces read with no space between them join when one has at most this many characters: a word
#: cut at a wide letter gap loses a letter or two ("M" + "OBILE", "CH" + "MA"); two long pieces are
#: more often two words whose space the recogniser missed ("HOTEL" + "CENTRAL")
MAX_BROKEN_OFF = 2
#: a recognised space between boxes this close (or overlapping) is not a word break
TOUCH_GAP = 0.02
#: this many one-letter tokens in a row on one line of print are letter-spaced type
MIN_SPACED_RUN = 3
#: in letter-spaced type, a gap up to this multiple of the run's median gap is inside a word
SPACED_FACTOR = 2.0
#: ... but a gap of more than this many letter heights is always a word break
SPACED_MAX_LETTER_GAP = 1.0
#: one-letter tokens further apart than this many letter heights are not one run
SPACED_MAX_GAP = 2.5
#: boxes of different detected lines overlapping by less than this share of the smaller height
#: across the reading direction are on different lines of print
MIN_ROW_OVERLAP = 0.5
#: multi-letter tokens whose reading directions differ by more than this are on different lines
MAX_ANGLE_DEG = 15.0
#: boxes overlapping by more than this many letter heights along the line are not neighbours
MAX_OVERLAP = 1.0


def _frame(word: DetectedWord) -> tuple[np.ndarray, np.ndarray]:
    """Unit reading direction (top edge, left to right) and its normal (pointing down the letters)."""
    quad = np.asarray(word.quad, dtype=np.float64)
    top = quad[1] - quad[0]
    length = float(np.hypot(*top))
    u = top / length if length > 1e-9 else np.array([1.0, 0.0])
    return u, np.array([-u[1], u[0]])


def _line_frame(left: DetectedWord, right: DetectedWord) -> tuple[np.ndarray, np.ndarray]:
    """The frame of the longer token: a lone letter's box says little about the line's direction."""
    return _frame(right if len(right.text) > len(left.text) else left)


def _extent(word: DetectedWord, axis: np.ndarray) -> tuple[float, float]:
    values = np.asarray(word.quad, dtype=np.float64) @ axis
    return float(values.min()), float(values.max())


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b)))))


def _is_cjk(text: str) -> bool:
    return CJK in word_scripts(text)


def _has_letter_or_digit(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _spaced_letter(word: DetectedWord) -> bool:
    """A one-letter token of a script written with spaces between words (not CJK, not Hangul)."""
    return len(word.text) == 1 and char_script(word.text) not in (None, CJK, HANGUL)


def spacing(left: DetectedWord, right: DetectedWord) -> tuple[float, float] | None:
    """(gap along the line, letter height) between two tokens in reading order, in the line's
    frame; None when they are not on one line of print (different angles, or across-line overlap
    below MIN_ROW_OVERLAP for tokens of different detected lines)."""
    u, n = _line_frame(left, right)
    if min(len(left.text), len(right.text)) > 1 and _angle_between(_frame(left)[0], _frame(right)[0]) > MAX_ANGLE_DEG:
        return None
    (_, left_end), (right_start, _) = _extent(left, u), _extent(right, u)
    (la, lb), (ra, rb) = _extent(left, n), _extent(right, n)
    height = max(lb - la, rb - ra, 1e-9)
    overlap = (min(lb, rb) - max(la, ra)) / max(min(lb - la, rb - ra), 1e-9)
    gap = right_start - left_end
    if left.line != right.line and (overlap < MIN_ROW_OVERLAP or gap < -MAX_OVERLAP * height):
        return None
    return gap, height


def joins(left: DetectedWord, right: DetectedWord) -> bool:
    """Whether `right` continues the word `left` ends with (rules 1 and 3 of the module)."""
    if _is_cjk(left.text) != _is_cjk(right.text):
        return False
    if left.line == right.line and right.attached and min(len(left.text), len(right.text)) <= MAX_BROKEN_OFF:
        return True  # the recogniser read no space between them
    measured = spacing(left, right)
    if measured is None or not (_has_letter_or_digit(left.text) and _has_letter_or_digit(right.text)):
        return False
    gap, height = measured
    if left.line == right.line:
        return gap <= TOUCH_GAP * height
    return min(len(left.text), len(right.text)) == 1 and gap < LETTER_GAP * height


def _spaced_runs(words: Sequence[DetectedWord]) -> list[list[tuple[int, float]]]:
    """Runs of one-letter tokens on one line of print: each a list of (index, gap / letter height
    to the previous letter), the first entry's gap unused."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for index, word in enumerate(words):
        previous = words[index - 1] if index else None
        measured = spacing(previous, word) if previous is not None and _spaced_letter(previous) else None
        if _spaced_letter(word) and measured is not None and measured[0] < SPACED_MAX_GAP * measured[1]:
            current.append((index, measured[0] / measured[1]))
            continue
        if len(current) >= MIN_SPACED_RUN:
            runs.append(current)
        current = [(index, 0.0)] if _spaced_letter(word) else []
    if len(current) >= MIN_SPACED_RUN:
        runs.append(current)
    return runs


def spaced_run_joins(words: Sequence[DetectedWord]) -> dict[int, bool]:
    """For tokens inside letter-spaced runs (rule 2): index -> whether it joins the token before it."""
    decisions: dict[int, bool] = {}
    for run in _spaced_runs(words):
        gaps = [gap for _, gap in run[1:]]
        limit = min(max(SPACED_FACTOR * median(gaps), LETTER_GAP), SPACED_MAX_LETTER_GAP)
        for index, gap in run[1:]:
            same_line = words[index].line == words[index - 1].line
            decisions[index] = (same_line and words[index].attached) or gap <= limit
    return decisions


def merge(left: DetectedWord, right: DetectedWord) -> DetectedWord:
    """One word from two: texts concatenated, the lower confidence, the quad covering both."""
    u, n = _line_frame(left, right)
    points = np.asarray(list(left.quad) + list(right.quad), dtype=np.float64)
    along, across = points @ u, points @ n
    corners = [(along.min(), across.min()), (along.max(), across.min()),
               (along.max(), across.max()), (along.min(), across.max())]
    quad = [(float(a * u[0] + c * n[0]), float(a * u[1] + c * n[1])) for a, c in corners]
    # the next token continues `right`'s line; `attached` still says how `left` follows what came before
    return DetectedWord(left.text + right.text, min(left.confidence, right.confidence), quad, right.line,
                        left.attached)


def group_letters(words: Sequence[DetectedWord]) -> list[DetectedWord]:
    """`words` (in reading order) with the letters of each printed word merged into one word."""
    spaced = spaced_run_joins(words)
    grouped: list[DetectedWord] = []
    for index, word in enumerate(words):
        join = spaced.get(index)
        if join is None:
            join = bool(grouped) and joins(grouped[-1], word)
        if join and grouped:
            grouped[-1] = merge(grouped[-1], word)
        else:
            grouped.append(word)
    return grouped
