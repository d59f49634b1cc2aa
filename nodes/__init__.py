"""ComfyUI adapters. Each module exports its own NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS."""

from . import colorfix, evaluation, glyph, guard, keep_words, ocr, prompts, restore, vlm, pingpong, tiled, tscontrolnet

_NODE_MODULES = (restore, ocr, prompts, glyph, colorfix, keep_words, guard, vlm, pingpong, tiled, tscontrolnet, evaluation)

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
for _module in _NODE_MODULES:
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
