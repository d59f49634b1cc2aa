"""Fonts for drawing OCR words in any script: glyph maps, previews and reports.

OCR returns accented Latin, Greek, Cyrillic, CJK and Hangul; Pillow's built-in font only has ASCII.
Words are drawn from an ordered chain of fonts:

1. `font_path`, when the user gives one;
2. Pillow's built-in font (ASCII), so ASCII glyph maps stay exactly what existing corpora and
   trained text branches saw;
3. the fonts shipped in the pack's `fonts/` folder (Noto Sans: Latin with diacritics, Greek,
   Cyrillic; OFL), then any font a user adds there;
4. well-known CJK / Hangul / wide-coverage fonts of the machine (Debian's `fonts-noto-cjk`,
   `fonts-wqy-microhei`, Windows' Microsoft YaHei and Malgun Gothic, macOS' Hiragino ...);
5. any other font file of the machine, searched only for characters still missing.

A word is drawn in the first font that has all its characters; otherwise in the font that has
most of them, each remaining character in the first font that has it. A character no font has is
left blank (never a tofu box) and logged once with its code point.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

BUILTIN = "builtin"
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
PACK_FONTS_DIR = Path(__file__).resolve().parents[2] / "fonts"
#: system fonts tried before any other, by file name (first found wins within equal coverage)
PREFERRED_SYSTEM_FONTS = (
    # Linux: Debian/Ubuntu packages fonts-noto-cjk, fonts-wqy-microhei, fonts-wqy-zenhei, fonts-nanum,
    # fonts-droid-fallback, fonts-dejavu-core
    "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "NotoSansCJKjp-Regular.otf", "NotoSansCJKkr-Regular.otf",
    "wqy-microhei.ttc", "wqy-zenhei.ttc", "NanumGothic.ttf", "DroidSansFallbackFull.ttf", "DejaVuSans.ttf",
    # Windows
    "msyh.ttc", "msyh.ttf", "YuGothM.ttc", "meiryo.ttc", "malgun.ttf", "msgothic.ttc", "simsun.ttc", "arial.ttf",
    # macOS
    "PingFang.ttc", "Hiragino Sans GB.ttc", "AppleSDGothicNeo.ttc", "Arial Unicode.ttf",
)
MAX_SCANNED_FONTS = 2000
_PROBE_SIZE = 32
#: a code point no font maps, so its mask is the font's missing-glyph (.notdef) drawing
_NOT_A_CHARACTER = "\U0010fffd"


@dataclass(frozen=True)
class FontSource:
    """One font file (or Pillow's built-in font when `path` is None)."""

    name: str
    path: str | None

    def load(self, size: int) -> ImageFont.FreeTypeFont:
        return _load(self.path, int(size))


@lru_cache(maxsize=256)
def _load(path: str | None, size: int) -> ImageFont.FreeTypeFont:
    if path is None:
        return ImageFont.load_default(size=size)  # type: ignore[return-value]
    return ImageFont.truetype(path, size=size)


def _font_dirs() -> list[Path]:
    home = Path.home()
    dirs = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), home / ".fonts", home / ".local/share/fonts"]
    if sys.platform == "darwin":
        dirs += [Path("/System/Library/Fonts"), Path("/Library/Fonts"), home / "Library/Fonts",
                 Path("/System/Library/AssetsV2")]
    if os.name == "nt":
        dirs += [Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts",
                 Path(os.environ.get("LOCALAPPDATA", "")) / "Microsoft/Windows/Fonts"]
    return [d for d in dirs if d.is_dir()]


def _files_in(directory: Path, limit: int = MAX_SCANNED_FONTS) -> list[Path]:
    found = []
    for root, _, names in os.walk(directory):
        for name in sorted(names):
            if name.lower().endswith(FONT_SUFFIXES):
                found.append(Path(root) / name)
                if len(found) >= limit:
                    return found
    return found


def _is_blank_by_nature(ch: str) -> bool:
    """Spaces and format/control characters draw nothing in any font."""
    return ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp")


class FontChain:
    """An ordered list of fonts and which characters each one draws."""

    def __init__(self, preferred: list[FontSource], fallback_dirs: list[Path]) -> None:
        self.sources: list[FontSource] = []
        self._seen: set[str] = set()
        for source in preferred:
            self._add(source)
        self._fallback_dirs = fallback_dirs
        self._scanned = False
        self._coverage: dict[tuple[int, str], bool] = {}
        self._notdef: dict[int, tuple] = {}
        self._lock = threading.Lock()

    def _add(self, source: FontSource) -> None:
        key = BUILTIN if source.path is None else os.path.realpath(source.path)
        if key in self._seen:
            return
        try:
            source.load(_PROBE_SIZE)
        except (OSError, ValueError) as exc:
            logger.debug("font skipped: %s (%s)", source.path, exc)
            return
        self._seen.add(key)
        self.sources.append(source)

    def _mask(self, index: int, ch: str) -> tuple:
        mask = self.sources[index].load(_PROBE_SIZE).getmask(ch)
        return mask.size, bytes(mask)

    def has(self, index: int, ch: str) -> bool:
        """Whether font `index` draws `ch` with a glyph of its own (not its missing-glyph box)."""
        if _is_blank_by_nature(ch):
            return True
        key = (index, ch)
        if key not in self._coverage:
            try:
                if index not in self._notdef:
                    self._notdef[index] = self._mask(index, _NOT_A_CHARACTER)
                drawn = self._mask(index, ch)
                self._coverage[key] = any(drawn[1]) and drawn != self._notdef[index]
            except (OSError, ValueError):  # colour-bitmap fonts that cannot be drawn at this size
                self._coverage[key] = False
        return self._coverage[key]

    def find(self, ch: str) -> int | None:
        """The first font that draws `ch`, scanning the machine's other fonts if none of the chain does."""
        with self._lock:
            for index in range(len(self.sources)):
                if self.has(index, ch):
                    return index
            if not self._scanned:
                self._scanned = True
                start = len(self.sources)
                for directory in self._fallback_dirs:
                    for path in _files_in(directory):
                        self._add(FontSource(path.stem, str(path)))
                for index in range(start, len(self.sources)):
                    if self.has(index, ch):
                        return index
        return None

    def runs(self, text: str) -> list[tuple[int | None, str]]:
        """`text` split into (font index, characters) runs; index None: no font has them.

        A word keeps one typeface wherever possible: the first font that has all of its drawable
        characters (else the one that has most of them) draws every character it has; each other
        character goes to the first font that has it.
        """
        needed = [ch for ch in text if not _is_blank_by_nature(ch)]
        for index in range(len(self.sources)):
            if all(self.has(index, ch) for ch in needed):
                return [(index, text)]
        found = {ch: self.find(ch) for ch in set(needed)}
        drawable = [ch for ch in needed if found[ch] is not None]
        base = max(range(len(self.sources)), key=lambda i: (sum(self.has(i, ch) for ch in drawable), -i))
        runs: list[tuple[int | None, str]] = []
        for ch in text:
            if _is_blank_by_nature(ch):  # a space never counts as missing, even beside a missing character
                index = runs[-1][0] if runs and runs[-1][0] is not None else base
            else:
                index = base if self.has(base, ch) else found[ch]
            if runs and runs[-1][0] == index:
                runs[-1] = (index, runs[-1][1] + ch)
            else:
                runs.append((index, ch))
        return runs

    def missing(self, text: str) -> list[str]:
        """The distinct characters of `text` that no available font draws, in order."""
        out: list[str] = []
        for index, run in self.runs(text):
            if index is None:
                out.extend(ch for ch in run if ch not in out and not _is_blank_by_nature(ch))
        return out


_reported: set[str] = set()


def _report_missing(chars: list[str], text: str) -> None:
    new = [ch for ch in chars if ch not in _reported]
    if not new:
        return
    _reported.update(new)
    listed = ", ".join(f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')})" for ch in new)
    logger.warning("GlyphSR fonts: no available font draws %s in %r; left blank instead of a missing-glyph box. "
                   "Install a font with these characters (e.g. Debian/Ubuntu: apt install fonts-noto-cjk) or "
                   "give Glyph Render a font_path.", listed, text)


@lru_cache(maxsize=8)
def font_chain(font_path: str | None = None) -> FontChain:
    """The chain for `font_path` (None: the default chain); built once per path."""
    preferred: list[FontSource] = []
    if font_path:
        preferred.append(FontSource(Path(font_path).stem, font_path))
    preferred.append(FontSource(BUILTIN, None))
    if PACK_FONTS_DIR.is_dir():
        preferred += [FontSource(p.stem, str(p)) for p in _files_in(PACK_FONTS_DIR)]
    dirs = _font_dirs()
    by_name: dict[str, Path] = {}
    for directory in dirs:
        for path in _files_in(directory):
            by_name.setdefault(path.name, path)
    preferred += [FontSource(Path(name).stem, str(by_name[name])) for name in PREFERRED_SYSTEM_FONTS if name in by_name]
    return FontChain(preferred, dirs)


def render_text(text: str, size: int, font_path: str | None = None, report_missing: bool = True) -> Image.Image:
    """`text` white on black ("L"), cropped to its ink box, `size` px font; NFC-normalised first.

    `report_missing=False` draws without the missing-character warning: for labels of words that
    are not drawn into the glyph map (e.g. tokens the word filter dropped, shown in a preview).
    """
    text = unicodedata.normalize("NFC", text)
    chain = font_chain(font_path)
    runs = chain.runs(text)
    if len(runs) == 1 and runs[0][0] is not None:
        font = chain.sources[runs[0][0]].load(size)
        left, top, right, bottom = font.getbbox(text)
        image = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
        ImageDraw.Draw(image).text((-left, -top), text, fill=255, font=font)
        return image
    if report_missing:
        _report_missing(chain.missing(text), text)
    scratch = ImageDraw.Draw(Image.new("L", (1, 1)))
    placed: list[tuple[float, ImageFont.FreeTypeFont, str]] = []
    boxes = []
    x = 0.0
    for index, run in runs:
        if index is None:  # blank space where the missing characters would be
            x += 0.6 * size * len(run)
            continue
        font = chain.sources[index].load(size)
        placed.append((x, font, run))
        boxes.append(scratch.textbbox((x, 0), run, font=font, anchor="ls"))
        x += scratch.textlength(run, font=font)
    if not boxes:
        return Image.new("L", (1, 1), 0)
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    image = Image.new("L", (max(1, math.ceil(right - left)), max(1, math.ceil(bottom - top))), 0)
    draw = ImageDraw.Draw(image)
    for x, font, run in placed:
        draw.text((x - left, -top), run, fill=255, font=font, anchor="ls")
    return image
