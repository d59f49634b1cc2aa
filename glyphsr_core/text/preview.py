"""An annotated preview: the image with each word's quad outlined and its reading drawn above it.

Labels use the same font chain as the glyph map (`textfonts`), so accented, Greek, Cyrillic, CJK
and Hangul readings show as read. Words the OCR word filter dropped can be drawn too, in another
colour with the reason, so a user sees what was left out of the guidance.
"""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw

from .fonts import render_text
from ..types import OcrResult, TextRegion

BOX_COLOR = (0, 230, 64)
LABEL_BG = (0, 0, 0)
LABEL_FG = (255, 255, 64)
DROPPED_COLOR = (255, 64, 64)


def _label(preview: Image.Image, quad: list[tuple[float, float]], label: str, size: int,
           color: tuple[int, int, int]) -> None:
    width, height = preview.size
    ink = render_text(label, size)
    x = int(min(p[0] for p in quad))
    y = int(min(p[1] for p in quad))
    label_y = y - ink.height - 4 if y - ink.height - 4 >= 0 else int(max(p[1] for p in quad)) + 2
    x = max(0, min(x, width - ink.width - 2))
    label_y = max(0, min(label_y, height - ink.height - 2))
    ImageDraw.Draw(preview).rectangle((x, label_y, x + ink.width + 2, label_y + ink.height + 2), fill=LABEL_BG)
    preview.paste(color, (x + 1, label_y + 1, x + 1 + ink.width, label_y + 1 + ink.height), mask=ink)


def draw_ocr_preview(image: Image.Image, result: OcrResult,
                     dropped: Sequence[tuple[TextRegion, str]] = ()) -> Image.Image:
    """A copy of `image` (RGB) with the result's words outlined and labelled.

    `dropped` (region, reason) pairs are outlined in red and labelled "dropped: <reason>".
    """
    preview = image.convert("RGB").copy()
    width, height = preview.size
    draw = ImageDraw.Draw(preview)
    line_width = max(1, round(min(width, height) / 256))
    size = max(10, round(min(width, height) / 40))
    items = [(r, f"{r.text} {r.confidence:.2f}", BOX_COLOR, LABEL_FG) for r in result.regions]
    items += [(r, f"{r.text} dropped: {reason}", DROPPED_COLOR, DROPPED_COLOR) for r, reason in dropped]
    for region, label, box_color, label_color in items:
        quad = region.pixel_quad(width, height)
        if quad is None:
            continue
        draw.line(quad + quad[:1], fill=box_color, width=line_width)
        _label(preview, quad, label, size, label_color)
    return preview
