"""Read the words of an image: word boxes in reading order, normalised to the input image.

`read_text` is the one entry point the nodes, the CLI, the evaluation and the fidelity check use,
so they all see the same text for the same pixels.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import InvalidInputError
from ..imageops import to_rgb_uint8
from ..types import OcrResult, TextRegion
from .engine import DetectedWord, OcrEngine, OcrUnavailableError
from .grouping import group_letters as _group_letters
from .huge import read_huge
from .hygiene import DEFAULT_WORD_FILTER, WORD_FILTERS, DroppedWord, filter_words
from .reading import reading_order

__all__ = ["DEFAULT_WORD_FILTER", "HUGE_PIXELS", "OCR_SCALES", "WORD_FILTERS", "DetectedWord", "DroppedWord", "OcrEngine",
           "OcrUnavailableError", "filter_words", "get_engine", "read_text", "resolve_ocr_scale"]

OCR_SCALES = ("auto", "1", "2", "3", "4")
#: `auto` enlarges images whose longer side is below this, so small glyphs reach the recogniser
#: with enough pixels (RapidOCR's recogniser sees 48 px tall crops of the input).
AUTO_TARGET_SIDE = 1024
AUTO_MAX_FACTOR = 4.0
#: images with more pixels than this are read the huge-image way (`ocr.huge`): no whole-image copies
HUGE_PIXELS = 40_000_000
#: images smaller than this on a side hold no readable word
MIN_READABLE_SIDE = 4

_engine: OcrEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> OcrEngine:
    """The shared OCR engine, created on first use (loading ONNX sessions takes ~1 s)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from .rapid import RapidOcrEngine

            _engine = RapidOcrEngine()
        return _engine


def resolve_ocr_scale(ocr_scale: str | float, width: int, height: int) -> float:
    """The factor the image is enlarged by before OCR (`auto` depends on the image size)."""
    if isinstance(ocr_scale, str):
        if ocr_scale == "auto":
            longest = max(width, height)
            if longest >= AUTO_TARGET_SIDE:
                return 1.0
            return min(AUTO_MAX_FACTOR, AUTO_TARGET_SIDE / longest)
        try:
            ocr_scale = float(ocr_scale)
        except ValueError as exc:
            raise InvalidInputError(f"ocr_scale must be 'auto' or a number from 1 to 8, got {ocr_scale!r}") from exc
    if not 1.0 <= float(ocr_scale) <= 8.0:
        raise InvalidInputError(f"ocr_scale must be between 1 and 8, got {ocr_scale}")
    return float(ocr_scale)


def read_text(
    image: Image.Image | np.ndarray,
    *,
    min_confidence: float = 0.5,
    ocr_scale: str | float = "auto",
    engine: OcrEngine | None = None,
    group_letters: bool = True,
    huge_pixels: int = HUGE_PIXELS,
) -> OcrResult:
    """OCR one image into words with normalised quads, in reading order; text NFC-normalised.

    `image` is a PIL image or an HxW / HxWxC array (uint8, or float in 0..1; RGBA is composited
    over white). Images too small to hold text give an empty result rather than an error.
    `group_letters` merges letters of one printed word that the engine returned as separate
    tokens (`grouping`); False gives the engine's tokens as they came.

    Above `huge_pixels` (a x4 of a photo) the image is never copied whole: lines are found on a
    reduced copy and read from full-resolution crops (`ocr.huge`); the words keep full-resolution boxes.
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise InvalidInputError(f"min_confidence must be between 0 and 1, got {min_confidence}")
    width, height = image.size if isinstance(image, Image.Image) else (image.shape[1], image.shape[0])
    if width * height > huge_pixels and min(width, height) >= MIN_READABLE_SIDE:
        factor = resolve_ocr_scale(ocr_scale, width, height)
        words = reading_order(read_huge(image, width, height, engine or get_engine(), min_confidence, enlarge=factor))
        if group_letters:
            words = _group_letters(words)
        return OcrResult(width, height, tuple(_normalised(word, width, height) for word in words))
    rgb = to_rgb_uint8(np.asarray(image.convert("RGBA") if isinstance(image, Image.Image) else image))
    height, width = rgb.shape[:2]
    if min(width, height) < MIN_READABLE_SIDE:
        return OcrResult(width, height, ())
    factor = resolve_ocr_scale(ocr_scale, width, height)
    if factor > 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
    engine = engine or get_engine()
    words = engine.detect_words(rgb, min_confidence)
    scaled_h, scaled_w = rgb.shape[:2]
    words = reading_order(words)
    if group_letters:
        words = _group_letters(words)
    regions = [_normalised(word, scaled_w, scaled_h) for word in words]
    return OcrResult(width, height, tuple(regions))


def _normalised(word: DetectedWord, width: int, height: int) -> TextRegion:
    quad = tuple((min(1.0, max(0.0, x / width)), min(1.0, max(0.0, y / height))) for x, y in word.quad)
    return TextRegion(text=word.text, confidence=word.confidence, quad=quad)  # type: ignore[arg-type]
