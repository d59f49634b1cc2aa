"""Per-tile prompts: each tile's text prompt names only the words inside that tile.

One prompt cannot carry the 60 words of a poster (CLIP reads 77 tokens per chunk), and "at the top
left" means little on an 8K image. With tiled sampling each tile gets its own prompt set: the
words whose boxes fall in the tile, located relative to the tile, plus the caption. A word cut by
a tile border goes to every tile that holds at least `min_inside` of its box; a word no tile holds
that much of (cut three ways) goes to the tile holding the largest part, so no word is lost.
Words with no position (typed by hand) cannot be placed and go to every tile.
"""

from __future__ import annotations

from ..errors import InvalidInputError
from ..text.prompts import PromptSet, PromptTemplates, build_prompts
from ..types import Box, OcrResult, TextRegion

DEFAULT_MIN_INSIDE = 0.5


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _inside_fraction(region_box: Box, tile: Box) -> float:
    """Share of the region's box inside the tile (a zero-area box: 1 if its centre is inside)."""
    inter = (max(region_box[0], tile[0]), max(region_box[1], tile[1]),
             min(region_box[2], tile[2]), min(region_box[3], tile[3]))
    area = _area(region_box)
    if area <= 0.0:
        cx, cy = (region_box[0] + region_box[2]) / 2, (region_box[1] + region_box[3]) / 2
        return 1.0 if tile[0] <= cx <= tile[2] and tile[1] <= cy <= tile[3] else 0.0
    return _area(inter) / area


def _to_tile(region: TextRegion, tile: Box) -> TextRegion:
    """The region with its quad in the tile's own 0..1 coordinates (clipped to the tile)."""
    if region.quad is None:
        return region
    w, h = tile[2] - tile[0], tile[3] - tile[1]
    quad = tuple((min(1.0, max(0.0, (x - tile[0]) / w)), min(1.0, max(0.0, (y - tile[1]) / h)))
                 for x, y in region.quad)
    return TextRegion(region.text, region.confidence, quad)  # type: ignore[arg-type]


def _check_box(box: Box, index: int) -> None:
    x0, y0, x1, y1 = box
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise InvalidInputError(f"tile {index} box must be (x0, y0, x1, y1) fractions with x0 < x1 and y0 < y1 "
                                f"inside 0..1, got {box}")


def assign_regions(result: OcrResult | None, tiles: list[Box],
                   min_inside: float = DEFAULT_MIN_INSIDE) -> list[tuple[TextRegion, ...]]:
    """Per tile, the regions it holds (in reading order), with quads relative to the tile."""
    if not 0.0 < min_inside <= 1.0:
        raise InvalidInputError(f"min_inside must be in (0, 1], got {min_inside}")
    for i, box in enumerate(tiles):
        _check_box(box, i)
    per_tile: list[list[TextRegion]] = [[] for _ in tiles]
    if result is None:
        return [() for _ in tiles]
    for region in result.regions:
        box = region.box
        if box is None:
            for kept in per_tile:
                kept.append(region)
            continue
        shares = [_inside_fraction(box, tile) for tile in tiles]
        chosen = [i for i, share in enumerate(shares) if share >= min_inside - 1e-9]
        if not chosen and max(shares, default=0.0) > 0.0:
            chosen = [max(range(len(tiles)), key=lambda i: shares[i])]
        for i in chosen:
            per_tile[i].append(_to_tile(region, tiles[i]))
    return [tuple(kept) for kept in per_tile]


def build_tile_prompts(
    caption: str,
    result: OcrResult | None,
    tiles: list[Box],
    *,
    templates: PromptTemplates = PromptTemplates(),
    max_words: int = 24,
    include_locations: bool = True,
    escape_weights: bool = False,
    min_inside: float = DEFAULT_MIN_INSIDE,
) -> list[PromptSet]:
    """One prompt set per tile box (x0, y0, x1, y1 fractions of the image): its own words + the caption.

    A tile with no words gets the no-text fallback of `build_prompts` (scene prompt + text suffix).
    """
    size = (result.width, result.height) if result is not None else (0, 0)
    out = []
    for regions in assign_regions(result, tiles, min_inside):
        tile_result = OcrResult(size[0], size[1], regions)
        out.append(build_prompts(caption, tile_result, templates=templates, max_words=max_words,
                                 include_locations=include_locations, escape_weights=escape_weights))
    return out
