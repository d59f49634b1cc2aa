"""ComfyUI adapters. Each module exports its own NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS."""

from . import colorfix, evaluation, glyph, ocr, prompts, vlm, pingpong, tscontrolnet
from . import guard

_NODE_MODULES = (ocr, prompts, glyph, colorfix, vlm, pingpong, tscontrolnet, evaluation)
_NODE_MODULES += (guard,)

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
for _module in _NODE_MODULES:
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
