"""The synthetic text corpus: rendered scenes of words with exact ground truth, degraded into LQ inputs.

Each sample is a scene of signs, labels, storefront bands and free text lines on a procedural or
photo background, with varied fonts, sizes, colours, rotations and slight perspective. It is
written as HQ image, one LQ image per scale, text mask, glyph map and one `metadata.jsonl` row.
The glyph map and mask come from `glyphsr_core.text.glyphs`, the renderer inference uses, so the text
branch sees the same kind of glyph hint in training and at run time.

Every sample is generated from its own seed (derived from the corpus seed and its index), so the
corpus is identical whatever the number of worker processes.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from ..errors import InputNotFoundError, InvalidInputError
from ..text.glyphs import perspective_coefficients, render_glyph_map, render_text_mask
from ..types import OcrResult, TextRegion
from .degrade import MODES, check_scale, degrade
from .corpus_fonts import FontChoice
from .vocabulary import random_word

METADATA = "metadata.jsonl"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
PNG_COMPRESS_LEVEL = 3  # files ~10 % larger than the default, written twice as fast

Point = tuple[float, float]


class CorpusError(InvalidInputError):
    """A corpus folder or metadata row is missing or malformed."""


# ---------------------------------------------------------------------------------------------
# loading


@dataclass(frozen=True)
class CorpusWord:
    text: str
    quad: tuple[Point, Point, Point, Point]  # pixels of the HQ image, clockwise from top-left


@dataclass(frozen=True)
class CorpusSample:
    """One row of `metadata.jsonl` with its paths resolved against the corpus folder."""

    id: str
    hq_path: Path
    lq_paths: dict[int, Path]
    mask_path: Path
    glyph_path: Path
    size: tuple[int, int]
    words: tuple[CorpusWord, ...]
    font: str
    colors: dict[str, Any] = field(default_factory=dict)
    degradation: dict[int, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0

    def ocr_result(self) -> OcrResult:
        """The ground truth as an `OcrResult` with normalised quads (what glyph/mask rendering takes)."""
        return words_to_result(self.words, *self.size)


def words_to_result(words: Sequence[CorpusWord], width: int, height: int) -> OcrResult:
    regions = tuple(
        TextRegion(w.text, 1.0, tuple((x / width, y / height) for x, y in w.quad))  # type: ignore[arg-type]
        for w in words
    )
    return OcrResult(width, height, regions)


def _row_to_sample(root: Path, row: Any, line_no: int) -> CorpusSample:
    where = f"{root / METADATA} line {line_no}"
    if not isinstance(row, dict):
        raise CorpusError(f"{where}: expected a JSON object")
    for key in ("id", "hq", "lq", "mask", "glyph", "size", "words"):
        if key not in row:
            raise CorpusError(f"{where}: missing '{key}'")
    try:
        words = tuple(
            CorpusWord(str(w["text"]), tuple((float(p[0]), float(p[1])) for p in w["quad"]))  # type: ignore[arg-type]
            for w in row["words"]
        )
        if any(len(w.quad) != 4 for w in words):
            raise ValueError("a quad needs 4 points")
        size = (int(row["size"][0]), int(row["size"][1]))
        lq_paths = {int(scale): root / path for scale, path in dict(row["lq"]).items()}
        degradation = {int(scale): params for scale, params in dict(row.get("degradation", {})).items()}
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CorpusError(f"{where}: malformed row ({exc})") from exc
    return CorpusSample(
        id=str(row["id"]), hq_path=root / row["hq"], lq_paths=lq_paths, mask_path=root / row["mask"],
        glyph_path=root / row["glyph"], size=size, words=words, font=str(row.get("font", "")),
        colors=dict(row.get("colors", {})), degradation=degradation, seed=int(row.get("seed", 0)),
    )


def load_corpus(directory: str | Path, check_files: bool = True) -> list[CorpusSample]:
    """Read `DIR/metadata.jsonl`; with `check_files`, every referenced image must exist."""
    root = Path(directory)
    if not root.is_dir():
        raise InputNotFoundError(f"corpus folder not found: {root}")
    meta = root / METADATA
    if not meta.is_file():
        raise InputNotFoundError(f"{meta} not found: not a corpus folder (make one with `python -m glyphsr_core make-corpus`)")
    samples = []
    with meta.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{meta} line {line_no}: not valid JSON ({exc.msg})") from exc
            samples.append(_row_to_sample(root, row, line_no))
    if check_files:
        missing = [str(p) for s in samples for p in (s.hq_path, s.mask_path, s.glyph_path, *s.lq_paths.values())
                   if not p.is_file()]
        if missing:
            raise CorpusError(f"{len(missing)} file(s) named in {meta} are missing, e.g. {missing[0]}")
    return samples


# ---------------------------------------------------------------------------------------------
# backgrounds


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    small = (rng.random((cells, cells)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def procedural_background(rng: np.random.Generator, size: int) -> tuple[Image.Image, dict[str, Any]]:
    """A flat, gradient, textured, striped or brick-like background."""
    kind = str(rng.choice(["flat", "gradient", "texture", "stripes", "bricks"], p=[0.15, 0.25, 0.3, 0.15, 0.15]))
    base, other = _random_color(rng), _random_color(rng)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "flat":
        weight = np.zeros((size, size), dtype=np.float32)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        weight = (xs * math.cos(angle) + ys * math.sin(angle))
        weight = (weight - weight.min()) / max(1e-6, float(weight.max() - weight.min()))
    elif kind == "texture":
        weight = 0.6 * _smooth_noise(rng, size, int(rng.integers(4, 16))) + 0.4 * _smooth_noise(rng, size, int(rng.integers(32, 96)))
    elif kind == "stripes":
        period = rng.uniform(0.03, 0.2)
        angle = rng.uniform(0, math.pi)
        weight = 0.5 + 0.5 * np.sin(2 * math.pi * (xs * math.cos(angle) + ys * math.sin(angle)) / period)
        weight = weight * 0.35
    else:
        brick_h = rng.uniform(0.04, 0.1)
        rows = np.floor(ys / brick_h)
        offset = (rows % 2) * 0.5
        brick_w = brick_h * 2.2
        fx = ((xs / brick_w + offset) % 1.0)
        fy = ((ys / brick_h) % 1.0)
        weight = ((fx < 0.06) | (fy < 0.1)).astype(np.float32) * 0.5
    weight = weight[:, :, None] * rng.uniform(0.3, 1.0)
    image = base * (1 - weight) + other * weight
    grain = rng.normal(0, rng.uniform(0, 6), size=(size, size, 1)).astype(np.float32)
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(image), {"kind": kind, "base": base.astype(int).tolist(), "other": other.astype(int).tolist()}


def photo_background(path: Path, rng: np.random.Generator, size: int) -> Image.Image:
    """A random square crop of a photo, resized to `size` (raises OSError/UnidentifiedImageError)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        side = min(image.size)
        crop = int(side * rng.uniform(0.5, 1.0))
        x = int(rng.integers(0, image.width - crop + 1))
        y = int(rng.integers(0, image.height - crop + 1))
        return image.crop((x, y, x + crop, y + crop)).resize((size, size), Image.Resampling.BICUBIC)


def list_images(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


# ---------------------------------------------------------------------------------------------
# scenes


PANEL_STYLES = ("sign", "label", "storefront", "plain")
PANEL_STYLE_PROBS = (0.35, 0.2, 0.15, 0.3)
FONT_SIZES = {"sign": (22, 56), "label": (16, 30), "storefront": (34, 72), "plain": (18, 48)}
MIN_CONTRAST = 110.0  # luminance difference (0..255) between ink and what is behind it


def _luminance(color: Sequence[float]) -> float:
    return 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]


def _contrasting_color(rng: np.random.Generator, behind: float) -> tuple[int, int, int]:
    """A random colour whose luminance differs from `behind` by at least MIN_CONTRAST."""
    for _ in range(32):
        color = rng.integers(0, 256, size=3)
        if abs(_luminance(color) - behind) >= MIN_CONTRAST:
            return tuple(int(c) for c in color)  # type: ignore[return-value]
    return (0, 0, 0) if behind > 127 else (255, 255, 255)


def _apply_homography(coefficients: Sequence[float], points: np.ndarray) -> np.ndarray:
    a, b, c, d, e, f, g, h = coefficients
    x, y = points[:, 0], points[:, 1]
    w = g * x + h * y + 1.0
    return np.stack([(a * x + b * y + c) / w, (d * x + e * y + f) / w], axis=1)


@dataclass
class _Layout:
    style: str
    font_size: int
    boxes: list[tuple[str, tuple[float, float], tuple[float, float, float, float]]]  # word, anchor, ink box (panel px)
    width: int
    height: int
    pad: int


def _layout_panel(rng: np.random.Generator, font: FontChoice, scene_size: int) -> _Layout:
    style = str(rng.choice(PANEL_STYLES, p=PANEL_STYLE_PROBS))
    low, high = FONT_SIZES[style]
    font_size = int(rng.integers(low, high + 1))
    n_lines = 1 if style == "storefront" else int(rng.integers(1, 4))
    max_words = 2 if style == "storefront" else 3
    lines = [[random_word(rng)[0] for _ in range(int(rng.integers(1, max_words + 1)))] for _ in range(n_lines)]
    loaded = font.load(font_size)
    scratch = ImageDraw.Draw(Image.new("L", (1, 1)))
    space = scratch.textlength(" ", font=loaded) * float(rng.uniform(1.2, 1.8))
    ascent, descent = loaded.getmetrics() if hasattr(loaded, "getmetrics") else (font_size, font_size // 4)
    line_height = int((ascent + descent) * rng.uniform(1.05, 1.35))
    pad = int(font_size * (rng.uniform(0.15, 0.3) if style == "plain" else rng.uniform(0.35, 0.8)))
    widths = [sum(scratch.textlength(w, font=loaded) for w in line) + space * (len(line) - 1) for line in lines]
    inner_w = int(math.ceil(max(widths)))
    if style == "storefront":
        inner_w = max(inner_w, int(scene_size * rng.uniform(0.5, 0.9)) - 2 * pad)
    align = str(rng.choice(["left", "center"]))
    boxes = []
    y = pad
    for line, line_w in zip(lines, widths):
        x = pad + (0.0 if align == "left" else (inner_w - line_w) / 2.0)
        for word in line:
            boxes.append((word, (x, y), scratch.textbbox((x, y), word, font=loaded)))
            x += scratch.textlength(word, font=loaded) + space
        y += line_height
    height = int(y - line_height + ascent + descent + pad)
    return _Layout(style, font_size, boxes, inner_w + 2 * pad, height, pad)


def _place(rng: np.random.Generator, layout: _Layout, scene_size: int, taken: list[tuple[float, float, float, float]],
           margin: int = 6) -> np.ndarray | None:
    """Scene corners of the panel after rotation + slight perspective, or None when it does not fit."""
    w, h = layout.width, layout.height
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    for _ in range(8):
        angle = 0.0 if rng.random() < 0.3 else math.radians(rng.uniform(-8, 8))
        jitter = rng.uniform(-0.04, 0.04, size=(4, 2)) * np.array([w, h]) if rng.random() < 0.6 else np.zeros((4, 2))
        centred = corners - np.array([w / 2, h / 2]) + jitter
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        moved = centred @ rotation.T
        span = moved.max(axis=0) - moved.min(axis=0)
        if span[0] > scene_size - 2 * margin or span[1] > scene_size - 2 * margin:
            return None
        low = margin - moved.min(axis=0)
        high = scene_size - margin - moved.max(axis=0)
        centre = np.array([rng.uniform(low[0], high[0]), rng.uniform(low[1], high[1])])
        placed = moved + centre
        box = (*placed.min(axis=0), *placed.max(axis=0))
        if all(box[2] + margin < t[0] or t[2] + margin < box[0] or box[3] + margin < t[1] or t[3] + margin < box[1]
               for t in taken):
            return placed
    return None


def _draw_panel(layout: _Layout, font: FontChoice, panel_color: tuple[int, int, int] | None,
                ink: tuple[int, int, int], rng: np.random.Generator) -> Image.Image:
    panel = Image.new("RGBA", (layout.width, layout.height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(panel)
    if panel_color is not None:
        radius = int(min(layout.width, layout.height) * rng.uniform(0.0, 0.25)) if layout.style != "storefront" else 0
        draw.rounded_rectangle((0, 0, layout.width - 1, layout.height - 1), radius=radius, fill=(*panel_color, 255))
        if layout.style in ("sign", "label") and rng.random() < 0.5:
            border = max(1, layout.pad // 4)
            draw.rounded_rectangle((border, border, layout.width - 1 - border, layout.height - 1 - border), radius=radius,
                                   outline=(*ink, 255), width=max(1, border // 2))
    loaded = font.load(layout.font_size)
    for word, anchor, _ in layout.boxes:
        draw.text(anchor, word, font=loaded, fill=(*ink, 255))
    return panel


@dataclass
class Scene:
    image: Image.Image
    words: list[CorpusWord]
    font: str
    colors: dict[str, Any]


def render_scene(rng: np.random.Generator, size: int, fonts: Sequence[FontChoice],
                 backgrounds: Sequence[Path] = (), problems: list[str] | None = None) -> Scene:
    """Draw one scene; undecodable background photos are noted in `problems` and replaced by procedural ones."""
    font = fonts[int(rng.integers(0, len(fonts)))]
    background_info: dict[str, Any]
    image = None
    if backgrounds and rng.random() < 0.6:
        path = backgrounds[int(rng.integers(0, len(backgrounds)))]
        try:
            image = photo_background(path, rng, size)
            background_info = {"kind": "photo", "path": path.name}
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            if problems is not None:
                problems.append(f"background {path}: cannot be decoded ({exc})")
    if image is None:
        image, background_info = procedural_background(rng, size)
    scene = image.convert("RGBA")
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    taken: list[tuple[float, float, float, float]] = []
    words: list[CorpusWord] = []
    ink_colors: list[list[int]] = []
    panel_colors: list[list[int] | None] = []
    n_panels = int(rng.integers(1, 5))
    attempts = 0
    while (len(panel_colors) < n_panels or not words) and attempts < 12:
        attempts += 1
        layout = _layout_panel(rng, font, size)
        placed = _place(rng, layout, size, taken)
        if placed is None:
            continue
        x0, y0 = (int(math.floor(v)) for v in placed.min(axis=0))
        x1, y1 = (int(math.ceil(v)) for v in placed.max(axis=0))
        if layout.style == "plain":
            panel_color = None
            behind = float(gray[max(0, y0):y1, max(0, x0):x1].mean())
            spread = float(gray[max(0, y0):y1, max(0, x0):x1].std())
            if spread > 45:  # too busy behind free text: give it a backing plate
                panel_color = tuple(int(c) for c in rng.integers(0, 256, size=3))
                behind = _luminance(panel_color)
        else:
            panel_color = tuple(int(c) for c in rng.integers(0, 256, size=3))
            behind = _luminance(panel_color)
        ink = _contrasting_color(rng, behind)
        panel = _draw_panel(layout, font, panel_color, ink, rng)
        src = np.array([[0, 0], [layout.width, 0], [layout.width, layout.height], [0, layout.height]], dtype=np.float64)
        to_panel = perspective_coefficients(placed - np.array([x0, y0]), src)
        warped = panel.convert("RGBa").transform((x1 - x0, y1 - y0), Image.Transform.PERSPECTIVE, to_panel,
                                                 resample=Image.Resampling.BICUBIC).convert("RGBA")
        scene.alpha_composite(warped, (x0, y0))
        to_scene = perspective_coefficients(src, placed)
        for word, _, (l, t, r, b) in layout.boxes:
            quad = _apply_homography(to_scene, np.array([[l, t], [r, t], [r, b], [l, b]], dtype=np.float64))
            words.append(CorpusWord(word, tuple((round(float(x), 2), round(float(y), 2)) for x, y in quad)))  # type: ignore[arg-type]
            ink_colors.append(list(ink))
        panel_colors.append(list(panel_color) if panel_color is not None else None)
        taken.append((x0, y0, x1, y1))
    colors = {"background": background_info, "panels": panel_colors, "text": ink_colors}
    return Scene(scene.convert("RGB"), words, font.name, colors)


# ---------------------------------------------------------------------------------------------
# writing


@dataclass(frozen=True)
class CorpusConfig:
    out: Path
    size: int = 512
    scales: tuple[int, ...] = (4, 8)
    seed: int = 0
    mode: str = "realistic"
    fonts: tuple[FontChoice, ...] = (FontChoice("builtin", None),)
    backgrounds: tuple[Path, ...] = ()

    def validate(self) -> None:
        if self.size < 64:
            raise InvalidInputError(f"--size must be at least 64 pixels, got {self.size}")
        if not self.scales:
            raise InvalidInputError("give at least one scale (e.g. --scales 4,8)")
        for scale in self.scales:
            check_scale(scale)
            if self.size % scale:
                raise InvalidInputError(f"--size {self.size} is not a multiple of scale {scale}")
        if self.mode not in MODES:
            raise InvalidInputError(f"unknown degradation {self.mode!r}; expected one of {', '.join(MODES)}")
        if not self.fonts:
            raise InvalidInputError("no usable fonts")


def sample_seed(corpus_seed: int, index: int) -> int:
    """The seed of sample `index`: independent of worker count and of the other samples."""
    return int(np.random.SeedSequence([int(corpus_seed), int(index)]).generate_state(1)[0])


def degradation_seed(seed: int, scale: int) -> int:
    return int(np.random.SeedSequence([int(seed), 1000 + int(scale)]).generate_state(1)[0])


def make_sample(config: CorpusConfig, index: int) -> tuple[dict[str, Any], list[str]]:
    """Render, degrade and write sample `index`; return its metadata row and any problems met."""
    seed = sample_seed(config.seed, index)
    rng = np.random.default_rng(seed)
    problems: list[str] = []
    scene = render_scene(rng, config.size, config.fonts, config.backgrounds, problems)
    sample_id = f"{index:06d}"
    width, height = scene.image.size
    result = words_to_result(scene.words, width, height)
    row: dict[str, Any] = {"id": sample_id, "hq": f"hq/{sample_id}.png", "lq": {}, "mask": f"mask/{sample_id}.png",
                           "glyph": f"glyph/{sample_id}.png", "size": [width, height],
                           "words": [{"text": w.text, "quad": [list(p) for p in w.quad]} for w in scene.words],
                           "font": scene.font, "colors": scene.colors, "degradation": {}, "seed": seed}
    _save(scene.image, config.out / row["hq"])
    for scale in config.scales:
        lq, params = degrade(scene.image, scale, degradation_seed(seed, scale), config.mode)
        row["lq"][str(scale)] = f"lq_x{scale}/{sample_id}.png"
        row["degradation"][str(scale)] = params
        _save(lq, config.out / row["lq"][str(scale)])
    _save(render_text_mask(result, width, height), config.out / row["mask"])
    _save(render_glyph_map(result, width, height), config.out / row["glyph"])
    return row, problems


def _save(image: Image.Image, path: Path) -> None:
    image.save(path, compress_level=PNG_COMPRESS_LEVEL)


_worker_config: CorpusConfig | None = None


def _init_worker(config: CorpusConfig) -> None:
    global _worker_config
    _worker_config = config


def _work(index: int) -> tuple[dict[str, Any], list[str]]:
    assert _worker_config is not None
    return make_sample(_worker_config, index)


@dataclass
class CorpusReport:
    samples: int
    words: int
    seconds: float
    problems: list[str]


def make_corpus(config: CorpusConfig, n: int, workers: int = 1, progress: Any = None) -> CorpusReport:
    """Write `n` samples and `metadata.jsonl` into `config.out` (rows in index order)."""
    config.validate()
    if n < 1:
        raise InvalidInputError(f"--n must be at least 1, got {n}")
    for sub in ["hq", "mask", "glyph", *(f"lq_x{s}" for s in config.scales)]:
        (config.out / sub).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    words = 0
    problems: list[str] = []
    workers = max(1, min(int(workers), n))
    meta_tmp = config.out / (METADATA + ".partial")
    with meta_tmp.open("w", encoding="utf-8") as handle:
        if workers == 1:
            rows = (make_sample(config, i) for i in range(n))
            pool = None
        else:
            # fork where available: workers need only numpy/Pillow, and spawn/forkserver would re-run
            # `python -m glyphsr_core`'s __main__ in every worker
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
            pool = multiprocessing.get_context(method).Pool(workers, initializer=_init_worker, initargs=(config,))
            rows = pool.imap(_work, range(n), chunksize=4)
        try:
            for done, (row, sample_problems) in enumerate(rows, start=1):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                words += len(row["words"])
                problems.extend(sample_problems)
                if progress is not None:
                    progress(done, n)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    os.replace(meta_tmp, config.out / METADATA)
    return CorpusReport(n, words, time.perf_counter() - start, problems)
