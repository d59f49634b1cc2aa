"""Tiled sampling for the headless diffusers sampler (blend overlap, output pixels): per-tile-batch inputs and the blend of predictions.

Every model evaluation runs on tile batches (K tiles x B images, tile-major) whose latents,
ControlNet hints, beta-map mask and prompt embeddings are the tiles' crops and prompts; the noise
predictions are blended with the smooth weights of glyphsr_core.tiling.grid, so the scheduler steps one
whole latent and no seam can form. One tile covering the latent gives the untiled result exactly.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import defaults
from ..errors import InvalidInputError
from ..sampling.fusion import BetaMap, center_crop_to_aspect
from .tensors import crop_tiles, repeat_rows, stack_context
from .grid import TileGrid, blend_weights, tile_grid

logger = logging.getLogger(__name__)

#: tiles start on multiples of this many latent pixels where possible (the UNet's coarsest grid)
ALIGN = 8


@dataclass(frozen=True)
class SampleTiling:
    """Tile size and least blend overlap in image (output) pixels, tiles per model call."""

    tile: int
    blend_overlap: int = defaults.SAMPLE_BLEND_OVERLAP
    batch: int = defaults.SAMPLE_TILE_BATCH

    def __post_init__(self) -> None:
        if self.tile < 64:
            raise InvalidInputError(f"sample tile must be at least 64 px, got {self.tile}")
        if not 0 <= self.blend_overlap < self.tile:
            raise InvalidInputError(f"sample tile overlap must be >= 0 and smaller than the tile ({self.tile}), "
                                    f"got {self.blend_overlap}")
        if self.batch < 1:
            raise InvalidInputError(f"sample tile batch must be >= 1, got {self.batch}")

    def grid(self, height: int, width: int, factor: int) -> TileGrid:
        """The grid over a latent of height x width (image pixels = latent pixels x factor)."""
        return tile_grid(height, width, self.tile // factor, self.blend_overlap // factor, multiple=ALIGN)


def auto_tiling(width: int, height: int, native: int, blend_overlap: int = defaults.SAMPLE_BLEND_OVERLAP,
                batch: int = defaults.SAMPLE_TILE_BATCH) -> SampleTiling | None:
    """Tiles of twice the base model's native size when the image is larger than that, else None."""
    tile = 2 * native
    if max(width, height) <= tile:
        return None
    tiling = SampleTiling(tile, min(blend_overlap, tile // 2), batch)
    logger.info("the image (%dx%d px) is larger than %d px: sampling in tiles of %d px, overlap %d px "
                "(--sample-tile 0 turns this off, --sample-tile N sets the size)", width, height, tile, tile,
                tiling.blend_overlap)
    return tiling


def _beta_map_crop(beta_map: BetaMap, tiles, height: int, width: int, factor: int, rows: int) -> BetaMap:
    mask = center_crop_to_aspect(beta_map.mask, height, width)
    if tuple(mask.shape[-2:]) != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="area")
    return dataclasses.replace(beta_map, mask=crop_tiles(mask, tiles, factor, rows, "text mask"), _cache={})


class TiledInputs:
    """Per tile batch: control crops, text-branch hint crops, beta maps; latents in, blend out."""

    def __init__(self, grid: TileGrid, batch_size: int, rows: int, control: torch.Tensor,
                 text_control: torch.Tensor | None, beta_map: BetaMap | None, factor: int):
        self.grid = grid
        self.rows = rows
        self.batches = grid.batches(batch_size)
        self.weights = blend_weights(grid)
        height, width = grid.height * factor, grid.width * factor
        if tuple(control.shape[-2:]) != (height, width):
            raise InvalidInputError(f"control image {tuple(control.shape[-2:])} is not the latent's size x {factor}")
        self.control = [crop_tiles(control, tiles, factor, rows, "control image") for tiles in self.batches]
        self.text_control = [None if text_control is None else
                             crop_tiles(text_control, tiles, factor, rows, "text-branch hint") for tiles in self.batches]
        self.beta_map = [None if beta_map is None else
                         _beta_map_crop(beta_map, tiles, height, width, factor, rows) for tiles in self.batches]

    def latents(self, b: int, latents: torch.Tensor) -> torch.Tensor:
        parts = [latents[(..., *t.slices())] for t in self.batches[b]]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def conditioning(self, b: int, shared, per_tile: list | None = None):
        """The prompt pair of tile batch b: `shared` for every tile, or each tile's own from `per_tile`."""
        tiles = self.batches[b]
        sources = [per_tile[t.index] for t in tiles] if per_tile is not None else [shared] * len(tiles)
        if per_tile is None and len(tiles) == 1:
            return shared

        def stack(name: str):
            values = [getattr(c, name) for c in sources]
            if values[0] is None:
                return None
            if values[0].ndim == 3:
                return stack_context(values, self.rows, f"tile prompt {name}")
            return torch.cat([repeat_rows(v, self.rows, f"tile prompt {name}") for v in values])

        # the sampler's own prompt-pair class (diffusion.sampler.Conditioning), without importing it back
        return type(sources[0])(stack("positive"), stack("negative"), stack("pooled_positive"),
                                stack("pooled_negative"))

    def blend(self, b: int, prediction: torch.Tensor, out: torch.Tensor) -> None:
        """Add tile batch b's weighted predictions into `out` (the whole latent's prediction)."""
        for k, t in enumerate(self.batches[b]):
            ys, xs = t.slices()
            weight = self.weights[t.index].to(device=prediction.device, dtype=prediction.dtype)
            out[..., ys, xs] += prediction[k * self.rows:(k + 1) * self.rows] * weight
