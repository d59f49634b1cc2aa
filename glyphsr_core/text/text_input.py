"""Text typed or corrected by a user, turned into OCR results.

Accepted forms:
- the JSON the OCR node writes (one object, or a list with one object per image), or a JSON list
  of regions (`[{"text": "OPEN", "box": [x0, y0, x1, y1]}]`);
- plain lines, one word or phrase per line, optionally with a box: `OPEN @ 0.1,0.2,0.4,0.3`.
  Boxes with every value <= 1 are fractions of the image; otherwise pixels of `width` x `height`.
  Blank lines and lines starting with `#` are ignored.
"""

from __future__ import annotations

import json
import re

from ..types import OcrResult, TextFormatError, TextRegion, quad_from_box, results_from_json

_BOX_LINE = re.compile(r"^(?P<text>.*?)\s*@\s*(?P<box>[^@]*)$")


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise TextFormatError(f"width and height must be at least 1 pixel, got {width}x{height}")


def _parse_box(raw: str, line_number: int, width: int, height: int) -> tuple[float, float, float, float]:
    parts = [p for p in re.split(r"[,\s]+", raw.strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise TextFormatError(f"line {line_number}: expected 'word @ x0,y0,x1,y1' with four numbers, got '@ {raw.strip()}'")
    if all(0.0 <= v <= 1.0 for v in values):
        x0, y0, x1, y1 = values
    else:
        x0, y0, x1, y1 = values[0] / width, values[1] / height, values[2] / width, values[3] / height
    if x1 <= x0 or y1 <= y0:
        raise TextFormatError(f"line {line_number}: box {raw.strip()} must have x1 > x0 and y1 > y0")
    return (max(0.0, x0), max(0.0, y0), min(1.0, x1), min(1.0, y1))


def parse_plain_lines(text: str, width: int, height: int) -> OcrResult:
    _check_size(width, height)
    regions = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _BOX_LINE.match(stripped)
        if match and match.group("text").strip():
            box = _parse_box(match.group("box"), number, width, height)
            regions.append(TextRegion(match.group("text").strip(), 1.0, quad_from_box(box)))
        else:
            regions.append(TextRegion(stripped, 1.0, None))
    return OcrResult(width, height, tuple(regions))


def parse_text_input(text: str, width: int, height: int) -> list[OcrResult]:
    """One OCR result per image described by `text` (plain lines describe one image)."""
    _check_size(width, height)
    stripped = (text or "").strip()
    if not stripped:
        return [OcrResult(width, height, ())]
    if stripped[0] in "[{":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise TextFormatError(
                f"text looks like JSON but is not valid: {exc.msg} at line {exc.lineno} column {exc.colno}. "
                "Fix the JSON, or write plain lines like 'OPEN @ 0.1,0.2,0.4,0.3'"
            ) from exc
        if isinstance(data, list) and data and all(isinstance(d, dict) and "regions" not in d for d in data):
            results = [OcrResult(width, height, tuple(TextRegion.from_dict(d) for d in data))]
        else:
            results = results_from_json(stripped)
        return [r if r.width and r.height else OcrResult(width, height, r.regions) for r in results]
    return [parse_plain_lines(stripped, width, height)]
