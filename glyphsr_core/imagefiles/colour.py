"""Colour profiles: everything the method reads is sRGB, which is what its networks and OCR know.

An embedded ICC profile other than sRGB (Adobe RGB, Display P3, a camera's or a printer's CMYK) is
converted to sRGB with LittleCMS (relative colorimetric, black point compensation), so a wide-gamut
picture keeps its colours; colours outside sRGB are clipped to its gamut. The output is written as
sRGB with no profile embedded (untagged files are read as sRGB everywhere), and the report says
what was converted.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, ImageCms

logger = logging.getLogger(__name__)

#: ImageCms.Intent.RELATIVE_COLORIMETRIC and ImageCms.Flags.BLACKPOINTCOMPENSATION (numbers: Pillow 10.1 lacks the enums)
_RELATIVE_COLORIMETRIC, _BLACK_POINT_COMPENSATION = 1, 0x2000
#: Pillow mode -> the ICC colour space a profile must describe to convert it
_SPACES = {"RGB": "RGB", "CMYK": "CMYK"}


def profile_name(profile: ImageCms.ImageCmsProfile) -> str:
    """The profile's description, e.g. "Display P3" (one line)."""
    return " ".join((ImageCms.getProfileDescription(profile) or "unnamed profile").split())


def to_srgb(colour: Image.Image, icc: bytes | None, path: object) -> tuple[Image.Image, str]:
    """`colour` ("L", "RGB" or "CMYK") as sRGB ("L" or "RGB"), and a phrase for the report saying what
    was done with its profile."""
    if not icc:
        return _plain(colour), "none (read as sRGB)"
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = profile_name(profile)
        space = profile.profile.xcolor_space.strip()
    except (OSError, ImageCms.PyCMSError, ValueError) as exc:
        logger.warning("%s: its ICC profile cannot be read (%s); colours read as sRGB", path, exc)
        return _plain(colour), "unreadable (read as sRGB)"
    if space != _SPACES.get(colour.mode) or (space == "RGB" and "srgb" in name.lower().replace(" ", "")):
        return _plain(colour), f"{name} (used as stored)"
    try:
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        converted = ImageCms.profileToProfile(colour, profile, srgb, outputMode="RGB",
                                              renderingIntent=_RELATIVE_COLORIMETRIC,
                                              flags=_BLACK_POINT_COMPENSATION)
    except ImageCms.PyCMSError as exc:
        logger.warning("%s: its ICC profile %r cannot convert to sRGB (%s); colours read as stored", path, name, exc)
        return _plain(colour), f"{name} (not convertible; used as stored)"
    logger.info("%s: colours converted from its ICC profile %r to sRGB", path, name)
    return converted, f"{name} converted to sRGB"


def _plain(colour: Image.Image) -> Image.Image:
    """No profile to apply: CMYK by Pillow's plain formula (Adobe's inverted CMYK is undone by its
    JPEG decoder), everything else as it is."""
    return colour.convert("RGB") if colour.mode == "CMYK" else colour
