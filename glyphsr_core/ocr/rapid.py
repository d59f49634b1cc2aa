"""RapidOCR back-end: PP-OCR detection + recognition ONNX models shipped inside the `rapidocr` wheel.

Nothing is downloaded: the default configuration only uses the models bundled in the wheel.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from .engine import DetectedWord, OcrUnavailableError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install rapidocr onnxruntime  (inside ComfyUI's Python environment)"


class RapidOcrEngine:
    """Word-level OCR with RapidOCR; construction loads the ONNX sessions (about a second)."""

    name = "rapidocr"

    def __init__(self) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:  # rapidocr itself, or onnxruntime under it
            raise OcrUnavailableError(
                f"OCR needs the 'rapidocr' and 'onnxruntime' packages ({exc}). Install them with: {INSTALL_HINT}"
            ) from exc
        try:
            self._ocr = RapidOCR(params={"Global.log_level": "error"})
        except ImportError as exc:
            raise OcrUnavailableError(f"RapidOCR could not start its ONNX runtime ({exc}). {INSTALL_HINT}") from exc

    def detect_words(self, image: np.ndarray, min_confidence: float) -> list[DetectedWord]:
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # RapidOCR reads 3-channel arrays as BGR
        output = self._ocr(bgr, return_word_box=True, text_score=float(min_confidence))
        if output.txts is None or output.boxes is None:
            return []
        words: list[DetectedWord] = []
        word_results = output.word_results if len(output.word_results) == len(output.txts) else None
        for line_index, (line_text, line_score, line_box) in enumerate(zip(output.txts, output.scores, output.boxes)):
            line_words = word_results[line_index] if word_results is not None else ()
            if line_words and all(w[2] is not None for w in line_words):
                for text, score, box in line_words:
                    if text.strip() and float(score) >= min_confidence:
                        words.append(DetectedWord(text.strip(), float(score), _quad(box), line_index))
            else:
                words.extend(_split_line(line_text, float(line_score), line_box, line_index, min_confidence))
        return words


def _quad(box: Any) -> list[tuple[float, float]]:
    points = np.asarray(box, dtype=np.float64).reshape(-1, 2)
    if len(points) != 4:  # engines may return polygons; keep the rotated bounding quad corners
        xs, ys = points[:, 0], points[:, 1]
        points = np.array([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()]])
    return [(float(x), float(y)) for x, y in points]


def _split_line(text: str, score: float, box: Any, line_index: int, min_confidence: float) -> list[DetectedWord]:
    """Split a line without word boxes into words, each given its share of the line quad by length."""
    if score < min_confidence:
        return []
    tokens = text.split()
    if not tokens:
        return []
    tl, tr, br, bl = [np.asarray(p, dtype=np.float64) for p in _quad(box)]
    total = max(1, len(text))
    words = []
    position = 0
    for token in tokens:
        start = text.index(token, position)
        end = start + len(token)
        position = end
        a, b = start / total, end / total
        quad: Sequence[tuple[float, float]] = [
            tuple(tl + (tr - tl) * a), tuple(tl + (tr - tl) * b), tuple(bl + (br - bl) * b), tuple(bl + (br - bl) * a)
        ]
        words.append(DetectedWord(token, score, [(float(x), float(y)) for x, y in quad], line_index))
    return words
