"""Glyph maps and text masks: what the text should look like, and where it is.

The glyph map draws every located word white on black, stretched to fill its quad (so it covers
the same pixels as the word in the low-quality image, whatever the original font); rotation and
slight perspective follow the quad. Words in any script are drawn with the font chain of
`textfonts` (per-character fallback, missing characters logged, never a tofu box). The same
renderer makes the training corpus' glyph maps, so the text branch sees at inference exactly what
it saw in training.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

from ..errors import InvalidInputError
from .fonts import render_text
from ..types import OcrResult, TextRegion

#: words are drawn at least this many pixels tall before warping, so small quads stay legible
MIN_RENDER_HEIGHT = 24


class FontError(InvalidInputError):
    """A font file was asked for that cannot be read."""


@lru_cache(maxsize=64)
def load_font(font_path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A TrueType font at `size` px; Pillow's bundled scalable font (ASCII only) when no path is given."""
    if not font_path:
        return ImageFont.load_default(size=size)
    if not os.path.isfile(font_path):
        raise FontError(f"font file not found: {font_path!r} (give a .ttf/.otf path, or leave it empty for the built-in font)")
    try:
        return ImageFont.truetype(font_path, size=size)
    except OSError as exc:
        raise FontError(f"cannot read font {font_path!r}: {exc}") from exc


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise InvalidInputError(f"glyph map size must be at least 1x1, got {width}x{height}")


def perspective_coefficients(dest: np.ndarray, src: np.ndarray) -> list[float]:
    """Coefficients for PIL's PERSPECTIVE transform mapping output points `dest` to input `src`."""
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(dest, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    solution, *_ = np.linalg.lstsq(np.asarray(rows, dtype=np.float64), np.asarray(rhs, dtype=np.float64), rcond=None)
    return solution.tolist()


def render_word(region: TextRegion, width: int, height: int, font_path: str | None = None) -> tuple[Image.Image, tuple[int, int]] | None:
    """The word warped into its quad: an "L" patch and its top-left offset in the full image."""
    quad = region.pixel_quad(width, height)
    if quad is None or not region.text.strip():
        return None
    q = np.asarray(quad, dtype=np.float64)
    quad_w = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2.0
    quad_h = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2.0
    if quad_w < 1.0 or quad_h < 1.0:
        return None
    size = max(MIN_RENDER_HEIGHT, int(math.ceil(quad_h)))
    if font_path:
        load_font(font_path, size)  # a clear FontError for a bad path
    text_image = render_text(region.text, size, font_path or None)
    text_w, text_h = text_image.size

    x0, y0 = int(math.floor(q[:, 0].min())), int(math.floor(q[:, 1].min()))
    x1, y1 = int(math.ceil(q[:, 0].max())), int(math.ceil(q[:, 1].max()))
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, max(x1, x0 + 1)), min(height, max(y1, y0 + 1))
    if x1 <= x0 or y1 <= y0:
        return None
    dest = q - np.array([x0, y0], dtype=np.float64)
    src = np.array([[0, 0], [text_w, 0], [text_w, text_h], [0, text_h]], dtype=np.float64)
    coefficients = perspective_coefficients(dest, src)
    patch = text_image.transform((x1 - x0, y1 - y0), Image.Transform.PERSPECTIVE, coefficients,
                                 resample=Image.Resampling.BILINEAR, fillcolor=0)
    return patch, (x0, y0)


def render_glyph_map(result: OcrResult, width: int, height: int, font_path: str | None = None) -> Image.Image:
    """White glyphs on black at `width` x `height`; words without a position are skipped."""
    _check_size(width, height)
    canvas = Image.new("L", (width, height), 0)
    for region in result.regions:
        rendered = render_word(region, width, height, font_path)
        if rendered is None:
            continue
        patch, (x, y) = rendered
        box = (x, y, x + patch.width, y + patch.height)
        canvas.paste(ImageChops.lighter(canvas.crop(box), patch), box)
    return canvas


def render_text_mask(result: OcrResult, width: int, height: int, dilation: int = 0) -> Image.Image:
    """Filled word quads (255) on black, grown by `dilation` pixels in every direction."""
    _check_size(width, height)
    if dilation < 0:
        raise InvalidInputError(f"mask dilation must be >= 0 pixels, got {dilation}")
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for region in result.regions:
        quad = region.pixel_quad(width, height)
        if quad is None:
            continue
        draw.polygon(quad, fill=255)
        if dilation > 0:
            # a polygon grown by a disk: its outline stroked with round joins, width 2 * dilation
            draw.line(quad + quad[:1], fill=255, width=2 * dilation + 1, joint="curve")
            for x, y in quad:
                draw.ellipse((x - dilation, y - dilation, x + dilation, y + dilation), fill=255)
    return mask
