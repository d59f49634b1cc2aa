"""Opening an image file as it looks: 8-bit sRGB colour and alpha, and a record of what that took."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageInputError, InputNotFoundError
from .alpha import composite_over_white
from .colour import to_srgb

logger = logging.getLogger(__name__)

#: modes whose picture is grey (the output is written grey too)
_GREY = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass
class ImageFileInfo:
    """What a file held and what reading it did: the report's `files` entry for it."""

    path: str
    format: str
    mode: str  # Pillow's mode of the decoded (first) frame: "P", "CMYK", "I;16", "F", ...
    bits: int  # bits per channel stored in the file: 1, 8, 16 or 32
    size: tuple[int, int]
    frames: int = 1
    alpha: bool = False
    grey: bool = False
    colour_profile: str = "none (read as sRGB)"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "size": list(self.size)}


@dataclass
class OpenedImage:
    """A file's picture: `colour` ("RGB" or "L", 8-bit sRGB, not composited), `alpha` ("L") or None."""

    colour: Image.Image
    alpha: Image.Image | None
    info: ImageFileInfo

    def for_method(self) -> Image.Image:
        """RGB as it looks on white: what OCR and the networks read."""
        return composite_over_white(self.colour, self.alpha)


def open_image_file(path: Path) -> Image.Image:
    """The picture of an image file as RGB over white, or a clear error naming the file."""
    return read_image(path).for_method()


def read_image(path: Path) -> OpenedImage:
    """Decode `path` (its first frame) into 8-bit sRGB colour and alpha; what changed is logged and
    recorded in `info`. Missing, unknown, corrupt or truncated files raise an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            raw = _raw_mode(image)
            info = ImageFileInfo(path=str(path), format=image.format or "unknown", mode=image.mode,
                                 bits=_stored_bits(image.mode, raw), size=image.size,
                                 frames=getattr(image, "n_frames", 1),
                                 grey=image.mode in _GREY or raw.split(";")[0] in ("L", "LA", "I"))
            image.load()
            icc = image.info.get("icc_profile")
            orientation = image.getexif().get(0x0112, 1)
            ImageOps.exif_transpose(image, in_place=True)  # no copy of a picture that may be huge
    except UnidentifiedImageError as exc:
        kind = path.suffix or "no extension"
        raise ImageInputError(f"cannot decode {path} as an image: Pillow does not recognise it ({kind}; e.g. HEIC, "
                              "camera RAW, a floating-point colour TIFF, or not an image at all); convert it to "
                              "PNG, JPEG, WebP or TIFF") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc):
            raise ImageInputError(f"cannot decode {path}: the file is truncated (it ends before the image does; "
                                  "copy or export it again)") from exc
        raise ImageInputError(f"cannot decode {path} as an image: {exc}") from exc
    _say_frames(info)
    if orientation not in (None, 1):
        info.notes.append(f"EXIF orientation {orientation} applied (turned upright)")
    colour, alpha = _eight_bit(image, info)
    colour, info.colour_profile = to_srgb(colour, icc, path)
    info.alpha, info.size = alpha is not None, colour.size
    return OpenedImage(colour, alpha, info)


def _raw_mode(image: Image.Image) -> str:
    """The decoder's raw mode ("RGB;16B", "LA;16B", "F;32F"), read before `load` clears it: Pillow
    hands 16-bit RGB(A) and grey + alpha over as 8-bit RGB(A), the raw mode still says what is stored."""
    for tile in image.tile:  # (codec, extents, offset, args)
        args = tile[3] if isinstance(tile[3], tuple) else (tile[3],)
        raw = next((a for a in args if isinstance(a, str) and a), None)
        if raw:
            return raw
    return image.mode


def _stored_bits(mode: str, raw: str) -> int:
    """Bits per channel in the file."""
    if mode in ("1", "P", "PA"):
        return 1 if mode == "1" else 8
    found = re.search(r";(\d+)", raw)
    if found:
        return int(found.group(1))
    return {"F": 32, "I": 32}.get(mode, 16 if mode.startswith("I;16") else 8)


def _say_frames(info: ImageFileInfo) -> None:
    if info.frames <= 1:
        return
    if info.format == "MPO":  # a camera's multi-picture JPEG: the first picture is the photo
        note = f"the first of {info.frames} pictures (a multi-picture JPEG: the others are previews or depth maps)"
        logger.info("%s: %s", info.path, note)
    else:
        note = f"holds {info.frames} frames (an animation or pages): only the first is used"
        logger.warning("%s %s", info.path, note)
    info.notes.append(note)


def _eight_bit(image: Image.Image, info: ImageFileInfo) -> tuple[Image.Image, Image.Image | None]:
    """Any decoded mode -> (8-bit "L", "RGB" or "CMYK" colour, "L" alpha or None)."""
    mode = image.mode
    if mode in ("P", "PA"):
        image = image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
    elif mode in ("La", "RGBa"):
        image = image.convert(mode.upper())
    elif mode.startswith("I") or mode == "F":
        image = Image.fromarray(_scaled(np.asarray(image), mode, info))
    elif mode in ("1", "YCbCr", "HSV"):
        image = image.convert("L" if mode == "1" else "RGB")
    elif mode == "LAB":
        from PIL import ImageCms

        image = ImageCms.applyTransform(image, ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"))
    if image.mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
        raise ImageInputError(f"cannot use {info.path}: its pixel mode {image.mode} is not one GlyphSR converts")
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    colour = image.convert(image.mode[:-1]) if alpha is not None else image
    if info.grey and colour.mode == "RGB":
        colour = colour.convert("L")
    return colour, alpha


def _scaled(values: np.ndarray, mode: str, info: ImageFileInfo) -> np.ndarray:
    """16-bit, 32-bit integer or float grey -> 8-bit by its range (Pillow's own conversion clips at
    255: a white picture)."""
    values = np.nan_to_num(values.astype(np.float64))
    if mode == "F":
        top = values.max(initial=0.0)
        full = 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else 65535.0
        info.notes.append(f"32-bit float values read as 0..{full:g} = black..white")
        values = values * (255.0 / full)
    elif mode != "I" or values.max(initial=0) > 255:  # 16-bit content
        values = values / 257.0
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)
