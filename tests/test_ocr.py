"""Real OCR (the ONNX models inside the rapidocr wheel) on images the tests draw."""

import sys

import numpy as np
import pytest
from PIL import Image

import glyphsr_core.ocr as ocr
from glyphsr_core.ocr import OcrUnavailableError, read_text, resolve_ocr_scale
from glyphsr_core.ocr.engine import DetectedWord
from glyphsr_core.ocr.reading import reading_order
from textimages import render_words

LINES = [["OPEN", "DAILY", "COFFEE"], ["FRESH", "BREAD", "2024"], ["SALE", "TODAY", "$4.99"], ["Market", "Street", "42"]]


def _f1(predicted: list[str], truth: list[str]) -> float:
    remaining = list(truth)
    hits = 0
    for word in predicted:
        if word in remaining:
            remaining.remove(word)
            hits += 1
    if not predicted or not truth:
        return float(predicted == truth)
    precision, recall = hits / len(predicted), hits / len(truth)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


@pytest.fixture(scope="module")
def sign():
    return render_words(LINES, size=(720, 420), font_size=40)


def test_clean_text_is_read_word_by_word_in_reading_order(sign):
    image, boxes = sign
    result = read_text(image)
    truth = [w for line in LINES for w in line]
    assert _f1(result.words, truth) >= 0.95
    assert result.words == truth  # top-to-bottom, left-to-right
    assert (result.width, result.height) == image.size


def test_word_boxes_are_where_the_words_were_drawn(sign):
    image, boxes = sign
    result = read_text(image)
    width, height = image.size
    by_word = {r.text: r for r in result.regions}
    for word, (x0, y0, x1, y1) in boxes:
        cx, cy = by_word[word].center
        assert x0 <= cx * width <= x1 and y0 <= cy * height <= y1, word
        bx0, by0, bx1, by1 = by_word[word].box
        assert _iou((bx0 * width, by0 * height, bx1 * width, by1 * height), (x0, y0, x1, y1)) >= 0.5, word


def test_small_image_boxes_map_back_to_input_coordinates():
    image, boxes = render_words([["HELLO", "WORLD"]], size=(300, 80), font_size=22, origin=(10, 20))
    result = read_text(image, ocr_scale="auto")
    assert result.words == ["HELLO", "WORLD"]
    x0, y0, x1, y1 = boxes[0][1]
    cx, cy = result.regions[0].center
    assert x0 <= cx * 300 <= x1 and y0 <= cy * 80 <= y1


@pytest.mark.parametrize("mode", ["RGBA", "L", "LA"])
def test_rgba_and_grayscale_inputs(sign, mode):
    image, _ = sign
    converted = image.convert(mode)
    assert read_text(converted).words[:3] == ["OPEN", "DAILY", "COFFEE"]


def test_transparent_rgba_array_is_read_over_white():
    image, _ = render_words([["STOP"]], size=(240, 100), font_size=40)
    rgba = np.zeros((100, 240, 4), np.uint8)
    ink = np.asarray(image.convert("L")) < 128
    rgba[ink] = (0, 0, 0, 255)  # black ink on fully transparent background
    assert read_text(rgba).words == ["STOP"]


def test_no_text_gives_empty_result():
    rng = np.random.default_rng(0)
    smooth = np.clip(rng.normal(128, 3, (200, 300, 3)), 0, 255).astype(np.uint8)
    result = read_text(smooth)
    assert result.regions == () and (result.width, result.height) == (300, 200)


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 500, 3), (2, 2)])
def test_tiny_images_give_empty_results(shape):
    result = read_text(np.full(shape, 255, np.uint8))
    assert result.regions == ()
    assert (result.height, result.width) == shape[:2]


@pytest.mark.slow
def test_huge_image_is_read():
    image, boxes = render_words([["HUGE", "BANNER"]], size=(8000, 1500), font_size=200, origin=(200, 300))
    result = read_text(image)
    assert {"HUGE", "BANNER"} <= set(result.words)
    x0, _, x1, _ = boxes[0][1]
    huge = next(r for r in result.regions if r.text == "HUGE")
    assert x0 <= huge.center[0] * 8000 <= x1


def test_engine_is_created_once_and_reused(sign):
    first = ocr.get_engine()
    read_text(sign[0])
    assert ocr.get_engine() is first


def test_missing_rapidocr_says_what_to_install(monkeypatch):
    monkeypatch.setattr(ocr, "_engine", None)
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # import fails as if not installed
    with pytest.raises(OcrUnavailableError, match="pip install rapidocr onnxruntime"):
        read_text(np.full((64, 64, 3), 255, np.uint8))


@pytest.mark.parametrize(
    "scale, size, expected",
    [("auto", (256, 128), 4.0), ("auto", (512, 300), 2.0), ("auto", (2048, 100), 1.0), ("2", (10, 10), 2.0), (3, (5, 5), 3.0)],
)
def test_resolve_ocr_scale(scale, size, expected):
    assert resolve_ocr_scale(scale, *size) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["big", "0.5", 99])
def test_bad_ocr_scale(bad):
    with pytest.raises(ValueError, match="ocr_scale"):
        resolve_ocr_scale(bad, 100, 100)


def test_bad_min_confidence():
    with pytest.raises(ValueError, match="min_confidence"):
        read_text(np.zeros((64, 64, 3), np.uint8), min_confidence=2)


def _word(text, x, y, line, w=40, h=20):
    return DetectedWord(text, 1.0, [(x, y), (x + w, y), (x + w, y + h), (x, y + h)], line)


def test_reading_order_joins_lines_side_by_side_into_one_row():
    words = [
        _word("right", 300, 12, line=0),  # a second sign, 2 px lower, listed first by the engine
        _word("left", 10, 10, line=1),
        _word("below", 10, 80, line=2),
        _word("left2", 60, 10, line=1),
    ]
    assert [w.text for w in reading_order(words)] == ["left", "left2", "right", "below"]
