"""Text Restore node: the pack's stage 1 (a text-aware x4 SR net) under ComfyUI's model manager.

The network sits in a ModelPatcher and is loaded with `load_models_gpu`, so it is offloaded in step
with the UNet, VAE and the rest; tiles bound the memory, with a progress step and a Cancel check per
tile. Model files come from `models/upscale_models` (the pack registers its own copy of the bundled
file there, so it is listed on a fresh install).
"""

from __future__ import annotations

import os

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import torch

from ..glyphsr_core import defaults
from ..glyphsr_core.errors import InputNotFoundError, InvalidInputError
from ..glyphsr_core.imageops import check_comfy_images
from ..glyphsr_core.restore import BUNDLED_NAME, BUNDLED_PATH, LoadedRestorer, load_restorer, restore
from ..glyphsr_core.restore.run import SUPPORTED_SCALES, check_image_size
from ..glyphsr_core.tiling.context import plan_tiles
from .runtime import CATEGORY, check_interrupt, output_device, progress_bar

FOLDER = "upscale_models"
_cache: dict[tuple[str, float], tuple[LoadedRestorer, object]] = {}


def register_bundled_folder() -> None:
    """Add the pack's models/upscale_models to ComfyUI's list, after the user's own folders."""
    folder_paths.add_model_folder_path(FOLDER, str(BUNDLED_PATH.parent), is_default=False)


def model_choices() -> list[str]:
    """Files of models/upscale_models, the bundled restorer first."""
    names = folder_paths.get_filename_list(FOLDER) if FOLDER in folder_paths.folder_names_and_paths else []
    return [BUNDLED_NAME] + [n for n in names if n != BUNDLED_NAME]


def resolve_model(name: str) -> str:
    path = folder_paths.get_full_path(FOLDER, name) if FOLDER in folder_paths.folder_names_and_paths else None
    if path is None and name == BUNDLED_NAME and BUNDLED_PATH.is_file():
        path = str(BUNDLED_PATH)
    if path is None:
        roots = folder_paths.get_folder_paths(FOLDER) if FOLDER in folder_paths.folder_names_and_paths else []
        raise InputNotFoundError(f"model '{name}' was not found in models/{FOLDER} (looked in: {', '.join(roots) or 'no folder'})")
    return path


def load_patched(name: str) -> tuple[LoadedRestorer, object]:
    """The restorer and its ModelPatcher, cached per file (reloaded when the file changes)."""
    path = resolve_model(name)
    key = (path, os.path.getmtime(path))
    if key not in _cache:
        loaded = load_restorer(path)
        patcher = comfy.model_patcher.ModelPatcher(loaded.model, load_device=mm.get_torch_device(),
                                                   offload_device=mm.unet_offload_device())
        _cache.clear()
        _cache[key] = (loaded, patcher)
    return _cache[key]


def _activation_bytes(tile: int, scale: int, loaded: LoadedRestorer) -> int:
    """Rough peak activation memory of one tile (features at input size, output at scale)."""
    features = getattr(loaded.model, "num_feat", 64)
    return int(4 * tile * tile * (3 * features + 3 * scale * scale * 2))


class TextRestore:
    DESCRIPTION = ("Stage 1 of GLYPH-SR: upscales with a compact text-aware SR network so letters come back "
                   "readable (the bundled model was trained here for OCR readability; any file in "
                   "models/upscale_models that ComfyUI's upscale loader reads also works). Tiles keep memory "
                   "bounded; the result is the same as untiled for the bundled model.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "Low-quality image(s) to upscale."}),
                "model": (model_choices(), {"default": BUNDLED_NAME,
                                            "tooltip": "The bundled GlyphSR restorer, or an SR model from models/upscale_models."}),
                "scale": ([str(s) for s in SUPPORTED_SCALES], {"default": "4",
                          "tooltip": "Output size / input size. x8 from an x4 model enlarges the input 2x (bicubic) first; "
                                     "x2 reduces the x4 result."}),
                "tile_size": ("INT", {"default": defaults.RESTORE_TILE, "min": 64, "max": 4096, "step": 64,
                                      "tooltip": "Input pixels per tile side; smaller uses less memory."}),
                "tile_overlap": ("INT", {"default": defaults.RESTORE_CONTEXT_MARGIN, "min": 0, "max": 512, "step": 8,
                                         "tooltip": "Context margin: input pixels tiles share; half of it on each side is "
                                                    "context that is discarded."}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "restore"

    @classmethod
    def VALIDATE_INPUTS(cls, model: str):
        """A shared workflow naming a file this machine lacks fails here, naming the folders searched."""
        try:
            resolve_model(model)
        except InputNotFoundError as exc:
            return str(exc)
        return True
    CATEGORY = CATEGORY

    def restore(self, image: torch.Tensor, model: str, scale: str, tile_size: int, tile_overlap: int):
        images = check_comfy_images(image, "image")
        factor = int(scale)
        if factor not in SUPPORTED_SCALES:
            raise InvalidInputError(f"scale must be one of {', '.join(map(str, SUPPORTED_SCALES))}, got {scale!r}")
        batch, height, width, channels = images.shape
        check_image_size(height, width, factor)
        loaded, patcher = load_patched(model)
        pre = max(1, factor // loaded.scale)
        tiles = len(plan_tiles(height * pre, width * pre, tile_size, tile_overlap))
        mm.load_models_gpu([patcher], memory_required=_activation_bytes(tile_size, loaded.scale, loaded) * batch)
        bar = progress_bar(tiles * batch)
        rgb = images[..., :3] if channels >= 3 else images[..., :1].repeat(1, 1, 1, 3)
        results = []
        for index in range(batch):
            def on_tile(done: int, _total: int, index: int = index) -> None:
                bar.update_absolute(index * tiles + done)

            one = rgb[index:index + 1].movedim(-1, 1).float()
            out = restore(loaded.model, loaded.scale, one, factor, tile=tile_size, context_margin=tile_overlap,
                          on_tile=on_tile, check_cancel=check_interrupt)
            results.append(out.movedim(1, -1).to(output_device()))
        out = torch.cat(results)
        if channels in (2, 4):  # keep alpha, enlarged like ComfyUI's ImageScale (bicubic)
            alpha = torch.nn.functional.interpolate(images[..., -1:].movedim(-1, 1).float(), size=out.shape[1:3],
                                                    mode="bicubic", align_corners=False).clamp(0, 1)
            out = torch.cat([out, alpha.movedim(1, -1).to(out.device)], dim=-1)
        return (out,)


register_bundled_folder()

NODE_CLASS_MAPPINGS = {"GlyphSR_TextRestore": TextRestore}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_TextRestore": "GlyphSR Text Restore"}
