"""What an OCR back-end must provide: words with pixel quads, read from an RGB image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..errors import GlyphSRInputError


class OcrUnavailableError(GlyphSRInputError, RuntimeError):
    """The OCR back-end's packages are not installed."""


@dataclass(frozen=True)
class DetectedWord:
    """One word as an engine reports it, in pixels of the image the engine was given.

    `line` groups words that the engine read as one text line (used for reading order).
    `attached` is True when the engine read this word straight after the previous word of its line,
    with no space between: it cut one printed word into two (see `grouping`).
    """

    text: str
    confidence: float
    quad: Sequence[tuple[float, float]]
    line: int
    attached: bool = False


class OcrEngine(Protocol):
    name: str

    def detect_words(self, image: np.ndarray, min_confidence: float) -> list[DetectedWord]:
        """Read an HxWx3 uint8 RGB image; return words at or above `min_confidence`."""
        ...
