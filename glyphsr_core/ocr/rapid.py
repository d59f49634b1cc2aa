"""RapidOCR back-end: PP-OCR detection + recognition ONNX models shipped inside the `rapidocr` wheel.

Nothing is downloaded: the default configuration only uses the models bundled in the wheel.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from .engine import DetectedWord, OcrUnavailableError
from .scripts import CJK, char_script, is_cjk_word

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
        output = self._ocr(bgr, use_det=True, use_cls=True, use_rec=True, return_word_box=True,
                           text_score=float(min_confidence))
        if output.txts is None or output.boxes is None:
            return []
        words: list[DetectedWord] = []
        word_results = output.word_results if len(output.word_results) == len(output.txts) else None
        for line_index, (line_text, line_score, line_box) in enumerate(zip(output.txts, output.scores, output.boxes)):
            line_words = word_results[line_index] if word_results is not None else ()
            if line_words and all(w[2] is not None for w in line_words):
                joined = _join_cjk([DetectedWord(text.strip(), float(score), _quad(box), line_index)
                                    for text, score, box in line_words
                                    if text.strip() and float(score) >= min_confidence], line_text)
                words.extend(replace(w, text=fold_fullwidth(w.text)) for w in joined)
            else:
                words.extend(_split_line(line_text, float(line_score), line_box, line_index, min_confidence))
        return words


def fold_fullwidth(text: str) -> str:
    """Fullwidth Latin letters, digits and punctuation (U+FF01..U+FF5E) as ASCII, in a word with no
    CJK character: the recogniser's dictionary holds both forms and reads a lone Latin letter as
    either ("Ｌ" in "PＬACE"); words with CJK keep the forms as read."""
    if any(char_script(ch) == CJK for ch in text):
        return text
    return "".join(chr(ord(ch) - 0xFEE0) if 0xFF01 <= ord(ch) <= 0xFF5E else ch for ch in text)


    def detect_lines(self, image: np.ndarray) -> list[list[tuple[float, float]]]:
        """Text-line quads of an HxWx3 uint8 RGB image from the detector alone (no reading): the huge-image
        OCR finds lines on a reduced copy this way and reads them at full resolution (`ocr.huge`)."""
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        output = self._ocr(bgr, use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(output, "boxes", None)
        return [] if boxes is None else [_quad(box) for box in boxes]


def _join_cjk(words: list[DetectedWord], line_text: str) -> list[DetectedWord]:
    """Rejoin CJK characters that RapidOCR boxes one by one ("東", "京", "駅" -> "東京駅"); mark the
    other words read with no space before them as `attached`.

    Only neighbours that touch in the line's text (no space between them) and are both CJK are
    joined: Chinese and Japanese write words without spaces, so the run is the word. RapidOCR also
    cuts a Latin word where two letters lie far apart in its recogniser's columns ("M" + "OBILE");
    those pieces are joined later by `grouping`, which can be switched off.
    """
    joined: list[DetectedWord] = []
    cursor, previous_end = 0, -1
    for word in words:
        start = line_text.find(word.text, cursor)
        if start < 0:
            joined.append(word)
            previous_end = -1
            continue
        cursor = start + len(word.text)
        last = joined[-1] if joined else None
        touching = last is not None and start == previous_end
        if touching and is_cjk_word(last.text) and is_cjk_word(word.text):
            quad = [last.quad[0], word.quad[1], word.quad[2], last.quad[3]]
            joined[-1] = DetectedWord(last.text + word.text, min(last.confidence, word.confidence), quad, word.line,
                                      last.attached)
        else:
            joined.append(replace(word, attached=touching))
        previous_end = cursor
    return joined


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
