"""An annotated preview: the image with each word's quad outlined and its reading shown, legible at
any image size.

- Labels are sized to the image (1/40 of its shorter side, at least MIN_LABEL_PX) and placed
  inside the picture: above the word, else below it, else inside its top edge, whichever does not
  overlap a label already placed; clamped to the picture and shortened with "…" when wider than
  it, so a label is never cut off.
- On a small picture (shorter side under MIN_LABELLED_SIDE) labels would hide the words they
  name: each word gets a small numbered marker instead, and a legend strip under the picture
  lists "number  word  confidence".
- Tokens the word filter dropped are never labelled on the picture: a thin red outline, a small
  red numbered marker, and a legend line "number  token  dropped: reason". Their characters are
  drawn without the missing-font warning (they never reach the glyph map).

The picture itself is unchanged in size and position (top-left); the legend strip, when there is
one, is added below it (and the canvas widened to LEGEND_MIN_WIDTH so reasons stay readable).
Labels use the glyph map's font chain (`fonts`), so any script shows as read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from PIL import Image, ImageDraw

from .fonts import render_text
from ..types import OcrResult, TextRegion

BOX_COLOR = (0, 230, 64)
LABEL_BG = (0, 0, 0)
LABEL_FG = (255, 255, 64)
DROPPED_COLOR = (255, 64, 64)
LEGEND_BG = (32, 32, 32)
MARKER_FG = (255, 255, 255)
MIN_LABEL_PX = 10
#: pictures with a shorter side below this get numbered markers and a legend instead of labels
MIN_LABELLED_SIDE = 200
LEGEND_MIN_WIDTH = 320
LEGEND_TEXT_PX = 13
PAD = 2

Rect = tuple[int, int, int, int]


@dataclass
class PreviewLayout:
    """Where everything goes: label and marker rectangles are in picture pixels and lie inside it."""

    width: int
    height: int
    labels: list[tuple[Rect, str]] = field(default_factory=list)
    markers: list[tuple[Rect, str, bool]] = field(default_factory=list)  # (rect, number, dropped)
    legend: list[tuple[str, bool]] = field(default_factory=list)  # (line, dropped)

    @property
    def legend_px(self) -> int:
        """Legend text size: readable on a small picture, scaled like the labels on a large one."""
        return max(LEGEND_TEXT_PX, label_size(self.width, self.height))

    @property
    def canvas_size(self) -> tuple[int, int]:
        if not self.legend:
            return self.width, self.height
        return max(self.width, LEGEND_MIN_WIDTH), self.height + len(self.legend) * self.legend_step + 2 * PAD

    @property
    def legend_step(self) -> int:
        return self.legend_px + 2 * PAD + 2


def label_size(width: int, height: int) -> int:
    """The label font size for a picture: scaled to it, never below MIN_LABEL_PX."""
    return max(MIN_LABEL_PX, round(min(width, height) / 40))


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def fit_label(text: str, size: int, max_width: int, report_missing: bool = True) -> tuple[str, Image.Image]:
    """`text` drawn at `size`, shortened with "…" until its box (ink + padding) fits `max_width`."""
    label = text
    ink = render_text(label, size, report_missing=report_missing)
    while ink.width + 2 * PAD > max_width and len(label) > 1:
        label = label[:-2] + "…" if len(label) > 2 else label[:1]
        ink = render_text(label, size, report_missing=report_missing)
    return label, ink


def place(box: Rect, size: tuple[int, int], picture: tuple[int, int], taken: Sequence[Rect]) -> Rect:
    """A `size` (w, h) rectangle near the word `box`: above, below or inside its top, the first that
    overlaps nothing in `taken` (else above); always clamped inside the `picture` (w, h)."""
    w, h = size
    pw, ph = picture
    x = max(0, min(box[0], pw - w))
    candidates = [box[1] - h - 1, box[3] + 1, box[1]]
    rects = [(x, max(0, min(y, ph - h)), x + w, max(0, min(y, ph - h)) + h) for y in candidates]
    for rect in rects:
        if not any(_overlaps(rect, other) for other in taken):
            return rect
    return rects[0]


def _pixel_box(region: TextRegion, width: int, height: int) -> Rect | None:
    quad = region.pixel_quad(width, height)
    if quad is None:
        return None
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys))


def layout_preview(width: int, height: int, result: OcrResult,
                   dropped: Sequence[tuple[TextRegion, str]] = ()) -> PreviewLayout:
    """Decide every label, marker and legend line of a `width` x `height` preview."""
    layout = PreviewLayout(width, height)
    size = label_size(width, height)
    markers_only = min(width, height) < MIN_LABELLED_SIDE
    taken: list[Rect] = []
    number = 0
    for region in result.regions:
        box = _pixel_box(region, width, height)
        if box is None:
            continue
        if markers_only:
            number += 1
            layout.legend.append((f"{number}  {region.text}  {region.confidence:.2f}", False))
            _add_marker(layout, box, str(number), False, size, taken)
            continue
        text, ink = fit_label(f"{region.text} {region.confidence:.2f}", size, width)
        rect = place(box, (ink.width + 2 * PAD, ink.height + 2 * PAD), (width, height), taken)
        layout.labels.append((rect, text))
        taken.append(rect)
    for region, reason in dropped:
        box = _pixel_box(region, width, height)
        if box is None:
            continue
        number += 1
        layout.legend.append((f"{number}  {region.text}  dropped: {reason}", True))
        _add_marker(layout, box, str(number), True, size, taken)
    return layout


def _add_marker(layout: PreviewLayout, box: Rect, number: str, dropped: bool, size: int,
                taken: list[Rect]) -> None:
    ink = render_text(number, size)
    side = max(ink.width, ink.height) + 2 * PAD
    rect = place(box, (side, side), (layout.width, layout.height), taken)
    layout.markers.append((rect, number, dropped))
    taken.append(rect)


def _paste_text(canvas: Image.Image, rect: Rect, text: str, size: int, color: tuple[int, int, int],
                background: tuple[int, int, int], report_missing: bool) -> None:
    ink = render_text(text, size, report_missing=report_missing)
    ImageDraw.Draw(canvas).rectangle((rect[0], rect[1], rect[2] - 1, rect[3] - 1), fill=background)
    x = rect[0] + max(0, (rect[2] - rect[0] - ink.width) // 2)
    y = rect[1] + max(0, (rect[3] - rect[1] - ink.height) // 2)
    canvas.paste(color, (x, y, x + ink.width, y + ink.height), mask=ink)


def draw_ocr_preview(image: Image.Image, result: OcrResult,
                     dropped: Sequence[tuple[TextRegion, str]] = ()) -> Image.Image:
    """`image` (RGB) with the result's words outlined and labelled (see the module), and dropped
    (region, reason) pairs outlined in red and listed in the legend."""
    picture = image.convert("RGB")
    width, height = picture.size
    layout = layout_preview(width, height, result, dropped)
    canvas = Image.new("RGB", layout.canvas_size, LEGEND_BG)
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    line_width = max(1, round(min(width, height) / 256))
    for regions, color in ((result.regions, BOX_COLOR), ([r for r, _ in dropped], DROPPED_COLOR)):
        for region in regions:
            quad = region.pixel_quad(width, height)
            if quad is not None:
                draw.line(quad + quad[:1], fill=color, width=line_width)
    size = label_size(width, height)
    for rect, text in layout.labels:
        _paste_text(canvas, rect, text, size, LABEL_FG, LABEL_BG, True)
    for rect, number, is_dropped in layout.markers:
        _paste_text(canvas, rect, number, size, MARKER_FG if is_dropped else LABEL_FG,
                    DROPPED_COLOR if is_dropped else LABEL_BG, not is_dropped)
    _draw_legend(canvas, layout)
    return canvas


def _draw_legend(canvas: Image.Image, layout: PreviewLayout) -> None:
    y = layout.height + PAD
    for line, is_dropped in layout.legend:
        _, ink = fit_label(line, layout.legend_px, canvas.width - 2 * PAD, report_missing=not is_dropped)
        x, top = 2 * PAD, y + PAD
        canvas.paste(DROPPED_COLOR if is_dropped else LABEL_FG, (x, top, x + ink.width, top + ink.height), mask=ink)
        y += layout.legend_step


def same_size(previews: Sequence[Image.Image]) -> list[Image.Image]:
    """Previews of one batch padded (legend colour, bottom and right) to the largest, so they stack
    into one IMAGE tensor when only some of them have a legend strip."""
    width = max((p.width for p in previews), default=0)
    height = max((p.height for p in previews), default=0)
    padded = []
    for preview in previews:
        if preview.size != (width, height):
            canvas = Image.new("RGB", (width, height), LEGEND_BG)
            canvas.paste(preview, (0, 0))
            preview = canvas
        padded.append(preview)
    return padded
