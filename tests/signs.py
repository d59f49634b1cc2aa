"""Street signs the tests and benchmarks draw: words in any script, with or without pictograms.

Words are drawn with the pack's font chain (`glyphsr_core.text.fonts`), so every script the
machine has a font for can be drawn; pictograms are simple shapes that OCR engines misread as
characters (a walking figure, an arrow, a bicycle, a building).
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from glyphsr_core.text.fonts import render_text

PICTOGRAMS = ("pedestrian", "arrow", "bicycle", "museum")


def draw_pictogram(draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int],
                   color: tuple[int, int, int]) -> None:
    """A pictogram filling `box` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    stroke = max(2, int(min(w, h) * 0.1))
    if kind == "pedestrian":
        draw.ellipse((x0 + w * 0.4, y0, x0 + w * 0.6, y0 + h * 0.2), fill=color)
        hip = (x0 + w * 0.5, y0 + h * 0.6)
        draw.line([(x0 + w * 0.5, y0 + h * 0.22), hip], fill=color, width=stroke)
        draw.line([(x0 + w * 0.2, y0 + h * 0.45), (x0 + w * 0.5, y0 + h * 0.3), (x0 + w * 0.8, y0 + h * 0.5)],
                  fill=color, width=stroke)
        draw.line([hip, (x0 + w * 0.25, y1)], fill=color, width=stroke)
        draw.line([hip, (x0 + w * 0.75, y1)], fill=color, width=stroke)
    elif kind == "arrow":
        mid = y0 + h / 2
        draw.rectangle((x0, mid - h * 0.12, x0 + w * 0.6, mid + h * 0.12), fill=color)
        draw.polygon([(x0 + w * 0.55, y0 + h * 0.15), (x1, mid), (x0 + w * 0.55, y1 - h * 0.15)], fill=color)
    elif kind == "bicycle":
        r = min(w * 0.22, h * 0.3)
        for cx in (x0 + r + stroke, x1 - r - stroke):
            draw.ellipse((cx - r, y1 - 2 * r - stroke, cx + r, y1 - stroke), outline=color, width=stroke)
        draw.line([(x0 + r, y1 - r), (x0 + w * 0.45, y0 + h * 0.35), (x1 - r, y1 - r)], fill=color, width=stroke)
    elif kind == "museum":
        draw.polygon([(x0, y0 + h * 0.3), (x0 + w / 2, y0), (x1, y0 + h * 0.3)], fill=color)
        for i in range(4):
            cx = x0 + w * (0.15 + 0.23 * i)
            draw.rectangle((cx - w * 0.05, y0 + h * 0.38, cx + w * 0.05, y1 - h * 0.12), fill=color)
        draw.rectangle((x0, y1 - h * 0.1, x1, y1), fill=color)
    else:
        raise ValueError(f"unknown pictogram {kind!r}; expected one of {', '.join(PICTOGRAMS)}")


def render_sign(lines: list[str], pictogram: str | None = None, font_size: int = 44,
                paper: tuple[int, int, int] = (28, 52, 110), ink: tuple[int, int, int] = (245, 245, 240),
                width: int | None = None) -> tuple[Image.Image, list[tuple[str, tuple[int, int, int, int]]]]:
    """A sign with `lines` of words (pictogram on the left when given); the image and each word's box."""
    pad = font_size // 2
    space = font_size // 2
    rendered = [[(word, render_text(word, font_size)) for word in line.split()] for line in lines]
    line_h = int(font_size * 1.5)
    text_w = max(sum(img.width for _, img in line) + space * (len(line) - 1) for line in rendered)
    picto_w = int(line_h * 1.2) if pictogram else 0
    size = (width or text_w + picto_w + 3 * pad, len(lines) * line_h + 2 * pad)
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    if pictogram:
        top = pad + (len(lines) * line_h - line_h) // 2
        draw_pictogram(draw, pictogram, (pad, top, pad + picto_w - pad // 2, top + line_h), ink)
    boxes = []
    for row, line in enumerate(rendered):
        x = pad + picto_w + (pad if pictogram else 0)
        for word, img in line:
            y = pad + row * line_h + (line_h - img.height) // 2
            image.paste(ink, (x, y, x + img.width, y + img.height), mask=img)
            boxes.append((word, (x, y, x + img.width, y + img.height)))
            x += img.width + space
    return image, boxes


def tilt(image: Image.Image, degrees: float) -> Image.Image:
    """The sign rotated a little on a grey wall, as a photo of it would be."""
    return image.rotate(degrees, expand=True, fillcolor=(128, 128, 128), resample=Image.Resampling.BICUBIC) \
        if degrees else image

