"""OCR of images too large to read whole (a x4 of a photo: hundreds of megapixels).

Read whole, such an image costs several full-size copies (RGBA, composited RGB, the engine's BGR) and
RapidOCR then shrinks it to 2000 px anyway, too small to read the words it finds. Here instead:

1. Detect: an integer box-reduced copy of at most `DETECT_PIXELS` (built strip by strip, so no
   full-size copy) is searched for text lines in overlapping tiles the engine reads unshrunk.
2. Read: every line (boxes from tiles merged where they meet) is cropped from the full-resolution
   image with a margin and read there, so words keep full-resolution boxes and pixels.

Memory follows the reduced copy and a line crop, never the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..imageops import to_rgb_uint8
from .engine import DetectedWord, OcrEngine

#: the reduced copy lines are detected on has at most this many pixels
DETECT_PIXELS = 16_000_000
#: detection tiles of the reduced copy (RapidOCR reads up to 2000 px without shrinking) and their overlap
DETECT_TILE = 2000
DETECT_OVERLAP = 200
#: rows of the full image converted at a time while building the reduced copy (times the factor)
STRIP_ROWS = 256
#: margin around a line when it is read from the full image, in line heights
READ_MARGIN = 0.6
#: sheets of stacked line crops read at once: most and least side (the engine shrinks above 2000 px and
#: enlarges below 736 px), white rows between the crops
SHEET_SIDE = 2000
MIN_SHEET_SIDE = 736
SHEET_GAP = 24
#: line heights of context read on each side of a line (or of a segment of a long one)
SEGMENT_REACH = 3.0

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in full-resolution pixels


def region_rgb(image: Image.Image | np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """HxWx3 uint8 RGB of `box` (x0, y0, x1, y1), converted exactly as `read_text` converts a whole image."""
    x0, y0, x1, y1 = box
    if isinstance(image, Image.Image):
        crop = image.crop(box)  # RGB as is: compositing an opaque image over white changes no value
        return np.asarray(crop) if crop.mode == "RGB" else to_rgb_uint8(np.asarray(crop.convert("RGBA")))
    return to_rgb_uint8(np.asarray(image[y0:y1, x0:x1]))


def reduced_copy(image: Image.Image | np.ndarray, width: int, height: int, factor: int) -> np.ndarray:
    """The image box-averaged by an integer `factor` (Pillow's `reduce`), built from strips of rows."""
    out = np.empty((math.ceil(height / factor), math.ceil(width / factor), 3), dtype=np.uint8)
    rows = STRIP_ROWS * factor
    for y in range(0, height, rows):
        strip = Image.fromarray(region_rgb(image, (0, y, width, min(height, y + rows))))
        reduced = np.asarray(strip.reduce(factor) if factor > 1 else strip)
        out[y // factor:y // factor + reduced.shape[0]] = reduced
    return out


def _starts(length: int) -> list[int]:
    if length <= DETECT_TILE:
        return [0]
    step = DETECT_TILE - DETECT_OVERLAP
    return list(range(0, length - DETECT_TILE, step)) + [length - DETECT_TILE]


def detect_line_boxes(engine: OcrEngine, small: np.ndarray, factor: int) -> list[Box]:
    """Text-line boxes of the reduced copy `small`, in full-resolution pixels (tile duplicates included)."""
    boxes: list[Box] = []
    height, width = small.shape[:2]
    for ty in _starts(height):
        for tx in _starts(width):
            tile = np.ascontiguousarray(small[ty:ty + DETECT_TILE, tx:tx + DETECT_TILE])
            for quad in _line_quads(engine, tile):
                xs, ys = [p[0] + tx for p in quad], [p[1] + ty for p in quad]
                boxes.append((min(xs) * factor, min(ys) * factor, max(xs) * factor, max(ys) * factor))
    return boxes


def _line_quads(engine: OcrEngine, tile: np.ndarray) -> list[Sequence[tuple[float, float]]]:
    """Line quads from the engine's detector alone where it has one, else from its words (any confidence)."""
    detect_lines = getattr(engine, "detect_lines", None)
    if detect_lines is not None:
        return detect_lines(tile)
    lines: dict[int, list[tuple[float, float]]] = {}
    for word in engine.detect_words(tile, 0.0):
        lines.setdefault(word.line, []).extend(word.quad)
    return list(lines.values())


def merge_line_boxes(boxes: list[Box]) -> list[Box]:
    """Boxes that overlap and share most of their height (one line seen by two tiles, or cut by a tile
    edge) become one; distinct lines stay apart."""
    merged = sorted(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for box in merged:
            for index, other in enumerate(out):
                if _same_line(box, other):
                    out[index] = (min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]),
                                  max(box[3], other[3]))
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return merged


def _same_line(a: Box, b: Box) -> bool:
    shared_height = min(a[3], b[3]) - max(a[1], b[1])
    touching = min(a[2], b[2]) - max(a[0], b[0]) >= -0.25 * min(a[3] - a[1], b[3] - b[1])
    return touching and shared_height >= 0.5 * min(a[3] - a[1], b[3] - b[1])


def read_lines(image: Image.Image | np.ndarray, width: int, height: int, lines: list[Box], engine: OcrEngine,
               min_confidence: float, enlarge: float = 1.0) -> list[DetectedWord]:
    """Read each line from the full image: line crops (a margin around each) are stacked into sheets
    of at most `SHEET_SIDE` px, one line per row, and every sheet is read at once (the engine enlarges a
    lone thin crop to 736 px, which costs more than the sheet). A word belongs to the line whose box
    holds its centre, so a neighbour's letters inside the margin are never read twice."""
    words: list[DetectedWord] = []
    sheet: list[tuple[int, tuple[int, int, int, int], np.ndarray]] = []
    for index, box in enumerate(lines):
        crop, rgb = _line_crop(image, width, height, box, enlarge)
        if sheet and sum(piece.shape[0] + SHEET_GAP for *_, piece in sheet) + rgb.shape[0] > SHEET_SIDE:
            words.extend(_read_sheet(sheet, lines, engine, min_confidence))
            sheet = []
        sheet.append((index, crop, rgb))
    if sheet:
        words.extend(_read_sheet(sheet, lines, engine, min_confidence))
    return _without_repeats(words)


def line_segments(box: Box) -> list[Box]:
    """A line too long for a sheet at full resolution, cut into side-by-side segments (each read with
    `SEGMENT_REACH` line heights of its neighbours around it, so a word cut by the border is whole in the
    segment that holds its centre); shrinking the whole line instead would make small letters unreadable."""
    x0, y0, x1, y1 = box
    line_height = max(1.0, y1 - y0)
    core = max(4 * line_height, SHEET_SIDE - 2 * SEGMENT_REACH * line_height)
    count = max(1, math.ceil((x1 - x0) / core))
    step = (x1 - x0) / count
    return [(x0 + i * step, y0, x0 + (i + 1) * step, y1) for i in range(count)]


def _line_crop(image: Image.Image | np.ndarray, width: int, height: int, box: Box,
               enlarge: float) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The crop box of one line (segment) with its margins, and its pixels scaled to fit a sheet (times
    `enlarge`)."""
    x0, y0, x1, y1 = box
    margin = max(4.0, READ_MARGIN * (y1 - y0))
    reach = max(margin, SEGMENT_REACH * (y1 - y0))
    crop = (max(0, int(x0 - reach)), max(0, int(y0 - margin)), min(width, math.ceil(x1 + reach)),
            min(height, math.ceil(y1 + margin)))
    rgb = region_rgb(image, crop)
    scale = min(enlarge, SHEET_SIDE / rgb.shape[1], SHEET_SIDE / rgb.shape[0])
    if scale != 1.0:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC if scale > 1 else
                                                      Image.Resampling.LANCZOS))
    return crop, rgb


def _read_sheet(sheet: list[tuple[int, tuple[int, int, int, int], np.ndarray]], lines: list[Box],
                engine: OcrEngine, min_confidence: float) -> list[DetectedWord]:
    """OCR one sheet of stacked line crops (white between and around them); words back in image pixels."""
    width = max(MIN_SHEET_SIDE, max(piece.shape[1] for *_, piece in sheet))
    height = max(MIN_SHEET_SIDE, sum(piece.shape[0] + SHEET_GAP for *_, piece in sheet))
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    rows, y = [], 0
    for index, crop, piece in sheet:
        canvas[y:y + piece.shape[0], :piece.shape[1]] = piece
        rows.append((y, index, crop, piece.shape))
        y += piece.shape[0] + SHEET_GAP
    words = []
    for word in engine.detect_words(canvas, min_confidence):
        cy = sum(q[1] for q in word.quad) / 4
        row = next((r for r in rows if r[0] <= cy < r[0] + r[3][0]), None)
        if row is None:
            continue
        top, index, crop, (piece_h, piece_w, _) = row
        sx, sy = (crop[2] - crop[0]) / piece_w, (crop[3] - crop[1]) / piece_h
        quad = [(crop[0] + x * sx, crop[1] + (y - top) * sy) for x, y in word.quad]
        x0, y0, x1, y1 = lines[index]
        cx, cy = sum(x for x, _ in quad) / 4, sum(y for _, y in quad) / 4
        inner = 0.25 * (y1 - y0)
        if x0 - inner <= cx <= x1 + inner and y0 - inner <= cy <= y1 + inner:
            words.append(DetectedWord(word.text, word.confidence, quad, index * 10_000 + word.line))
    return words


def _without_repeats(words: list[DetectedWord]) -> list[DetectedWord]:
    """One word where two line crops both kept it (lines closer than their margins)."""
    kept: list[DetectedWord] = []
    for word in words:
        if not any(other.text == word.text and _overlap(other.quad, word.quad) > 0.5 for other in kept):
            kept.append(word)
    return kept


def _overlap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    ax0, ax1, ay0, ay1 = min(x for x, _ in a), max(x for x, _ in a), min(y for _, y in a), max(y for _, y in a)
    bx0, bx1, by0, by1 = min(x for x, _ in b), max(x for x, _ in b), min(y for _, y in b), max(y for _, y in b)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    smaller = min((ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0))
    return inter / smaller if smaller > 0 else 0.0


def read_huge(image: Image.Image | np.ndarray, width: int, height: int, engine: OcrEngine, min_confidence: float,
              enlarge: float = 1.0) -> list[DetectedWord]:
    """Words of a huge image with full-resolution quads: lines detected on a copy reduced to at most
    `DETECT_PIXELS`, read at full size (times `enlarge`)."""
    factor = max(1, math.ceil(math.sqrt(width * height / DETECT_PIXELS)))
    small = reduced_copy(image, width, height, factor)
    lines = [part for line in merge_line_boxes(detect_line_boxes(engine, small, factor)) for part in line_segments(line)]
    del small
    return read_lines(image, width, height, lines, engine, min_confidence, enlarge)
