"""ComfyUI-GlyphSR: text-aware super-resolution nodes (GLYPH-SR) for ComfyUI.

ComfyUI imports this file as the pack's entry point. Only light modules are imported here;
OCR, VLM and diffusers back-ends load on first use so a missing optional dependency never
stops the pack from loading.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
