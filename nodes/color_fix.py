"""Color Fix node: keep the upscaled detail, take the colours from the input."""

from __future__ import annotations

import torch

from ..glyphsr_core.sampling.colorfix import METHODS, color_fix
from ..glyphsr_core.imageops import comfy_to_rgb
from .runtime import CATEGORY, output_device


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
        fixed = color_fix(comfy_to_rgb(image, "image").float(), comfy_to_rgb(reference, "reference").float(), method)
        return (fixed.movedim(1, -1).to(output_device()),)


NODE_CLASS_MAPPINGS = {"GlyphSR_ColorFix": ColorFix}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_ColorFix": "GlyphSR Color Fix"}
