"""Tiled sampling geometry: the tile grid over a latent, smooth blend weights and a seam measure.

Large images are sampled MultiDiffusion-style: at every model evaluation the latent is cut into
overlapping tiles, the model predicts each tile, and the predictions are blended with weights
that sum to one at every latent pixel. Each tile's weight is 1 in its interior and ramps down
smoothly (raised cosine) across the overlap with each neighbour, so two tiles' ramps in a shared
band add up to one and there is no hard edge anywhere: seams cannot form by construction.

Tiles all have the same size (so a batch of tiles is one model call) and start on multiples of
`multiple` latent pixels where possible (8 keeps the UNet's down-sampling grid aligned between
neighbours); the last tile of a row or column ends at the latent's edge. A latent no larger than
one tile is one tile, and then the weight is exactly 1 everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import InvalidInputError

Box = tuple[float, float, float, float]


class TilingError(InvalidInputError):
    """Tile size, overlap or batch settings that cannot tile a latent."""


@dataclass(frozen=True)
class Tile:
    """One tile in latent pixels: rows y0..y1, columns x0..x1 (end exclusive)."""

    index: int
    row: int
    col: int
    y0: int
    x0: int
    height: int
    width: int

    @property
    def y1(self) -> int:
        return self.y0 + self.height

    @property
    def x1(self) -> int:
        return self.x0 + self.width

    def slices(self, scale: int = 1) -> tuple[slice, slice]:
        """Row and column slices of this tile in a tensor `scale` times the latent's size."""
        return slice(self.y0 * scale, self.y1 * scale), slice(self.x0 * scale, self.x1 * scale)


@dataclass(frozen=True)
class TileGrid:
    """All tiles over a `height` x `width` latent, row by row."""

    height: int
    width: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    tile_height: int
    tile_width: int

    @property
    def tiles(self) -> list[Tile]:
        return [Tile(r * len(self.cols) + c, r, c, y0, x0, self.tile_height, self.tile_width)
                for r, y0 in enumerate(self.rows) for c, x0 in enumerate(self.cols)]

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of tiles."""
        return len(self.rows), len(self.cols)

    def covers_whole(self) -> bool:
        """One tile that is the whole latent: tiled sampling is then plain sampling."""
        return len(self) == 1 and self.tile_height == self.height and self.tile_width == self.width

    def boxes(self) -> list[Box]:
        """Each tile as (x0, y0, x1, y1) fractions of the image, the coordinates OCR regions use."""
        return [(t.x0 / self.width, t.y0 / self.height, t.x1 / self.width, t.y1 / self.height) for t in self.tiles]

    def batches(self, size: int) -> list[list[Tile]]:
        """Tiles in groups of `size` (the last may be smaller): one model call per group."""
        if size < 1:
            raise TilingError(f"tile batch size must be >= 1, got {size}")
        tiles = self.tiles
        return [tiles[i:i + size] for i in range(0, len(tiles), size)]

    def describe(self) -> str:
        """For logs: '2x3 tiles of 128x128 latent px over 240x360'."""
        rows, cols = self.shape
        return (f"{rows}x{cols} tile(s) of {self.tile_height}x{self.tile_width} latent px over "
                f"{self.height}x{self.width}")


def axis_starts(length: int, tile: int, blend_overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of equal tiles covering 0..length with at least `blend_overlap` shared pixels.

    Starts are spread evenly and rounded to `multiple`; the first is 0 and the last is
    `length - tile`. A length no larger than the tile gives one tile.
    """
    if length < 1:
        raise TilingError(f"cannot tile an empty axis (length {length})")
    if tile < 1:
        raise TilingError(f"tile size must be >= 1 latent pixel, got {tile}")
    if blend_overlap < 0:
        raise TilingError(f"tile overlap must be >= 0, got {blend_overlap}")
    if length <= tile:
        return [0]
    if blend_overlap >= tile:
        raise TilingError(f"tile overlap ({blend_overlap}) must be smaller than the tile ({tile})")
    if multiple < 1:
        raise TilingError(f"tile alignment must be >= 1, got {multiple}")
    stride = tile - blend_overlap
    span = length - tile
    first = max(2, math.ceil(span / stride) + 1)
    for align in ((multiple, 1) if multiple > 1 else (1,)):
        # rounding to `align` may widen a gap beyond the stride: then try a few more tiles, else stop aligning
        for count in range(first, first + 8):
            starts = [0] + [min(span, int(round(i * span / (count - 1) / align)) * align)
                            for i in range(1, count - 1)] + [span]
            if all(0 < b - a <= stride for a, b in zip(starts, starts[1:])):
                return starts
    raise TilingError(f"cannot tile {length} px with tiles of {tile} and overlap {blend_overlap}")  # not reached


def tile_grid(height: int, width: int, tile: int, blend_overlap: int, multiple: int = 1) -> TileGrid:
    """The grid of square `tile` tiles (clipped to the latent) with at least `blend_overlap` px shared."""
    rows = axis_starts(height, tile, blend_overlap, multiple)
    cols = axis_starts(width, tile, blend_overlap, multiple)
    return TileGrid(height=height, width=width, rows=tuple(rows), cols=tuple(cols),
                    tile_height=min(tile, height), tile_width=min(tile, width))


def _ramp(length: int) -> torch.Tensor:
    """Rising raised-cosine ramp over `length` pixels, never 0 or 1: sin^2 at pixel centres.

    A falling ramp is the same reversed, and rising + falling over one band sum to exactly one.
    """
    i = torch.arange(length, dtype=torch.float64)
    return torch.sin(math.pi / 2 * (i + 0.5) / length) ** 2


def _axis_weight(starts: tuple[int, ...], size: int, index: int) -> torch.Tensor:
    """1-D weight of tile `index` along one axis: ramps across the bands shared with its neighbours."""
    w = torch.ones(size, dtype=torch.float64)
    start = starts[index]
    if index > 0:
        band = starts[index - 1] + size - start
        if band > 0:
            w[:band] = _ramp(band)
    if index < len(starts) - 1:
        band = start + size - starts[index + 1]
        if band > 0:
            w[size - band:] = torch.minimum(w[size - band:], _ramp(band).flip(0))
    return w


def blend_weights(grid: TileGrid) -> list[torch.Tensor]:
    """Per tile a [1, 1, h, w] float32 weight; placed on the latent, the weights sum to one everywhere.

    Raw weights are products of the 1-D ramps; they are divided by their placed sum, which only
    matters where three or more tiles share pixels (overlap over half a tile). One whole-latent
    tile gets weight exactly 1.
    """
    raw = []
    total = torch.zeros(grid.height, grid.width, dtype=torch.float64)
    for t in grid.tiles:
        w = _axis_weight(grid.rows, grid.tile_height, t.row)[:, None] * _axis_weight(grid.cols, grid.tile_width,
                                                                                    t.col)[None, :]
        raw.append(w)
        ys, xs = t.slices()
        total[ys, xs] += w
    if bool((total <= 0).any()):  # cannot happen with valid grids; a clear error beats a silent NaN
        raise TilingError(f"tiles leave latent pixels uncovered: {grid.describe()}")
    out = []
    for t, w in zip(grid.tiles, raw):
        ys, xs = t.slices()
        out.append((w / total[ys, xs]).to(torch.float32)[None, None])
    return out


def blend(grid: TileGrid, weights: list[torch.Tensor], predictions: list[torch.Tensor],
          out: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted sum of per-tile predictions [B, C, h, w] placed on a [B, C, H, W] latent."""
    if len(predictions) != len(grid):
        raise TilingError(f"{len(predictions)} tile prediction(s) for {len(grid)} tile(s)")
    for t, w, p in zip(grid.tiles, weights, predictions):
        if out is None:
            out = p.new_zeros(p.shape[:-2] + (grid.height, grid.width))
        ys, xs = t.slices()
        out[..., ys, xs] += p * w.to(device=p.device, dtype=p.dtype)
    return out


def _band_lines(starts: tuple[int, ...], size: int, scale: int) -> list[int]:
    """Lines (in a `scale`-times larger image) from where a tile starts to where its neighbour ends."""
    lines: set[int] = set()
    for a, b in zip(starts, starts[1:]):
        lines.update(range(b * scale, (a + size) * scale + 1))
    return sorted(lines)


def border_lines(grid: TileGrid, scale: int = 1) -> tuple[list[int], list[int]]:
    """Rows and columns where tiling could leave a seam: every line of every band two tiles share.

    A band runs from where a tile starts to where its neighbour ends, both edges included; tiles
    without overlap give just the line between them. A blend that cut anywhere inside a band would
    show there, not only at the tiles' edges.
    """
    return (_band_lines(grid.rows, grid.tile_height, scale), _band_lines(grid.cols, grid.tile_width, scale))


def step_excess(image: torch.Tensor, lines: list[int], axis: int) -> float:
    """Largest step across the given lines beyond what the neighbouring gradient predicts.

    For a line between pixels p-1 and p along `axis` (-2 rows, -1 columns): the jump
    image[p] - image[p-1] minus the mean of the jumps just before and after it, absolute, maximised
    over the line's pixels and channels. A smooth image (any constant gradient) scores ~0 on every
    line; a seam scores its height. Lines need two pixels of room on each side.
    """
    size = image.shape[axis]
    worst = 0.0
    for p in lines:
        if p < 2 or p > size - 2:
            continue
        at = [image.narrow(axis, p + k, 1).detach().double() for k in (-2, -1, 0, 1)]
        jump = at[2] - at[1]
        expected = ((at[1] - at[0]) + (at[3] - at[2])) / 2
        worst = max(worst, float((jump - expected).abs().max()))
    return worst


def seam_report(image: torch.Tensor, grid: TileGrid, scale: int = 1) -> dict[str, float]:
    """Step excess along the tile borders vs. at every other line of `image` (a [.., H, W] tensor).

    `at_borders` is the worst step across any line of a band two tiles share (`border_lines`);
    `elsewhere` the worst across all other interior lines not next to a band (the image's own
    roughness), for comparison.
    """
    rows, cols = border_lines(grid, scale)
    h, w = image.shape[-2:]
    # a step also shows in the expected jump of the lines right next to it: leave those out
    near_rows = {y + d for y in rows for d in (-1, 0, 1)}
    near_cols = {x + d for x in cols for d in (-1, 0, 1)}
    other_rows = [y for y in range(2, h - 1) if y not in near_rows]
    other_cols = [x for x in range(2, w - 1) if x not in near_cols]
    return {
        "at_borders": max(step_excess(image, rows, -2), step_excess(image, cols, -1)),
        "elsewhere": max(step_excess(image, other_rows, -2), step_excess(image, other_cols, -1)),
    }
