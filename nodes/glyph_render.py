"""Glyph Render node: the glyph map (hint for the text branch) and the text mask."""

from __future__ import annotations

import torch

from ..glyphsr_core.text.glyphs import render_glyph_map, render_text_mask
from ..glyphsr_core.imageops import check_comfy_images, gray_to_comfy_rgb, masks_to_comfy
from .ocr import TEXT_TYPE
from .runtime import CATEGORY, check_interrupt, output_device


class GlyphRender:
    DESCRIPTION = (
        "Draws each located word white on black, fitted to its box (rotation respected): the glyph hint "
        "for TS-ControlNet text branches that take one, plus a mask of the word boxes."
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text": (TEXT_TYPE,),
                "width": ("INT", {"default": 1024, "min": 1, "max": 16384, "step": 8,
                                  "tooltip": "Output width (ignored when reference is connected)."}),
                "height": ("INT", {"default": 1024, "min": 1, "max": 16384, "step": 8,
                                   "tooltip": "Output height (ignored when reference is connected)."}),
                "mask_dilation": ("INT", {"default": 0, "min": 0, "max": 256, "step": 1,
                                          "tooltip": "Grow the mask by this many pixels."}),
                "font_path": ("STRING", {"default": "",
                                         "tooltip": "A .ttf/.otf/.ttc drawn first; characters it lacks and "
                                                    "empty: Pillow's font for ASCII, the pack's Noto Sans, then "
                                                    "the machine's CJK/Hangul fonts."}),
            },
            "optional": {
                "reference": ("IMAGE", {"tooltip": "Render at this image's size (e.g. the upscaled input)."}),
            },
        }

    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("glyph", "mask")
    FUNCTION = "render"
    CATEGORY = CATEGORY

    def render(self, text, width: int, height: int, mask_dilation: int, font_path: str,
               reference: torch.Tensor | None = None):
        if not isinstance(text, list) or not text:
            raise ValueError("'text' must be a GLYPHSR_TEXT with at least one result (connect an OCR node)")
        if reference is not None:
            reference = check_comfy_images(reference, "reference")
            height, width = int(reference.shape[1]), int(reference.shape[2])
        glyphs, masks = [], []
        for result in text:
            check_interrupt()
            glyphs.append(render_glyph_map(result, width, height, font_path.strip() or None))
            masks.append(render_text_mask(result, width, height, mask_dilation))
        device = output_device()
        return (gray_to_comfy_rgb(glyphs).to(device), masks_to_comfy(masks).to(device))


NODE_CLASS_MAPPINGS = {"GlyphSR_GlyphRender": GlyphRender}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_GlyphRender": "GlyphSR Glyph Render"}
