"""Images with known words at known places, drawn with Pillow's built-in font (no font files)."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont


def render_words(
    lines: list[list[str]],
    size: tuple[int, int] = (640, 400),
    font_size: int = 36,
    origin: tuple[int, int] = (24, 24),
    line_gap: int = 40,
    ink: tuple[int, int, int] = (20, 20, 20),
    paper: tuple[int, int, int] = (235, 232, 220),
) -> tuple[Image.Image, list[tuple[str, tuple[int, int, int, int]]]]:
    """Draw `lines` of words; return the image and each word's ink box in pixels."""
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    space = draw.textlength(" ", font=font)
    boxes = []
    y = origin[1]
    for words in lines:
        x = origin[0]
        for word in words:
            draw.text((x, y), word, font=font, fill=ink)
            boxes.append((word, draw.textbbox((x, y), word, font=font)))
            x += draw.textlength(word, font=font) + space * 1.5
        y += font_size + line_gap
    return image, boxes
