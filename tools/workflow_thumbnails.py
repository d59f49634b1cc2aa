"""Write workflows/<name>.jpg, the Templates browser's card image, from the frontend test's screenshots.

    GLYPHSR_SCREENSHOT_DIR=/tmp/shots python -m pytest tests/integration/test_workflows_frontend.py
    python tools/workflow_thumbnails.py /tmp/shots

ComfyUI 0.15.1 serves a pack's `workflows/` folder at /api/workflow_templates/<pack>/ and its
frontend (1.39) shows `<name>.jpg` on the card of `<name>.json`. The thumbnail is the graph as the
workflow opens (its groups' area of the 1920 x 1080 screenshot, the minimap and toolbar corners
painted over with the canvas colour), on a 4:3 canvas.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workflow_format import SCREEN_COVERED, to_screen  # noqa: E402
from workflow_graphs import UI_DIR, all_flows  # noqa: E402

SIZE = (640, 480)
BACKGROUND = (24, 24, 24)


def thumbnail(screenshot: Path, ui: dict):
    """The groups' area of `screenshot`, fitted into SIZE."""
    from PIL import Image

    boxes = [to_screen(ui, g["bounding"]) for g in ui["groups"]]
    margin = 8
    box = (max(0, min(b[0] for b in boxes) - margin), max(0, min(b[1] for b in boxes) - margin),
           max(b[2] for b in boxes) + margin, max(b[3] for b in boxes) + margin)
    from PIL import ImageDraw

    with Image.open(screenshot) as shot:
        shot = shot.convert("RGB")
    canvas_colour = shot.getpixel((1300, 1060))  # empty canvas below the graph
    draw = ImageDraw.Draw(shot)
    for corner in SCREEN_COVERED:
        draw.rectangle(corner, fill=canvas_colour)
    graph = shot.crop(tuple(round(v) for v in box))
    graph.thumbnail(SIZE, Image.Resampling.LANCZOS)
    card = Image.new("RGB", SIZE, BACKGROUND)
    card.paste(graph, ((SIZE[0] - graph.width) // 2, (SIZE[1] - graph.height) // 2))
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("screenshots", type=Path, help="folder with <workflow>.png from the frontend test")
    args = parser.parse_args(argv)
    for flow in all_flows():
        shot = args.screenshots / f"{flow.name}.png"
        if not shot.is_file():
            print(f"missing screenshot: {shot}", file=sys.stderr)
            return 1
        ui = json.loads((UI_DIR / f"{flow.name}.json").read_text(encoding="utf-8"))
        out = UI_DIR / f"{flow.name}.jpg"
        thumbnail(shot, ui).save(out, quality=85, optimize=True)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
