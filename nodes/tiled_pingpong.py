"""Tiled ping-pong sampling for large images, seamless by construction.

`TiledPingPongGuider` is the ping-pong guider with the model evaluation tiled: for every model
call it cuts the latent into overlapping tiles (glyphsr_core.tiling.grid), runs ComfyUI's own
`sampling_function` on each tile batch with that batch's conds (ControlNet hints, glyph map and
beta map cropped to the tiles; the tiles' own text prompts when connected) and blends the
predictions with smooth weights that sum to one. The sampler, scheduler, noise, denoise mask and
model patches see one whole latent, exactly as untiled; one branch (scene or text) is chosen per
step for all tiles. A latent that fits in one tile samples exactly as the untiled ping-pong guider.

Memory: activations are those of one tile batch, not of the image; ComfyUI's up-front memory
estimate for loading the model still counts the whole latent (it only decides how much of the
model stays on the GPU). Progress: one bar over steps x tile batches; Cancel is honoured between
tile batches.
"""

from __future__ import annotations

import logging

import comfy.model_management
import comfy.samplers
import comfy.utils
import latent_preview
import node_helpers
import torch

from ..glyphsr_core import defaults
from ..glyphsr_core.errors import BatchSizeError, InvalidInputError
from ..glyphsr_core.text.prompts import DEFAULT_TEXT_SUFFIX, PromptTemplates
from ..glyphsr_core.sampling.pingpong import PingPong
from ..glyphsr_core.tiling.prompts import DEFAULT_MIN_INSIDE, build_tile_prompts
from ..glyphsr_core.tiling.tensors import stack_context
from ..glyphsr_core.tiling.grid import TileGrid, blend_weights, tile_grid
from .ocr import TEXT_TYPE
from .pingpong import PingPongGuider, PingPongGuiderNode, PingPongKSampler, sample_latent
from .runtime import CATEGORY
from .tiled_conditioning import ControlTiler, TilePrompts, tile_batch_cond

logger = logging.getLogger(__name__)

#: image pixels per latent pixel (SD 1.x, SDXL); tile widgets are in image pixels
LATENT_SCALE = 8
#: tiles start on multiples of this many latent pixels where possible (the UNet's coarsest grid)
ALIGN = 8
TILE_PROMPTS_TYPE = "GLYPHSR_TILE_PROMPTS"
#: cond key of the first tile batch -> the node input it comes from (for messages)
INPUT_NAMES = {"positive": "scene_positive", "negative": "scene_negative", "text_positive": "text_positive",
               "text_negative": "text_negative"}


def latent_tiling(tile_size: int, tile_overlap: int) -> tuple[int, int]:
    """Widget values (image px; tile_overlap is the blend overlap) as latent px; clear errors for sizes that cannot tile."""
    if tile_size < LATENT_SCALE * 8:
        raise InvalidInputError(f"tile_size must be at least {LATENT_SCALE * 8} px, got {tile_size}")
    if tile_overlap < 0 or tile_overlap >= tile_size:
        raise InvalidInputError(f"tile_overlap must be >= 0 and smaller than tile_size ({tile_size}), "
                                f"got {tile_overlap}")
    return tile_size // LATENT_SCALE, tile_overlap // LATENT_SCALE


def grid_for(height: int, width: int, tile: int, blend_overlap: int) -> TileGrid:
    """The grid the sampler and the tile-prompt node agree on for a latent (all in latent px)."""
    return tile_grid(height, width, tile, blend_overlap, multiple=ALIGN)


class TiledPingPongGuider(PingPongGuider):
    """Ping-pong guider whose model evaluations run on overlapping tiles blended with smooth weights."""

    def set_conds(self, scene_positive, scene_negative, text_positive=None, text_negative=None):
        super().set_conds(scene_positive, scene_negative, text_positive, text_negative)
        self.inputs = {"positive": scene_positive, "negative": scene_negative, "text_positive": text_positive,
                       "text_negative": text_negative}

    def set_tiling(self, tile: int, overlap: int, batch_size: int, tile_prompts: TilePrompts | None = None) -> None:
        """Tile size and overlap in latent px, tiles per model call, optional per-tile text prompts."""
        if batch_size < 1:
            raise InvalidInputError(f"tile_batch_size must be >= 1, got {batch_size}")
        self.tile, self.overlap, self.batch_size = tile, overlap, batch_size
        self.tile_prompts = tile_prompts
        #: called after each tile batch with (step, batch index, batches); the KSampler node's progress bar
        self.on_tile_batch = None

    def prepare_tiles(self, latent_shape) -> TileGrid:
        """Grid, weights and per-batch conds for a latent of this shape (called by sample())."""
        rows, height, width = latent_shape[0], latent_shape[-2], latent_shape[-1]
        grid = grid_for(height, width, self.tile, self.overlap)
        if self.tile_prompts is not None:
            self.tile_prompts.check_grid(height, width, self.tile, self.overlap)
            if self.inputs["text_positive"] is None:
                raise InvalidInputError("tile_prompts replace the text prompt's embedding per tile: connect "
                                        "text_positive too (it carries the ControlNet)")
        self.grid = grid
        self.weights = blend_weights(grid)
        self._weights_on: dict = {}
        self.tile_batches = grid.batches(self.batch_size)
        self.original_conds = {}
        self.batch_keys: list[dict[str, tuple[str, str]]] = []
        for b, tiles in enumerate(self.tile_batches):
            suffix = "" if b == 0 else f"_tile{b}"
            if grid.covers_whole():
                tiler = lambda control: control  # noqa: E731  # the whole latent: the hints as they are
            else:
                tiler = ControlTiler(grid, tiles, rows)
            conds = {}
            for key, role in (("positive", "positive"), ("negative", "negative"), ("text_positive", "positive"),
                              ("text_negative", "negative")):
                cond = self.inputs[key]
                if cond is None:
                    continue
                prompts = None
                if key == "text_positive" and self.tile_prompts is not None:
                    prompts = [self.tile_prompts.conds[t.index] for t in tiles]
                if not grid.covers_whole() or prompts is not None:  # else: the user's conds, untouched
                    cond = tile_batch_cond(cond, tiler, rows, prompts, INPUT_NAMES[key])
                if suffix or key.startswith("text"):
                    cond = node_helpers.conditioning_set_values(cond, {"prompt_type": role})
                conds[key + suffix] = cond
            self.inner_set_conds(conds)
            text_pos = "text_positive" + suffix if self.inputs["text_positive"] is not None else "positive" + suffix
            text_neg = "text_negative" + suffix if self.inputs["text_negative"] is not None else "negative" + suffix
            self.batch_keys.append({"scene": ("positive" + suffix, "negative" + suffix), "text": (text_pos, text_neg)})
        return grid

    def _weight(self, index: int, like: torch.Tensor) -> torch.Tensor:
        key = (index, like.device, like.dtype)
        if key not in self._weights_on:
            self._weights_on[key] = self.weights[index].to(device=like.device, dtype=like.dtype)
        return self._weights_on[key]

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
        if sigmas is None:
            raise RuntimeError("GlyphSR tiled ping-pong guider: the sampler passed no sample_sigmas, so the step "
                               "cannot be told; use it with SamplerCustomAdvanced or the tiled ping-pong KSampler")
        choice = self.plan.choose(timestep, self._sigma_floats(sigmas))
        rows = x.shape[0]
        out = None
        batches = len(self.tile_batches)
        for b, tiles in enumerate(self.tile_batches):
            if b:  # Cancel between tile batches, not only between steps
                comfy.model_management.throw_exception_if_processing_interrupted()
            positive, negative = self.batch_keys[b][choice.branch]
            parts = [x[(..., *t.slices())] for t in tiles]
            x_batch = parts[0].contiguous() if len(parts) == 1 else torch.cat(parts)
            t_batch = timestep if len(tiles) == 1 else timestep.repeat(len(tiles))
            pred = comfy.samplers.sampling_function(self.inner_model, x_batch, t_batch, self.conds.get(negative),
                                                    self.conds.get(positive), choice.cfg,
                                                    model_options=model_options, seed=seed)
            if out is None:
                out = torch.zeros(x.shape, dtype=pred.dtype, device=pred.device)
            for k, t in enumerate(tiles):
                ys, xs = t.slices()
                out[..., ys, xs] += pred[k * rows:(k + 1) * rows] * self._weight(t.index, pred)
            if self.on_tile_batch is not None:
                self.on_tile_batch(choice.step, b, batches)
        return out

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):
        grid = self.prepare_tiles(latent_image.shape)
        logger.info("GlyphSR tiled sampling: %s, %d per model call (%d call(s) per evaluation)%s", grid.describe(),
                    self.batch_size, len(self.tile_batches),
                    "; each tile with its own text prompt" if self.tile_prompts is not None else "")
        return super().sample(noise, latent_image, sampler, sigmas, denoise_mask=denoise_mask, callback=callback,
                              disable_pbar=disable_pbar, seed=seed)


class TileProgress:
    """One ComfyUI progress bar over steps x tile batches, with the latent preview at each step's end."""

    def __init__(self, model, steps: int, batches: int):
        self.batches = batches
        self.total = max(1, steps * batches)
        self.bar = comfy.utils.ProgressBar(self.total)
        latent_format = getattr(getattr(model, "model", None), "latent_format", None)
        get_previewer = getattr(latent_preview, "get_previewer", None)
        self.previewer = get_previewer(model.load_device, latent_format) if latent_format and get_previewer else None

    def tile_done(self, step: int, batch: int, batches: int) -> None:
        self.bar.update_absolute(min(self.total, step * batches + batch + 1), self.total)

    def step_done(self, step: int, x0, x, total_steps: int) -> None:
        preview = self.previewer.decode_latent_to_preview_image("JPEG", x0) if self.previewer else None
        self.bar.update_absolute(min(self.total, (step + 1) * self.batches), self.total, preview)


def _tiling_inputs() -> dict:
    return {
        "tile_size": ("INT", {"default": defaults.SAMPLE_TILE, "min": LATENT_SCALE * 8, "max": 16384, "step": 64,
                              "tooltip": "Tile edge in image pixels (SD 1.5: 512-768, SDXL: 1024). An image no larger "
                                         "than one tile is sampled untiled, exactly as the Ping-Pong KSampler."}),
        "tile_overlap": ("INT", {"default": defaults.SAMPLE_BLEND_OVERLAP, "min": 0, "max": 8192, "step": 8,
                                 "tooltip": "Blend overlap: the least overlap between neighbouring tiles in image "
                                            "pixels; predictions are blended across it with smooth weights (no seams)."}),
        "tile_batch_size": ("INT", {"default": defaults.SAMPLE_TILE_BATCH, "min": 1, "max": 64,
                                    "tooltip": "Tiles per model call: more is faster when memory allows; peak "
                                               "memory grows with this, not with the image."}),
    }


def make_tiled_guider(model, scene_positive, scene_negative, cfg, text_cfg, schedule, switch_at, pattern,
                      tile_size, tile_overlap, tile_batch_size, text_positive=None, text_negative=None,
                      cfg_start=defaults.CFG_START, tile_prompts=None) -> TiledPingPongGuider:
    """A ready tiled guider; bad schedule or tiling settings raise before any sampling."""
    tile, overlap = latent_tiling(tile_size, tile_overlap)
    plan = PingPong(schedule=schedule, switch_at=switch_at, pattern=pattern, cfg=cfg, text_cfg=text_cfg,
                    cfg_start=cfg_start)
    guider = TiledPingPongGuider(model)
    guider.set_conds(scene_positive, scene_negative, text_positive, text_negative)
    guider.set_plan(plan)
    guider.set_tiling(tile, overlap, tile_batch_size, tile_prompts)
    return guider


class TiledPingPongGuiderNode:
    DESCRIPTION = ("Ping-pong guider (for SamplerCustomAdvanced) that runs the model on overlapping tiles and "
                   "blends the predictions every step: large images without seams, each tile with its crop of the "
                   "ControlNet hints and, with tile_prompts, its own words.")

    @classmethod
    def INPUT_TYPES(cls):
        base = PingPongGuiderNode.INPUT_TYPES()
        return {"required": {**base["required"], **_tiling_inputs()},
                "optional": {**base["optional"], **_tile_prompts_input()}}

    RETURN_TYPES = ("GUIDER",)
    RETURN_NAMES = ("guider",)
    FUNCTION = "get_guider"
    CATEGORY = CATEGORY

    def get_guider(self, model, scene_positive, scene_negative, cfg, text_cfg, schedule, switch_at, pattern,
                   tile_size, tile_overlap, tile_batch_size, text_positive=None, text_negative=None,
                   cfg_start=defaults.CFG_START, tile_prompts=None):
        return (make_tiled_guider(model, scene_positive, scene_negative, cfg, text_cfg, schedule, switch_at,
                                  pattern, tile_size, tile_overlap, tile_batch_size, text_positive, text_negative,
                                  cfg_start, tile_prompts),)


def _tile_prompts_input() -> dict:
    return {"tile_prompts": (TILE_PROMPTS_TYPE, {"tooltip": "From 'GlyphSR Tile Prompts' (same latent, tile_size and "
                                                            "tile_overlap): each tile's text steps use its own words."})}


class TiledPingPongKSampler:
    DESCRIPTION = ("Ping-Pong KSampler for large images: every step runs the model on overlapping tiles (tile_size, "
                   "tile_overlap, tile_batch_size per call) and blends them with smooth weights, so there are no "
                   "seams. Each tile gets its crop of the (TS-)ControlNet hints, glyph map and text mask, and with "
                   "tile_prompts its own words. One progress bar over steps x tiles; Cancel between tile batches.")

    @classmethod
    def INPUT_TYPES(cls):
        base = PingPongKSampler.INPUT_TYPES()
        return {"required": {**base["required"], **_tiling_inputs()},
                "optional": {**base["optional"], **_tile_prompts_input()}}

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The denoised latent.",)
    FUNCTION = "sample"
    CATEGORY = CATEGORY

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, scene_positive, scene_negative, latent_image,
               denoise, text_cfg, schedule, switch_at, pattern, tile_size, tile_overlap, tile_batch_size,
               text_positive=None, text_negative=None, cfg_start=defaults.CFG_START, tile_prompts=None):
        guider = make_tiled_guider(model, scene_positive, scene_negative, cfg, text_cfg, schedule, switch_at, pattern,
                                   tile_size, tile_overlap, tile_batch_size, text_positive, text_negative, cfg_start,
                                   tile_prompts)
        def progress_callback(samples, sigmas):
            grid = grid_for(samples.shape[-2], samples.shape[-1], guider.tile, guider.overlap)
            progress = TileProgress(model, len(sigmas) - 1, len(grid.batches(tile_batch_size)))
            guider.on_tile_batch = progress.tile_done
            return progress.step_done

        return sample_latent(model, guider, latent_image, seed, steps, sampler_name, scheduler, denoise,
                             progress_callback)


def encode_prompt(clip, text: str):
    """A prompt as CONDITIONING, the way CLIP Text Encode does it."""
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


class TilePromptsNode:
    DESCRIPTION = ("Per-tile text prompts for the tiled ping-pong sampler: each tile's prompt names only the words "
                   "whose boxes fall in that tile (located relative to the tile), plus the caption; a word cut by a "
                   "tile border goes to every tile holding at least min_inside of it. Give it the same latent, "
                   "tile_size and tile_overlap as the sampler.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clip": ("CLIP",),
                "latent": ("LATENT", {"tooltip": "The latent the sampler tiles (only its size is used)."}),
                "caption": ("STRING", {"multiline": True, "default": "", "tooltip": "Scene description."}),
                "tile_size": _tiling_inputs()["tile_size"],
                "tile_overlap": _tiling_inputs()["tile_overlap"],
                "max_words": ("INT", {"default": defaults.MAX_WORDS, "min": 0, "max": 512,
                                      "tooltip": "At most this many words per tile prompt."}),
                "include_locations": ("BOOLEAN", {"default": True}),
                "min_inside": ("FLOAT", {"default": DEFAULT_MIN_INSIDE, "min": 0.05, "max": 1.0, "step": 0.05,
                                         "tooltip": "A word cut by a tile border goes to each tile that holds at "
                                                    "least this share of its box."}),
                "text_suffix": ("STRING", {"multiline": True, "default": DEFAULT_TEXT_SUFFIX}),
            },
            "optional": {"text": (TEXT_TYPE, {"tooltip": "Words with boxes ('GlyphSR OCR Extract'); one result, or "
                                                         "one per image of the batch."})},
        }

    RETURN_TYPES = (TILE_PROMPTS_TYPE, "STRING")
    RETURN_NAMES = ("tile_prompts", "report")
    FUNCTION = "build"
    CATEGORY = CATEGORY

    def build(self, clip, latent, caption, tile_size, tile_overlap, max_words, include_locations, min_inside,
              text_suffix, text=None):
        tile, overlap = latent_tiling(tile_size, tile_overlap)
        samples = latent["samples"]
        height, width = samples.shape[-2], samples.shape[-1]
        grid = grid_for(height, width, tile, overlap)
        results = list(text) if text else [None]
        images = int(samples.shape[0])
        if len(results) not in (1, images):
            raise BatchSizeError(f"'text' holds {len(results)} OCR result(s) but 'latent' holds {images} image(s): "
                                 "connect one result, or one per image")
        templates = PromptTemplates(text_suffix=text_suffix)
        per_image = [build_tile_prompts(caption, r, grid.boxes(), templates=templates, max_words=max_words,
                                        include_locations=include_locations, escape_weights=True,
                                        min_inside=min_inside) for r in results]
        conds, prompts, lines = [], [], []
        for t in grid.tiles:
            sets = [image[t.index] for image in per_image]
            encoded = [encode_prompt(clip, s.text_positive) for s in sets]
            conds.append(_rows_of(encoded) if len(encoded) > 1 else encoded[0])
            prompts.append(sets[0].text_positive)
            words = "; ".join(", ".join(s.words_used) or "-" for s in sets)
            lines.append(f"tile {t.row},{t.col} (x {t.x0 * LATENT_SCALE}, y {t.y0 * LATENT_SCALE}): {words}")
        report = f"{grid.describe()}\n" + "\n".join(lines)
        return (TilePrompts(height, width, tile, overlap, conds, prompts), report)


def _rows_of(conds: list) -> list:
    """Several one-image CONDITIONINGs as one whose rows are the images (first entry of each)."""
    tensors = [c[0][0] for c in conds]
    options = dict(conds[0][0][1])
    pooled = [c[0][1].get("pooled_output") for c in conds]
    if all(p is not None for p in pooled):
        options["pooled_output"] = torch.cat(pooled)
    return [[stack_context(tensors, 1, "tile prompt embedding"), options]]


NODE_CLASS_MAPPINGS = {
    "GlyphSR_TiledPingPongKSampler": TiledPingPongKSampler,
    "GlyphSR_TiledPingPongGuider": TiledPingPongGuiderNode,
    "GlyphSR_TilePrompts": TilePromptsNode,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "GlyphSR_TiledPingPongKSampler": "GlyphSR Tiled Ping-Pong KSampler",
    "GlyphSR_TiledPingPongGuider": "GlyphSR Tiled Ping-Pong Guider",
    "GlyphSR_TilePrompts": "GlyphSR Tile Prompts",
}
