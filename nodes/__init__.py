"""ComfyUI adapters, one module per node (or per pair of nodes that share a type), named after it.
Each module exports its own NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS."""

from . import (build_prompts, color_fix, glyph_render, keep_words, ocr, pingpong, review_words, text_fidelity,
               text_guard, text_restore, tiled_pingpong, ts_controlnet, vlm)

_NODE_MODULES = (text_restore, ocr, review_words, build_prompts, glyph_render, color_fix, keep_words, text_guard, vlm,
                 pingpong, tiled_pingpong, ts_controlnet, text_fidelity)

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
for _module in _NODE_MODULES:
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
