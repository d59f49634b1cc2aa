"""An annotated preview: the image with each word's quad outlined and its reading drawn above it."""

from __future__ import annotations

from PIL import Image, ImageDraw

from .glyph import load_font
from .types import OcrResult

BOX_COLOR = (0, 230, 64)
LABEL_BG = (0, 0, 0)
LABEL_FG = (255, 255, 64)


def draw_ocr_preview(image: Image.Image, result: OcrResult) -> Image.Image:
    """A copy of `image` (RGB) with the result's words outlined and labelled."""
    preview = image.convert("RGB").copy()
    width, height = preview.size
    draw = ImageDraw.Draw(preview)
    line_width = max(1, round(min(width, height) / 256))
    font = load_font(None, max(10, round(min(width, height) / 40)))
    for region in result.regions:
        quad = region.pixel_quad(width, height)
        if quad is None:
            continue
        draw.line(quad + quad[:1], fill=BOX_COLOR, width=line_width)
        label = f"{region.text} {region.confidence:.2f}"
        x, y = min(p[0] for p in quad), min(p[1] for p in quad)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        label_y = y - (bottom - top) - 2 if y - (bottom - top) - 2 >= 0 else max(p[1] for p in quad) + 2
        draw.rectangle((x, label_y, x + right - left + 2, label_y + bottom - top + 2), fill=LABEL_BG)
        draw.text((x + 1 - left, label_y + 1 - top), label, fill=LABEL_FG, font=font)
    return preview
