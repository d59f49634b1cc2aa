"""Text found in an image: regions with normalised geometry, and one OCR result per image.

Coordinates are fractions (0..1) of the source image so a result stays valid when the image is
resized (OCR on the LQ input, glyph map at the upscaled size). `GLYPHSR_TEXT` in ComfyUI is a
`list[OcrResult]`, one per batch item.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]
Box = tuple[float, float, float, float]


class TextFormatError(ValueError):
    """Raised when text data (JSON or dicts) does not describe OCR results."""


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise TextFormatError(f"{what} must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise TextFormatError(f"{what} must be finite, got {value!r}")
    return number


def quad_from_box(box: Sequence[float]) -> Quad:
    """Clockwise quad (top-left first) of an axis-aligned box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


@dataclass(frozen=True)
class TextRegion:
    """One word (or line) of text.

    `quad` is four (x, y) points, clockwise from the top-left corner of the text as read, in
    0..1 fractions of the image; `None` when the position is unknown (words typed by hand).
    `text` is kept NFC-normalised, so "é" typed, pasted or read is the same character everywhere
    (prompts, JSON, glyph map, word matching).
    """

    text: str
    confidence: float = 1.0
    quad: Quad | None = None

    def __post_init__(self) -> None:
        if isinstance(self.text, str) and not unicodedata.is_normalized("NFC", self.text):
            object.__setattr__(self, "text", unicodedata.normalize("NFC", self.text))

    @property
    def box(self) -> Box | None:
        """Axis-aligned bounds (x0, y0, x1, y1) of the quad."""
        if self.quad is None:
            return None
        xs = [p[0] for p in self.quad]
        ys = [p[1] for p in self.quad]
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def center(self) -> Point | None:
        if self.quad is None:
            return None
        return (sum(p[0] for p in self.quad) / 4.0, sum(p[1] for p in self.quad) / 4.0)

    def pixel_quad(self, width: int, height: int) -> list[Point] | None:
        """The quad in pixel coordinates of an image of the given size."""
        if self.quad is None:
            return None
        return [(x * width, y * height) for x, y in self.quad]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "confidence": round(float(self.confidence), 5)}
        if self.quad is not None:
            out["box"] = [round(v, 6) for v in self.box]  # type: ignore[union-attr]
            out["quad"] = [[round(x, 6), round(y, 6)] for x, y in self.quad]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "TextRegion":
        if not isinstance(data, dict):
            raise TextFormatError(f"a text region must be an object, got {type(data).__name__}")
        text = data.get("text")
        if not isinstance(text, str):
            raise TextFormatError(f"a text region needs a string 'text', got {text!r}")
        confidence = _finite(data.get("confidence", 1.0), "'confidence'")
        quad: Quad | None = None
        if data.get("quad") is not None:
            raw = data["quad"]
            if not isinstance(raw, (list, tuple)) or len(raw) != 4:
                raise TextFormatError(f"'quad' of {text!r} must be 4 [x, y] points, got {raw!r}")
            points = []
            for point in raw:
                if not isinstance(point, (list, tuple)) or len(point) != 2:
                    raise TextFormatError(f"'quad' of {text!r} must be 4 [x, y] points, got {raw!r}")
                points.append((_finite(point[0], "quad x"), _finite(point[1], "quad y")))
            quad = tuple(points)  # type: ignore[assignment]
        elif data.get("box") is not None:
            raw = data["box"]
            if not isinstance(raw, (list, tuple)) or len(raw) != 4:
                raise TextFormatError(f"'box' of {text!r} must be [x0, y0, x1, y1], got {raw!r}")
            quad = quad_from_box([_finite(v, "box value") for v in raw])
        return cls(text=text, confidence=confidence, quad=quad)


@dataclass(frozen=True)
class OcrResult:
    """The text of one image, in reading order, with the size of the image it was read from."""

    width: int
    height: int
    regions: tuple[TextRegion, ...] = field(default_factory=tuple)

    @property
    def words(self) -> list[str]:
        return [r.text for r in self.regions]

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def filtered(self, min_confidence: float) -> "OcrResult":
        kept = tuple(r for r in self.regions if r.confidence >= min_confidence)
        return OcrResult(self.width, self.height, kept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "text": self.text,
            "regions": [r.to_dict() for r in self.regions],
        }

    @classmethod
    def from_dict(cls, data: Any) -> "OcrResult":
        if not isinstance(data, dict):
            raise TextFormatError(f"an OCR result must be an object, got {type(data).__name__}")
        regions = data.get("regions", [])
        if not isinstance(regions, list):
            raise TextFormatError("'regions' must be a list of text regions")
        width = int(_finite(data.get("width", 0), "'width'"))
        height = int(_finite(data.get("height", 0), "'height'"))
        if width < 0 or height < 0:
            raise TextFormatError(f"image size must not be negative, got {width}x{height}")
        return cls(width, height, tuple(TextRegion.from_dict(r) for r in regions))


def results_to_json(results: Iterable[OcrResult], indent: int | None = 2) -> str:
    """JSON for a batch: a list with one object per image (readable and hand-editable)."""
    return json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=indent)


def results_from_json(text: str) -> list[OcrResult]:
    """Parse what `results_to_json` wrote; a single object is read as a batch of one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TextFormatError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise TextFormatError("expected a JSON object or a list of objects with 'regions'")
    return [OcrResult.from_dict(item) for item in data]
