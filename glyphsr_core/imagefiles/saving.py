"""Writing results: the format from the extension, the input's alpha and greyness kept where the
format holds them, and a note for whatever could not be kept.

Bit depth: outputs are 8-bit. Every stage hands 8-bit images on (Text Restore's `restore_pil`
quantises its float result to uint8, OCR, Keep Words and the diffusion stages' `tensor_to_pil` work
on 8-bit pictures), so a 16-bit file would only hold 8-bit values padded out; the report and the
log say so when the input had more bits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import InvalidInputError
from .alpha import composite_over_white, join_alpha
from .opening import OpenedImage

logger = logging.getLogger(__name__)

#: extension -> (Pillow format, save options)
OUTPUT_FORMATS: dict[str, tuple[str, dict]] = {
    ".png": ("PNG", {}),
    # 4:4:4: coloured letters keep their edges (4:2:0 halves the colour resolution)
    ".jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".webp": ("WEBP", {"quality": 95}),
    ".tif": ("TIFF", {"compression": "tiff_lzw"}),
    ".tiff": ("TIFF", {"compression": "tiff_lzw"}),
}
#: modes each format stores (others are converted to the nearest one)
_MODES = {"PNG": ("L", "LA", "RGB", "RGBA"), "JPEG": ("L", "RGB"), "WEBP": ("RGB", "RGBA"),
          "TIFF": ("L", "LA", "RGB", "RGBA")}


@dataclass
class SavedImage:
    """What was written: the report's `files.output` entry."""

    path: str
    format: str
    mode: str
    size: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "mode": self.mode, "size": list(self.size),
                "bits": 8, "notes": list(self.notes)}


def check_output_path(path: Path) -> str:
    """The Pillow format for `path`'s extension; an unknown one is an error before any work starts."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise InvalidInputError(f"cannot write {path}: unknown image extension {suffix or '(none)'!r}; "
                                f"use one of {', '.join(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[suffix][0]


def save_atomically(image: Image.Image, path: Path, source: OpenedImage | None = None) -> SavedImage:
    """Write `image` (the method's RGB or L result) to `path` in the format its extension names, via a
    temporary name and a rename: an interrupt never leaves half a file. With `source` (the opened
    input) the output is grey if it was, carries its alpha where the format can, and the notes say
    what the format or the pipeline could not keep."""
    path = Path(path)
    fmt = check_output_path(path)
    saved = SavedImage(str(path), fmt, image.mode, image.size)
    image = _like_source(image, source, fmt, saved)
    if image.mode in ("LA", "RGBA") and image.mode not in _MODES[fmt] and "RGBA" not in _MODES[fmt]:
        image = composite_over_white(image.convert(image.mode[:-1]), image.getchannel("A"))  # JPEG: seen on white
    if image.mode not in _MODES[fmt]:
        image = image.convert("RGBA" if "A" in image.mode and "RGBA" in _MODES[fmt] else "RGB")
    saved.mode = image.mode
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    image.save(partial, format=fmt, **OUTPUT_FORMATS[path.suffix.lower()][1])
    partial.replace(path)
    for note in saved.notes:
        logger.warning("%s: %s", path, note)
    return saved


def _like_source(image: Image.Image, source: OpenedImage | None, fmt: str, saved: SavedImage) -> Image.Image:
    """The input's greyness and alpha back on the result; notes for what the output cannot hold."""
    if source is None:
        return image
    info = source.info
    if info.grey and image.mode == "RGB":
        image = image.convert("L")
    if source.alpha is not None:
        if fmt == "JPEG":
            saved.notes.append(f"JPEG cannot store transparency: the transparent areas of {info.path} are white "
                               "(write .png, .webp or .tif to keep them)")
        else:
            same = source.colour if source.colour.size == image.size else None
            image = join_alpha(image, source.alpha, same)
    if info.bits > 8:
        kind = "32-bit float" if info.mode == "F" else f"{info.bits}-bit"
        saved.notes.append(f"input was {kind}; output is 8-bit because the upscale works on 8-bit images "
                           "(Text Restore's image interface, OCR, Keep Words and the diffusion stages)")
    return image
