"""Check and shape the inputs of 'Apply TS-ControlNet': the LQ image, restored image, glyph map, text mask.

ComfyUI passes IMAGE as [B,H,W,C] and MASK as [B,H,W]; ControlNet hints are [B,C,H,W]. The glyph and
the mask must line up with the LQ image pixel for pixel (the hint, glyph and mask are all fitted to
the latent the same way later), so other sizes are refused rather than silently stretched.
"""

from __future__ import annotations

import torch

from ..imageops import check_comfy_images, comfy_to_rgb
from .errors import BundleError


class HintInputError(BundleError):
    """An image, glyph or mask input of 'Apply TS-ControlNet' that does not fit."""


def _check_batch(batch: int, image_batch: int, name: str) -> None:
    if batch not in (1, image_batch):
        raise HintInputError(f"'{name}' has a batch of {batch}; expected 1 or the image batch ({image_batch})")


def lq_hint(image: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE -> [B,3,H,W] hint (alpha dropped, grey repeated to RGB)."""
    return comfy_to_rgb(image, "image")


def restored_hint(text_image: torch.Tensor | None, image: torch.Tensor, why: str) -> torch.Tensor:
    """The restored image R as the text branch's hint [B,3,H,W]; `why` says which text branch needs it."""
    if text_image is None:
        raise HintInputError(f"'text_image' is missing: {why} sees the restored image; connect GlyphSR Text "
                             f"Restore's image (the same size as 'image')")
    text_image = check_comfy_images(text_image, "text_image")
    image = check_comfy_images(image, "image")
    if text_image.shape[1:3] != image.shape[1:3]:
        raise HintInputError(f"'text_image' is {text_image.shape[2]}x{text_image.shape[1]} but the image is "
                             f"{image.shape[2]}x{image.shape[1]}: restore at the same scale as 'image' is upscaled")
    _check_batch(text_image.shape[0], image.shape[0], "text_image")
    return lq_hint(text_image)


def glyph_hint(glyph: torch.Tensor | None, image: torch.Tensor, channels: int) -> torch.Tensor | None:
    """The glyph IMAGE as the text branch's extra hint channels: [B,channels,H,W] (or None when unused).

    `channels` is how many the text branch takes beyond the RGB image: 0 (no '+glyph' in text_hint:
    a connected glyph is not used, so one graph serves every text branch), 1 (the grey glyph map:
    channel mean) or 3 (RGB).
    """
    if channels == 0:
        return None
    if glyph is None:
        raise HintInputError(f"'glyph' is missing: this TS-ControlNet's text branch takes its image plus a glyph "
                             f"map ({channels} extra hint channel{'s' if channels > 1 else ''}, text_hint "
                             f"'lq+glyph' or 'restored+glyph'): connect GlyphSR Glyph Render's glyph output")
    glyph = check_comfy_images(glyph, "glyph")
    image = check_comfy_images(image, "image")
    if glyph.shape[1:3] != image.shape[1:3]:
        raise HintInputError(f"'glyph' is {glyph.shape[2]}x{glyph.shape[1]} but the image is "
                             f"{image.shape[2]}x{image.shape[1]}: render the glyph map with the image as reference")
    _check_batch(glyph.shape[0], image.shape[0], "glyph")
    rgb = lq_hint(glyph)
    return rgb.mean(dim=1, keepdim=True) if channels == 1 else rgb  # validate_bundle allows only 1 or 3


def text_mask(mask: torch.Tensor | None, image: torch.Tensor) -> torch.Tensor | None:
    """A ComfyUI MASK checked against the image: [B,H,W] float in 0..1 (or None)."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise HintInputError(f"'text_mask' must be a MASK tensor, got {type(mask).__name__}")
    image = check_comfy_images(image, "image")
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise HintInputError(f"'text_mask' must be a MASK [B,H,W], got shape {tuple(mask.shape)}")
    if mask.shape[1:] != image.shape[1:3]:
        raise HintInputError(f"'text_mask' is {mask.shape[2]}x{mask.shape[1]} but the image is "
                             f"{image.shape[2]}x{image.shape[1]}: make the mask from the same image")
    _check_batch(mask.shape[0], image.shape[0], "text_mask")
    return mask.float().clamp(0.0, 1.0)
