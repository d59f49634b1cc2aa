"""Did the upscale change the words? Compare the words read from an output with the guidance words.

Both sides are OCR results with normalised quads, so the guidance read from the small input lines
up with the text read from the large output. Each side is cut into words (a multi-word region is
split along its quad in proportion to its characters); words are normalised as in `metrics`
(lower case, no punctuation). A guidance word and an output word may be paired when their boxes
overlap (IoU of the axis-aligned boxes >= `min_overlap`), or, when either has no position (words
typed by hand), when their normalised edit distance is at most `max_text_distance`. Pairs are
taken greedily, closest text first, then largest overlap, each word used once:

- kept: paired with the same normalised word;
- changed: paired with a different word (the word at that place now reads differently);
- missing: a guidance word with no partner;
- invented: an output word with no partner.

Word precision/recall/F1 count kept words (`metrics.WordCounts`, so the figures follow the same
rules as `evaluate`, including F1 = 1 when neither side has words).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..errors import InvalidInputError
from .metrics import WordCounts, edit_distance, normalise_words
from ..types import Box, OcrResult, Quad, TextRegion

KEPT, CHANGED, MISSING, INVENTED = "kept", "changed", "missing", "invented"
DEFAULT_MIN_OVERLAP = 0.3
DEFAULT_MAX_TEXT_DISTANCE = 0.5


@dataclass(frozen=True)
class Word:
    """One normalised word and where it is (None when the position is unknown)."""

    text: str
    quad: Quad | None = None

    @property
    def box(self) -> Box | None:
        return TextRegion(self.text, 1.0, self.quad).box


@dataclass(frozen=True)
class WordOutcome:
    """What happened to one word: `expected` is None for invented words, `found` None for missing ones."""

    status: str
    expected: Word | None
    found: Word | None


@dataclass
class FidelityResult:
    """The outcome of every guidance word and every output word of one image."""

    outcomes: list[WordOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def counts(self) -> WordCounts:
        n_expected = sum(1 for o in self.outcomes if o.expected is not None)
        n_found = sum(1 for o in self.outcomes if o.found is not None)
        return WordCounts(tp=self.count(KEPT), n_pred=n_found, n_gt=n_expected)

    def changed_regions(self) -> OcrResult:
        """Quads of changed (both places), missing (guidance place) and invented (output place) words."""
        quads: list[Quad] = []
        for outcome in self.outcomes:
            if outcome.status == KEPT:
                continue
            for word in (outcome.expected, outcome.found):
                if word is not None and word.quad is not None:
                    quads.append(word.quad)
        return OcrResult(1, 1, tuple(TextRegion("", 1.0, q) for q in quads))


def _split_quad(quad: Quad, fractions: Sequence[tuple[float, float]]) -> list[Quad]:
    """Sub-quads between fractions (start, end) of the way along the quad's reading direction."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad

    def along(ax: float, ay: float, bx: float, by: float, t: float) -> tuple[float, float]:
        return (ax + (bx - ax) * t, ay + (by - ay) * t)

    parts = []
    for start, end in fractions:
        parts.append((along(x0, y0, x1, y1, start), along(x0, y0, x1, y1, end),
                      along(x3, y3, x2, y2, end), along(x3, y3, x2, y2, start)))
    return parts


def split_words(result: OcrResult) -> list[Word]:
    """The result's normalised words; a region holding several words is split along its quad."""
    words: list[Word] = []
    for region in result.regions:
        tokens = normalise_words(region.text)
        if not tokens:
            continue
        if region.quad is None or len(tokens) == 1:
            words.extend(Word(token, region.quad) for token in tokens)
            continue
        # each token owns its characters plus one space between tokens
        total = sum(len(t) for t in tokens) + len(tokens) - 1
        spans, position = [], 0
        for token in tokens:
            spans.append((position / total, (position + len(token)) / total))
            position += len(token) + 1
        words.extend(Word(token, quad) for token, quad in zip(tokens, _split_quad(region.quad, spans)))
    return words


def box_intersection(a: Box, b: Box) -> float:
    """Area shared by two (x0, y0, x1, y1) boxes (0 when they do not overlap)."""
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    return inter_w * inter_h if inter_w > 0 and inter_h > 0 else 0.0


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0 for empty boxes."""
    intersection = box_intersection(a, b)
    if intersection == 0.0:
        return 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if union > 0 else 0.0


def text_distance(a: str, b: str) -> float:
    """Edit distance divided by the longer word's length (0 = same word, 1 = nothing in common)."""
    longest = max(len(a), len(b))
    return edit_distance(a, b) / longest if longest else 0.0


def compare_words(
    expected: OcrResult,
    found: OcrResult,
    *,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
    max_text_distance: float = DEFAULT_MAX_TEXT_DISTANCE,
) -> FidelityResult:
    """Pair the guidance words (`expected`) with the words read from the output (`found`)."""
    if not 0.0 < min_overlap <= 1.0:
        raise InvalidInputError(f"min_overlap must be in (0, 1], got {min_overlap}")
    if not 0.0 <= max_text_distance <= 1.0:
        raise InvalidInputError(f"max_text_distance must be between 0 and 1, got {max_text_distance}")
    want, got = split_words(expected), split_words(found)
    candidates = []
    want_boxes, got_boxes = [w.box for w in want], [g.box for g in got]
    for i, w in enumerate(want):
        for j, g in enumerate(got):
            if want_boxes[i] is not None and got_boxes[j] is not None:
                overlap = box_iou(want_boxes[i], got_boxes[j])
                if overlap >= min_overlap:  # spelling is compared only for words at the same place
                    candidates.append((text_distance(w.text, g.text), -overlap, i, j))
            else:
                distance = text_distance(w.text, g.text)
                if distance <= max_text_distance:
                    candidates.append((distance, 0.0, i, j))
    candidates.sort()
    partner: dict[int, int] = {}
    used: set[int] = set()
    for distance, _, i, j in candidates:
        if i in partner or j in used:
            continue
        partner[i] = j
        used.add(j)
    outcomes = []
    for i, w in enumerate(want):
        if i not in partner:
            outcomes.append(WordOutcome(MISSING, w, None))
            continue
        g = got[partner[i]]
        outcomes.append(WordOutcome(KEPT if g.text == w.text else CHANGED, w, g))
    outcomes.extend(WordOutcome(INVENTED, None, g) for j, g in enumerate(got) if j not in used)
    return FidelityResult(outcomes)


def format_report(results: Sequence[FidelityResult]) -> str:
    """A readable summary: overall word F1, then each word's outcome, per image."""
    total = WordCounts()
    for result in results:
        total = total + result.counts
    lines = [f"word F1 {total.f1:.3f} (precision {total.precision:.3f}, recall {total.recall:.3f}; "
             f"{total.n_gt} guidance words, {total.n_pred} read from the output)"]
    for index, result in enumerate(results, start=1):
        counts = ", ".join(f"{result.count(s)} {s}" for s in (KEPT, CHANGED, MISSING, INVENTED))
        header = f"image {index} of {len(results)}: " if len(results) > 1 else ""
        lines.append(f"{header}F1 {result.counts.f1:.3f}: {counts}")
        for outcome in result.outcomes:
            if outcome.status == KEPT:
                lines.append(f'  "{outcome.expected.text}": kept')
            elif outcome.status == CHANGED:
                lines.append(f'  "{outcome.expected.text}": changed to "{outcome.found.text}"')
            elif outcome.status == MISSING:
                lines.append(f'  "{outcome.expected.text}": missing')
            else:
                lines.append(f'  "{outcome.found.text}": invented')
        if not result.outcomes:
            lines.append("  no words in the guidance or the output")
    return "\n".join(lines)
