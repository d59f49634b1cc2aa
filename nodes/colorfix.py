"""Color Fix node: keep the upscaled detail, take the colours from the input."""

from __future__ import annotations

import torch

from ..glyphsr_core.colorfix import METHODS, color_fix
from ..glyphsr_core.imageops import check_comfy_images
from .runtime import CATEGORY, output_device


def _rgb(images: torch.Tensor, name: str) -> torch.Tensor:
    images = check_comfy_images(images, name)
    images = images[..., :1].repeat(1, 1, 1, 3) if images.shape[-1] < 3 else images[..., :3]
    return images.movedim(-1, 1)


class ColorFix:
    DESCRIPTION = ("Corrects colour drift of the result toward the reference (the low-quality input): "
                   "'wavelet' keeps detail and swaps the low frequencies, 'adain' matches mean and spread.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The upscaled result."}),
                "reference": ("IMAGE", {"tooltip": "Image with the right colours; resized to match."}),
                "method": (list(METHODS), {"default": "wavelet"}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "fix"
    CATEGORY = CATEGORY

    def fix(self, image: torch.Tensor, reference: torch.Tensor, method: str):
        fixed = color_fix(_rgb(image, "image").float(), _rgb(reference, "reference").float(), method)
        return (fixed.movedim(1, -1).to(output_device()),)


NODE_CLASS_MAPPINGS = {"GlyphSR_ColorFix": ColorFix}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_ColorFix": "GlyphSR Color Fix"}
