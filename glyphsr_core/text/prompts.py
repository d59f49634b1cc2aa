"""The four prompts of GLYPH-SR: a scene pair and a text pair.

Scene prompt = caption + quality suffix. Text prompt = the OCR words with where they are, then the
caption, then a text-restoration suffix. Words come first because diffusers (headless, training)
truncates prompts at CLIP's 77 tokens: the authors' prompts put words last and most never reached
the UNet. ComfyUI encodes 77-token chunks instead of truncating, but SDXL's pooled embedding comes
from the first chunk only, and each chunk is encoded alone, so the words belong in the first. Words are deduplicated, capped
(`max_words`) and the ones left out are reported, so a user can see what the model was told.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ..errors import InvalidInputError
from ..types import OcrResult, TextRegion

DEFAULT_SCENE_SUFFIX = (
    "high quality photograph, highly detailed, sharp focus, natural colors, clean edges, "
    "realistic textures, ultra HD"
)
DEFAULT_SCENE_NEGATIVE = (
    "painting, oil painting, illustration, drawing, cartoon, CG style, 3D render, blurry, dirty, messy, "
    "worst quality, low quality, watermark, signature, jpeg artifacts, deformed, lowres, over-smooth"
)
DEFAULT_TEXT_SUFFIX = (
    "literal text restoration, ultra-sharp glyphs, preserve exact font shapes and spacing, "
    "crisp clean letter edges, correct spelling, high contrast lettering"
)
DEFAULT_TEXT_NEGATIVE = (
    "non-text shapes, halos, ringing, character misplacement, illegible segments, misspelled words, "
    "extra letters, missing letters, broken strokes, warped letters, blurry text, jpeg artifacts"
)

_GRID_ROWS = ("top", "middle", "bottom")
_GRID_COLS = ("left", "center", "right")


@dataclass(frozen=True)
class PromptTemplates:
    """The editable parts of the prompts (the ComfyUI node shows each as a text box)."""

    scene_suffix: str = DEFAULT_SCENE_SUFFIX
    scene_negative: str = DEFAULT_SCENE_NEGATIVE
    text_suffix: str = DEFAULT_TEXT_SUFFIX
    text_negative: str = DEFAULT_TEXT_NEGATIVE


@dataclass(frozen=True)
class PromptSet:
    scene_positive: str
    scene_negative: str
    text_positive: str
    text_negative: str
    words_used: tuple[str, ...] = field(default_factory=tuple)
    words_dropped: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """One line for logs and the node's UI: which words the text prompt carries."""
        if not self.words_used and not self.words_dropped:
            return "no text found: text prompts use the scene prompt plus the text suffix"
        line = f"{len(self.words_used)} word(s) in the text prompt"
        if self.words_dropped:
            line += f"; left out (max_words): {', '.join(self.words_dropped)}"
        return line


def location_phrase(region: TextRegion) -> str | None:
    """Where a word sits on a 3x3 grid: "top left", "top", ..., "center", ..., "bottom right"."""
    center = region.center
    if center is None:
        return None
    col = _GRID_COLS[min(2, max(0, int(center[0] * 3)))]
    row = _GRID_ROWS[min(2, max(0, int(center[1] * 3)))]
    if row == "middle" and col == "center":
        return "center"
    if row == "middle":
        return col
    if col == "center":
        return row
    return f"{row} {col}"


def quote_word(word: str, escape_weights: bool = False) -> str:
    """A word in double quotes, safe inside a prompt.

    The word keeps its exact characters (any script), NFC-normalised; inner double quotes become
    single quotes (so the quoting stays balanced) and whitespace is collapsed. With `escape_weights`
    (for ComfyUI's CLIP Text Encode), `(` and `)` become `\\(` and `\\)`: ComfyUI reads `(word:1.2)` as a
    weight and turns exactly these two escapes back into brackets, so CLIP then sees the same word as
    without escaping (the headless pipeline and training, whose diffusers tokenizer reads no weights).
    Nothing else is escaped: ComfyUI leaves `[`, `]` and `\\` as they are, so escaping them would
    change the word CLIP reads.
    """
    cleaned = re.sub(r"\s+", " ", unicodedata.normalize("NFC", word).replace('"', "'")).strip()
    if escape_weights:
        cleaned = re.sub(r"([()])", r"\\\1", cleaned)
    return f'"{cleaned}"'


def _join(*parts: str) -> str:
    return ", ".join(p.strip().strip(",").strip() for p in parts if p and p.strip().strip(","))


def _unique_regions(result: OcrResult | None) -> list[TextRegion]:
    if result is None:
        return []
    seen: set[str] = set()
    unique = []
    for region in result.regions:
        key = re.sub(r"\s+", " ", region.text).strip().casefold()
        if key and key not in seen:
            seen.add(key)
            unique.append(region)
    return unique


def words_phrase(regions: list[TextRegion], include_locations: bool = True, escape_weights: bool = False) -> str:
    """`the text "OPEN" at the top left, "24/7" at the center` (words in reading order)."""
    parts = []
    for region in regions:
        quoted = quote_word(region.text, escape_weights)
        where = location_phrase(region) if include_locations else None
        parts.append(f"{quoted} at the {where}" if where else quoted)
    return "the text " + ", ".join(parts) if parts else ""


def build_prompts(
    caption: str,
    result: OcrResult | None,
    *,
    templates: PromptTemplates = PromptTemplates(),
    max_words: int = 24,
    include_locations: bool = True,
    escape_weights: bool = False,
) -> PromptSet:
    """Scene and text prompt pairs for one image.

    With no words, the text prompt falls back to the scene prompt plus the text suffix, so the
    ping-pong sampler still alternates between two meaningful prompts.
    """
    if max_words < 0:
        raise InvalidInputError(f"max_words must be >= 0, got {max_words}")
    caption = (caption or "").strip()
    regions = _unique_regions(result)
    used, dropped = regions[:max_words], regions[max_words:]
    scene_positive = _join(caption, templates.scene_suffix)
    if used:
        text_positive = _join(words_phrase(used, include_locations, escape_weights), caption, templates.text_suffix)
    else:
        text_positive = _join(scene_positive, templates.text_suffix)
    return PromptSet(
        scene_positive=scene_positive,
        scene_negative=templates.scene_negative.strip(),
        text_positive=text_positive,
        text_negative=templates.text_negative.strip(),
        words_used=tuple(r.text for r in used),
        words_dropped=tuple(r.text for r in dropped),
    )
