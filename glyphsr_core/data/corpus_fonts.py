"""Fonts for the synthetic corpus: Pillow's bundled font plus any system or user fonts found.

Nothing is assumed to be installed: the bundled font always works, other files are tried and
kept only when they draw distinct Latin letters and digits (symbol, emoji and CJK-only fonts
draw the same missing-glyph box for all of them).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from ..errors import InputNotFoundError, InvalidInputError

BUILTIN = "builtin"
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
#: faces that draw symbols instead of letters even though they pass a glyph check now and then
EXCLUDED_NAME_PARTS = ("math", "symbol", "emoji", "dingbat", "wingding", "icon", "braille", "webdings")
MAX_FONTS_PER_DIR = 400


@dataclass(frozen=True)
class FontChoice:
    """A usable font: `path` None means Pillow's bundled scalable font."""

    name: str
    path: str | None

    def load(self, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return _load(self.path, int(size))


@lru_cache(maxsize=512)
def _load(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size=size)


def system_font_dirs() -> list[Path]:
    home = Path.home()
    candidates = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), home / ".fonts",
                  home / ".local/share/fonts"]
    if sys.platform == "darwin":
        candidates += [Path("/Library/Fonts"), Path("/System/Library/Fonts"), home / "Library/Fonts"]
    if os.name == "nt":
        candidates.append(Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts")
    return [d for d in candidates if d.is_dir()]


def font_files(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file())
    return files[:MAX_FONTS_PER_DIR]


def check_font(path: Path) -> str | None:
    """None when the font draws distinct Latin letters and digits, else why it is rejected."""
    if any(part in path.stem.lower() for part in EXCLUDED_NAME_PARTS):
        return "symbol/math/emoji face"
    try:
        font = ImageFont.truetype(str(path), size=32)
        masks = [bytes(font.getmask(ch)) for ch in "AgR5"]
    except (OSError, ValueError) as exc:
        return f"cannot be read ({exc})"
    if any(not any(m) for m in masks) or len(set(masks)) < len(masks):
        return "does not draw Latin letters and digits"
    return None


def discover_fonts(fonts_dir: Path | None = None, system: bool = True) -> tuple[list[FontChoice], list[tuple[str, str]]]:
    """Usable fonts (bundled first, then system, then `fonts_dir`) and the rejected files with reasons.

    A given `fonts_dir` that does not exist or holds no font file is an error, not a silent skip.
    """
    choices = [FontChoice(BUILTIN, None)]
    rejected: list[tuple[str, str]] = []
    directories = system_font_dirs() if system else []
    if fonts_dir is not None:
        fonts_dir = Path(fonts_dir)
        if not fonts_dir.is_dir():
            raise InputNotFoundError(f"fonts folder not found: {fonts_dir}")
        if not font_files(fonts_dir):
            raise InvalidInputError(f"no font files ({', '.join(FONT_SUFFIXES)}) in {fonts_dir}")
        directories.append(fonts_dir)
    seen: set[str] = set()
    for directory in directories:
        for path in font_files(directory):
            key = str(path.resolve())
            if key in seen:
                continue
            seen.add(key)
            reason = check_font(path)
            if reason is None:
                choices.append(FontChoice(path.stem, str(path)))
            else:
                rejected.append((str(path), reason))
    return choices, rejected
