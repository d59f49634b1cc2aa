"""Per-tile-batch conditioning: each tile batch gets its own ControlNet copies and prompt embeddings.

A tile batch is one model call on the tiles' latents stacked tile-major (row k*B + b is tile k of
image b). Its conds are the user's conds with every control replaced by a copy whose hints are
the tiles' crops, stacked the same way: the scene and text branch hints, the glyph map and the
beta map of a TS-ControlNet, extra concat channels and any chained ControlNet. A hint is first
fitted to the whole latent exactly as ComfyUI fits it (centre crop to the aspect, then resize),
then cropped, so each tile sees the pixels it would see untiled. The per-tile text prompts replace
the text prompt's embedding, keeping its ControlNet and other options.
"""

from __future__ import annotations

import dataclasses

import comfy.utils
import torch
import torch.nn.functional as F

from ..glyphsr_core.errors import InvalidInputError
from ..glyphsr_core.sampling.fusion import center_crop_to_aspect
from ..glyphsr_core.tiling.tensors import crop_tiles, repeat_rows, stack_context
from ..glyphsr_core.tiling.grid import Tile, TileGrid
from .ts_control_base import TSControlNet

#: cond options that place a prompt on part of the latent; their coordinates mean the whole latent
AREA_KEYS = ("area", "mask")


def fit_to_latent(image, height: int, width: int, algorithm: str):
    """What ComfyUI's ControlNet does to a hint before use: centre crop to the aspect, resize."""
    if tuple(image.shape[-2:]) == (height, width):
        return image
    return comfy.utils.common_upscale(image, width, height, algorithm, "center")


class ControlTiler:
    """Copies of ControlNets (and their chains) whose hints are one tile batch's crops; one copy per control."""

    def __init__(self, grid: TileGrid, tiles: list[Tile], rows: int):
        self.grid = grid
        self.tiles = tiles
        self.rows = rows
        self._done: dict[int, object] = {}

    def __call__(self, control):
        if control is None:
            return None
        key = id(control)
        if key not in self._done:
            self._done[key] = self._tile(control)
        return self._done[key]

    def _crop(self, image, scale: int, algorithm: str, what: str):
        if image is None:
            return None
        full = fit_to_latent(image, self.grid.height * scale, self.grid.width * scale, algorithm)
        return crop_tiles(full, self.tiles, scale, self.rows, what)

    def _crop_mask(self, mask, scale: int):
        """A beta-map mask fitted like BetaMap does (centre crop, area resize), then cropped."""
        height, width = self.grid.height * scale, self.grid.width * scale
        mask = center_crop_to_aspect(mask, height, width)
        if tuple(mask.shape[-2:]) != (height, width):
            mask = F.interpolate(mask, size=(height, width), mode="area")
        return crop_tiles(mask, self.tiles, scale, self.rows, "text mask")

    def _tile(self, control):
        c = control.copy()
        vae = getattr(c, "vae", None)
        scale = int(c.compression_ratio) * (int(vae.spacial_compression_encode()) if vae is not None else 1)
        algorithm = getattr(c, "upscale_algorithm", "nearest-exact")
        name = type(control).__name__
        if isinstance(c, TSControlNet):
            c.glyph_hint = self._crop(c.glyph_hint, scale, algorithm, "glyph map")
            c.text_image_hint = self._crop(c.text_image_hint, scale, algorithm, "text-branch image")
            if c.beta_map is not None:
                c.beta_map = dataclasses.replace(c.beta_map, mask=self._crop_mask(c.beta_map.mask, scale), _cache={})
        if c.cond_hint_original is None:
            raise InvalidInputError(f"a {name} in the conditioning has no hint image; apply it with a ControlNet "
                                    "apply node before tiled sampling")
        extra = [self._crop(e, scale, algorithm, f"{name} extra hint") for e in c.extra_concat_orig]
        c.set_cond_hint(self._crop(c.cond_hint_original, scale, algorithm, f"{name} hint"), c.strength,
                        c.timestep_percent_range, vae=vae, extra_concat=extra)
        previous = control.previous_controlnet
        c.set_previous_controlnet(self(previous) if previous is not None else None)
        return c


@dataclasses.dataclass
class TilePrompts:
    """GLYPHSR_TILE_PROMPTS: one text-prompt CONDITIONING per tile of a grid, and the prompts as text."""

    height: int
    width: int
    tile: int
    overlap: int
    conds: list  # per tile a CONDITIONING whose tensors have 1 or B rows
    prompts: list[str]

    def check_grid(self, height: int, width: int, tile: int, overlap: int) -> None:
        made, asked = (self.height, self.width, self.tile, self.overlap), (height, width, tile, overlap)
        if made != asked:
            raise InvalidInputError(
                f"tile_prompts were made for a {self.height}x{self.width} latent with tile {self.tile * 8} px and "
                f"overlap {self.overlap * 8} px, but this sampler tiles a {height}x{width} latent with tile "
                f"{tile * 8} px and overlap {overlap * 8} px: give 'GlyphSR Tile Prompts' the same latent, "
                "tile_size and tile_overlap")


def tile_batch_cond(cond: list, tiler: ControlTiler, rows: int, tile_prompts: list | None = None,
                    name: str = "conditioning") -> list:
    """One tile batch's CONDITIONING: controls tiled, and (text prompt) the tiles' own embeddings.

    `tile_prompts` is the tiles' CONDITIONING in tile order; their first entries' embeddings (and
    pooled outputs) are stacked tile-major and replace the first entry's.
    """
    if tile_prompts is not None and len(cond) != 1:
        raise InvalidInputError(f"{name} holds {len(cond)} combined entries; per-tile prompts replace the "
                                "embedding of a single one: connect the text prompt before combining")
    out = []
    for i, (tensor, options) in enumerate(cond):
        for key in AREA_KEYS:
            if options.get(key) is not None:
                raise InvalidInputError(f"{name} has '{key}' conditioning (set for the whole image); tiled sampling "
                                        "cannot place it on tiles: remove it or sample untiled")
        options = dict(options)
        if options.get("control") is not None:
            options["control"] = tiler(options["control"])
        if tile_prompts is not None and i == 0:
            tensor = stack_context([p[0][0] for p in tile_prompts], rows, "tile prompt embedding")
            pooled = [p[0][1].get("pooled_output") for p in tile_prompts]
            if all(p is not None for p in pooled):
                options["pooled_output"] = torch.cat([repeat_rows(p, rows, "tile pooled output") for p in pooled])
        out.append([tensor, options])
    return out
